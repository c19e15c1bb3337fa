/* libFuzzer: one frame body through the wire decoder. Properties checked:
 * msgpack-c accepts whatever the structural check accepts (the two parsers
 * agree), the event and direct fast paths agree with the general
 * decoder, and a message that decodes re-encodes to bytes that decode to
 * the same message; a direct frame kept for the relay's raw forward,
 * raised by one hop, reads as the same message one hop on (and is the
 * encoder's bytes for it when the input was). */
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "mpcheck.h"
#include "wire.h"
#include "../wire_cmp.h"

static mm_wire_dec_t *dec, *dec2;
static uint8_t out[1 << 17];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (dec == NULL) {
		dec = mm_wire_dec_new();
		dec2 = mm_wire_dec_new();
	}
	if (size > 65536)
		return 0;
	const char *why;
	/* the type peek (counting frames) reads any bytes without harm */
	int pt = mm_wire_peek_type(data, size);
	if (pt < 0 || pt >= MM_W__COUNT)
		abort();
	if (mm_mp_check(data, size, &why) == 0) {
		msgpack_zone z;
		msgpack_zone_init(&z, 1024);
		msgpack_object o;
		size_t off = 0;
		int r = msgpack_unpack((const char *)data, size, &off, &z, &o);
		if (r != MSGPACK_UNPACK_SUCCESS || off != size)
			abort(); /* the check let through what msgpack-c refuses */
		msgpack_zone_destroy(&z);
	}
	mm_wire_msg_t m, m2, g;
	const char *whyg;
	/* The event fast path takes only what the general path accepts, and
	 * decodes it the same; mm_wire_decode agrees with the general path. */
	int fast = mm_wire_decode_event_fast(data, (uint32_t)size, &m2);
	int rg = mm_wire_decode_general(dec2, data, (uint32_t)size, &g, &whyg);
	if (fast && (rg != MM_WIRE_OK || g.type != MM_W_EVENT || g.req != m2.req ||
	        memcmp(&g.u.event, &m2.u.event, sizeof(g.u.event)) != 0))
		abort();
	mm_wire_msg_t m3;
	if (mm_wire_decode_direct_fast(data, (uint32_t)size, &m3) &&
	    (rg != MM_WIRE_OK || g.type != MM_W_DIRECT || g.req != m3.req ||
	        !wire_direct_same(&g.u.direct, &m3.u.direct)))
		abort();
	/* A frame kept for the relay's raw forward: the whole input, its `at`
	 * one fixint byte at at_off; raised there (if the route has room) it
	 * reads as the same message with `at` + 1, and as the encoder's bytes
	 * for that message when the input was canonical. */
	if (rg == MM_WIRE_OK && g.type == MM_W_DIRECT &&
	    mm_wire_decode_direct_fast(data, (uint32_t)size, &m3) && m3.u.direct.raw_len != 0) {
		const mm_w_direct_t *d = &m3.u.direct;
		static uint8_t fwd[65536];
		mm_wire_msg_t m4;
		if (d->raw != data || d->raw_len != size || d->at_off == 0 || d->at_off >= size ||
		    data[d->at_off] != d->at || m3.req != 0)
			abort();
		if (d->at + 1u < d->route.len / 32) {
			memcpy(fwd, data, size);
			fwd[d->at_off] = (uint8_t)(d->at + 1);
			if (!mm_wire_decode_direct_fast(fwd, (uint32_t)size, &m4) ||
			    m4.u.direct.at != d->at + 1)
				abort();
			m4.u.direct.at = d->at;
			if (!wire_direct_same(&m4.u.direct, d))
				abort();
			int en = mm_wire_encode(&m3, out, sizeof(out));
			if (en == (int)size + 4 && memcmp(out + 4, data, size) == 0) {
				m3.u.direct.at++;
				en = mm_wire_encode(&m3, out, sizeof(out));
				if (en != (int)size + 4 || memcmp(out + 4, fwd, size) != 0)
					abort();
			}
		}
	}
	int r = mm_wire_decode(dec, data, (uint32_t)size, &m, &why);
	if (r != rg || (r != MM_WIRE_OK && strcmp(why, whyg) != 0))
		abort();
	if (r == MM_WIRE_OK && m.type == MM_W_DIRECT &&
	    (g.type != MM_W_DIRECT || g.req != m.req || !wire_direct_same(&g.u.direct, &m.u.direct)))
		abort();
	if (r == MM_WIRE_OK && m.type == MM_W_EVENT &&
	    (g.type != MM_W_EVENT || g.req != m.req ||
	        memcmp(&g.u.event, &m.u.event, sizeof(g.u.event)) != 0))
		abort();
	if (r != MM_WIRE_OK)
		return 0;
	int n = mm_wire_encode(&m, out, sizeof(out));
	if (n < 0)
		abort(); /* decoded, yet not encodable */
	if (mm_wire_decode(dec2, out + 4, (uint32_t)n - 4, &m2, &why) != MM_WIRE_OK)
		abort();
	if (m2.type != m.type || m2.req != m.req)
		abort();
	if (mm_wire_peek_type(out, (size_t)n) != (int)m.type)
		abort(); /* our own frames are always recognised */
	if (m.type == MM_W_EVENT && memcmp(&m.u.event, &m2.u.event, sizeof(m.u.event)))
		abort();
	if (m.type == MM_W_PEERS && m.u.peers.count != m2.u.peers.count)
		abort();
	if (m.type == MM_W_DIRECT) {
		const mm_w_direct_t *a = &m.u.direct, *b = &m2.u.direct;
		if (a->route.len != b->route.len || a->data.len != b->data.len ||
		    a->route0.len != b->route0.len || a->at != b->at || a->rr != b->rr ||
		    a->has_rw != b->has_rw || a->rw_at != b->rw_at || a->nonce != b->nonce ||
		    memcmp(a->route.ptr, b->route.ptr, a->route.len) != 0 ||
		    (a->data.len && memcmp(a->data.ptr, b->data.ptr, a->data.len) != 0) ||
		    memcmp(a->sig, b->sig, 64) != 0 || memcmp(a->rw_sig, b->rw_sig, 64) != 0)
			abort();
	}
	if (m.type == MM_W_DFAIL && (m.u.dfail.route.len != m2.u.dfail.route.len ||
	    m.u.dfail.at != m2.u.dfail.at || m.u.dfail.code != m2.u.dfail.code))
		abort();
	if (m.type == MM_W_BCAST && (m.u.bcast.topic.len != m2.u.bcast.topic.len ||
	    m.u.bcast.data.len != m2.u.bcast.data.len || m.u.bcast.ttl != m2.u.bcast.ttl ||
	    memcmp(m.u.bcast.topic.ptr, m2.u.bcast.topic.ptr, m.u.bcast.topic.len) != 0))
		abort();
	if (m.type == MM_W_SUBS && m.u.subs.count != m2.u.subs.count)
		abort();
	return 0;
}
