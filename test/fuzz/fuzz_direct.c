/* libFuzzer: one frame body through the wire decoder and, when it is a
 * direct message or a failure notice, through the route logic a relay and
 * a destination run on it (actors/direct.c). Properties checked beyond
 * "no crash, no leak, no UB":
 *   - every verdict is one of the module's;
 *   - the hop check passes exactly when we are route[at] and the sender
 *     route[at-1] (and a rewrite carries its flag);
 *   - placed at route[at] (a copy of the route with our id there), a
 *     rewrite that succeeds keeps what came before us, ends at the same
 *     destination, has no loop and at most 16 hops, passes the next hop's
 *     check, carries our rewrite signature (a destination would accept it
 *     whenever it accepts the origin's), and cannot be rewritten again;
 *     one that fails is refused for the reason the input gives (no flag,
 *     already rewritten, or a bad suffix);
 *   - the failure notice we sign there verifies, names us first and walks
 *     the route back to the origin;
 *   - a failure notice from the input verifies only if its first hop is
 *     the key that signed it.
 * Proof of work is not required (difficulty 0), so the seeds' signed
 * messages (make_corpus: origin -> this target's key -> ... with one
 * rewrite allowed, without, already rewritten, and a failure notice)
 * reach the signature checks and the rewrite. */
#include <stdlib.h>
#include <string.h>

#include "direct.h"
#include "frame.h"
#include "wire.h"

#define NOW 1763700000000ull /* unix ms: the seeds' timestamps are near it */
#define AGE 600000ull

static mm_wire_dec_t *dec;
static mm_identity_t self;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_verdict(int v)
{
	if (v > MM_D_OK || v < MM_D_STALE)
		abort();
}

static void
relay(const mm_w_direct_t *in)
{
	unsigned n = in->route.len / 32;
	/* the same message with us at route[at] */
	uint8_t route[32 * MM_WIRE_ROUTE_MAX];
	memcpy(route, in->route.ptr, in->route.len);
	memcpy(route + 32u * in->at, self.id, 32);
	mm_w_direct_t d = *in;
	d.route = (mm_bytes_t){route, in->route.len};
	const uint8_t *from = route + 32u * (in->at - 1u);
	int v = mm_direct_hop_check(&d, self.id, from);
	if (v != (d.has_rw && !d.rr ? MM_D_RW_NO_FLAG : MM_D_OK))
		abort();
	check_verdict(mm_direct_verify(&d, 0, NOW, AGE));

	/* rewrite: our path to the destination is the rest of the route with
	 * its hops reversed but the last (a different path, same end) */
	uint8_t suffix[32 * MM_WIRE_ROUTE_MAX], buf[32 * MM_WIRE_ROUTE_MAX];
	unsigned ns = n - in->at - 1u;
	for (unsigned i = 0; i < ns; i++)
		memcpy(suffix + 32 * i, route + 32u * (n - 2u - i), 32);
	if (ns > 0)
		memcpy(suffix + 32u * (ns - 1u), route + 32u * (n - 1u), 32);
	mm_w_direct_t rw;
	int r = mm_direct_rewrite(&self, &d, suffix, ns, buf, &rw);
	if (r == MM_D_OK) {
		unsigned m = rw.route.len / 32;
		if (!d.rr || d.has_rw || m > MM_WIRE_ROUTE_MAX || m < in->at + 2u ||
		    memcmp(rw.route.ptr, route, 32u * (in->at + 1u)) != 0 ||
		    memcmp(rw.route.ptr + 32u * (m - 1u), route + 32u * (n - 1u), 32) != 0)
			abort();
		for (unsigned i = 0; i < m; i++)
			for (unsigned j = 0; j < i; j++)
				if (memcmp(rw.route.ptr + 32 * i, rw.route.ptr + 32 * j, 32) == 0)
					abort(); /* a loop */
		/* the next hop's view: it is route[at+1], we sent it */
		mm_w_direct_t next = rw;
		next.at = (uint8_t)(in->at + 1u);
		if (mm_direct_hop_check(&next, rw.route.ptr + 32u * next.at, self.id) != MM_D_OK)
			abort();
		/* our rewrite signature holds: the destination's verdict on
		 * the rewritten message is the origin's verdict, never
		 * MM_D_BAD_RW_SIG */
		int vo = mm_direct_verify(&d, 0, NOW, AGE);
		int vr = mm_direct_verify(&rw, 0, NOW, AGE);
		check_verdict(vr);
		if (vr == MM_D_BAD_RW_SIG || (vo == MM_D_OK) != (vr == MM_D_OK))
			abort();
		uint8_t buf2[32 * MM_WIRE_ROUTE_MAX];
		mm_w_direct_t rw2;
		if (mm_direct_rewrite(&self, &rw, suffix, ns, buf2, &rw2) != MM_D_RW_TWICE)
			abort();
		/* and it encodes: what a relay sends is a valid frame */
		mm_wire_msg_t out = {.type = MM_W_DIRECT};
		out.u.direct = rw;
		static uint8_t frame[MM_FRAME_MAX_DEFAULT + 64];
		if (mm_wire_encode(&out, frame, sizeof(frame)) <= 0)
			abort();
	} else if (!d.rr) {
		if (r != MM_D_RW_NO_FLAG)
			abort();
	} else if (d.has_rw) {
		if (r != MM_D_RW_TWICE)
			abort();
	} else if (r != -EINVAL) {
		abort();
	}

	/* cannot forward: the notice back to the origin */
	mm_w_dfail_t f;
	uint8_t fb[32 * MM_WIRE_ROUTE_MAX];
	if (mm_direct_fail(&self, &d, MM_DFAIL_UNREACHABLE, fb, &f) != 0)
		abort();
	if (mm_dfail_verify(&f, 0) != MM_D_OK || f.route.len != 32u * (in->at + 1u) ||
	    memcmp(f.route.ptr, self.id, 32) != 0 ||
	    memcmp(f.route.ptr + f.route.len - 32, route, 32) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (dec == NULL) {
		dec = mm_wire_dec_new();
		/* the relay key make_corpus puts at route[1] of its seeds */
		uint8_t seed[32];
		memset(seed, 0x42, sizeof(seed));
		if (dec == NULL || mm_id_from_seed(&self, seed, 0) != 0)
			abort();
	}
	if (size > 65536)
		return 0;
	mm_wire_msg_t m;
	const char *why;
	if (mm_wire_decode(dec, data, (uint32_t)size, &m, &why) != MM_WIRE_OK)
		return 0;
	if (m.type == MM_W_DIRECT) {
		/* as received from anyone: the hop check says no unless we are
		 * route[at] */
		const mm_w_direct_t *d = &m.u.direct;
		int v = mm_direct_hop_check(d, self.id, d->route.ptr + 32u * (d->at - 1u));
		if (v != MM_D_WRONG_HOP &&
		    memcmp(d->route.ptr + 32u * d->at, self.id, 32) != 0)
			abort();
		check_verdict(mm_direct_verify(d, 0, NOW, AGE));
		relay(d);
	} else if (m.type == MM_W_DFAIL) {
		const mm_w_dfail_t *f = &m.u.dfail;
		int v = mm_dfail_verify(f, 0);
		check_verdict(v);
		uint8_t id[32];
		mm_id_of(f->pub, id);
		if (v == MM_D_OK && memcmp(f->route.ptr, id, 32) != 0)
			abort();
	}
	return 0;
}
