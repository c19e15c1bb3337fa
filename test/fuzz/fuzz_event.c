/* libFuzzer: one frame body through the wire decoder and, when it is an
 * event, through the gossip engine's checks (time, proof of work,
 * signature, dedup) and into the map. Properties checked beyond "no
 * crash, no leak, no UB": the verdict is one of the engine's; an event
 * the engine forwards goes on with one hop less; a duplicate, or one
 * refused for its time, proof of work or signature, changed nothing in
 * the map; the map never holds more records than its bound.
 * Proof of work is not required (difficulty 0), so the seeds' signed
 * events (make_corpus) reach the signature check and the map. */
#include <stdlib.h>
#include <string.h>

#include "gossip.h"
#include "wire.h"

#define NOW 1763700000000ull /* unix ms: the seeds' timestamps are near it */

static mm_wire_dec_t *dec;
static mm_identity_t self;
static mm_ps_t *ps;
static mm_dedup_t *dd;
static mm_gossip_t *g;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (dec == NULL) {
		dec = mm_wire_dec_new();
		mm_ps_config_t pc;
		mm_ps_config_default(&pc);
		pc.max_peers = 4096; /* small: the bound is reached while fuzzing */
		mm_gossip_config_t gc;
		mm_gossip_config_default(&gc);
		gc.difficulty = 0;
		if (dec == NULL || mm_id_generate(&self, 0, NULL) != 0 ||
		    mm_ps_create(&pc, &ps) != 0 || mm_dedup_create(NULL, &dd) != 0 ||
		    mm_gossip_create(&gc, &self, ps, dd, &g) != 0)
			abort();
	}
	if (size > 65536)
		return 0;
	mm_wire_msg_t m;
	const char *why;
	if (mm_wire_decode(dec, data, (uint32_t)size, &m, &why) != MM_WIRE_OK ||
	    m.type != MM_W_EVENT)
		return 0;
	mm_ps_stats_t before, after;
	mm_ps_stats(ps, &before);
	mm_w_event_t fwd;
	int v = mm_gossip_receive(g, &m.u.event, NOW, (uint32_t)(NOW / 1000), &fwd);
	mm_ps_stats(ps, &after);
	if (v > MM_G_FULL || v < MM_G_LIE)
		abort(); /* not a verdict */
	if (v == MM_G_FORWARD && fwd.ttl + 1 != m.u.event.ttl)
		abort();
	int early = v == MM_G_DUP || v == MM_G_BAD_TIME || v == MM_G_BAD_POW ||
	    v == MM_G_BAD_SIG;
	if (early && (after.records != before.records || after.claims != before.claims))
		abort(); /* refused before the map, yet the map changed */
	if (after.records > 4096)
		abort();
	return 0;
}
