/* libFuzzer: arbitrary bytes as a snapshot file. The loader must refuse or
 * accept without crashing, and never apply a file it refuses. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("snap", 0);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	mm_ps_config_t c;
	mm_ps_config_default(&c);
	c.max_peers = 1024;
	mm_ps_t *ps;
	if (mm_ps_create(&c, &ps) != 0)
		abort();
	mm_bans_t *b = mm_bans_new(64);
	char err[256];
	uint32_t np = 0, nb = 0;
	int rc = mm_snap_load(path, ps, b, 1700000000, 100, err, sizeof(err), &np, &nb);
	mm_ps_stats_t st;
	mm_ps_stats(ps, &st);
	if (rc != 0 && (st.ids != 0 || mm_bans_count(b) != 0))
		abort(); /* refused, yet partly applied */
	mm_bans_free(b);
	mm_ps_destroy(ps);
	close(fd);
	return 0;
}
