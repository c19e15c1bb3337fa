/* libFuzzer: a byte stream cut into chunks (sizes taken from the input)
 * through frame reassembly, every frame through the wire decoder. Checks
 * that frames never exceed the maximum, that their bytes are the stream's,
 * and that the buffer stays bounded. */
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "wire.h"

#define MAXF 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static mm_wire_dec_t *dec;
	if (dec == NULL)
		dec = mm_wire_dec_new();
	if (size < 2)
		return 0;
	unsigned chunk_seed = data[0] | (unsigned)data[1] << 8;
	data += 2;
	size -= 2;
	mm_framer_t f;
	mm_framer_init(&f, MAXF);
	size_t pos = 0;
	uint32_t r = chunk_seed ? chunk_seed : 1;
	while (pos < size) {
		r = r * 1103515245u + 12345u;
		size_t want = 1 + (r >> 16) % 700;
		size_t avail;
		uint8_t *dst = mm_framer_space(&f, want, &avail);
		if (dst == NULL)
			abort();
		if (f.cap > MAXF + 4 + MM_FRAMER_MIN)
			abort(); /* unbounded growth */
		size_t n = size - pos < want ? size - pos : want;
		if (n > avail)
			n = avail;
		memcpy(dst, data + pos, n);
		mm_framer_commit(&f, n);
		pos += n;
		const uint8_t *fr;
		uint32_t len;
		int rc;
		while ((rc = mm_framer_next(&f, &fr, &len)) == MM_FRAME_OK) {
			if (len == 0 || len > MAXF)
				abort();
			uint32_t hdr = (uint32_t)fr[-4] << 24 | (uint32_t)fr[-3] << 16 |
			    (uint32_t)fr[-2] << 8 | fr[-1];
			if (hdr != len)
				abort();
			mm_wire_msg_t m;
			const char *why;
			(void)mm_wire_decode(dec, fr, len, &m, &why);
		}
		if (rc < 0)
			break; /* protocol error: the connection would close */
	}
	mm_framer_free(&f);
	return 0;
}
