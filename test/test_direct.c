/* Direct messages as pure logic (direct.h) and on the wire: a message
 * signed, encoded, decoded and verified; tampering caught; one rewrite
 * accepted, a rewrite without the flag, a second rewrite, a forged or
 * misplaced rewriter refused; the failure notice signed and verified. */
#include <msgpack.h>
#include <openssl/sha.h>
#include <string.h>

#include "direct.h"
#include "test.h"

#define DIFF 4
static uint8_t buf[65536];
static mm_wire_dec_t *dec;

/* encode, decode into out (its bytes live in buf until the next call) */
static int
wire(const mm_wire_msg_t *in, mm_wire_msg_t *out)
{
	int n = mm_wire_encode(in, buf, sizeof(buf));
	CHECK_GT(n, 4);
	const char *why = NULL;
	int r = mm_wire_decode(dec, buf + 4, (uint32_t)n - 4, out, &why);
	if (r != MM_WIRE_OK)
		fprintf(stderr, "   decode: %s\n", why);
	return r;
}

int
main(void)
{
	CHECK((dec = mm_wire_dec_new()) != NULL);
	mm_identity_t o, r1, r2, d, x;
	CHECK_EQ(mm_id_generate(&o, DIFF, NULL), 0);
	CHECK_EQ(mm_id_generate(&r1, DIFF, NULL), 0);
	CHECK_EQ(mm_id_generate(&r2, DIFF, NULL), 0);
	CHECK_EQ(mm_id_generate(&d, DIFF, NULL), 0);
	CHECK_EQ(mm_id_generate(&x, DIFF, NULL), 0);
	uint8_t route[4 * 32];
	memcpy(route, o.id, 32);
	memcpy(route + 32, r1.id, 32);
	memcpy(route + 64, r2.id, 32);
	memcpy(route + 96, d.id, 32);
	const char payload[] = "block 1234";
	uint64_t now = 1763700000000ull;

	/* o -> r1 -> r2 -> d, rerouting allowed */
	mm_wire_msg_t m = {.type = MM_W_DIRECT}, got;
	CHECK_EQ(mm_direct_make(&o, route, 4, 1, 77, now, payload, sizeof(payload),
	    &m.u.direct), 0);
	CHECK_EQ(wire(&m, &got), MM_WIRE_OK);
	CHECK_EQ(got.u.direct.at, 1);
	CHECK_EQ(mm_direct_hop_check(&got.u.direct, r1.id, o.id), MM_D_OK);
	CHECK_EQ(mm_direct_hop_check(&got.u.direct, r2.id, o.id), MM_D_WRONG_HOP);
	CHECK_EQ(mm_direct_hop_check(&got.u.direct, r1.id, x.id), MM_D_WRONG_HOP);
	m.u.direct.at = 3;
	CHECK_EQ(wire(&m, &got), MM_WIRE_OK);
	CHECK_EQ(mm_direct_hop_check(&got.u.direct, d.id, r2.id), MM_D_OK);
	CHECK_EQ(mm_direct_verify(&got.u.direct, DIFF, now, 600000), MM_D_OK);
	CHECK_EQ(got.u.direct.data.len, sizeof(payload));
	/* tampered payload, route, clock, proof of work */
	((uint8_t *)got.u.direct.data.ptr)[0] ^= 1;
	CHECK_EQ(mm_direct_verify(&got.u.direct, DIFF, now, 600000), MM_D_BAD_SIG);
	CHECK_EQ(wire(&m, &got), MM_WIRE_OK);
	CHECK_EQ(mm_direct_verify(&got.u.direct, DIFF, now + 700000, 600000), MM_D_STALE);
	CHECK_EQ(mm_direct_verify(&got.u.direct, 40, now, 600000), MM_D_BAD_POW);

	/* r1 rewrites: r1 -> x -> d instead of r1 -> r2 -> d */
	m.u.direct.at = 1;
	uint8_t suffix[64], rbuf[32 * MM_WIRE_ROUTE_MAX];
	memcpy(suffix, x.id, 32);
	memcpy(suffix + 32, d.id, 32);
	mm_wire_msg_t w = {.type = MM_W_DIRECT};
	CHECK_EQ(mm_direct_rewrite(&r1, &m.u.direct, suffix, 2, rbuf, &w.u.direct), 0);
	w.u.direct.at = 3; /* as d receives it from x */
	CHECK_EQ(wire(&w, &got), MM_WIRE_OK);
	CHECK(got.u.direct.has_rw);
	CHECK_EQ(got.u.direct.rw_at, 1);
	CHECK_EQ(mm_direct_hop_check(&got.u.direct, d.id, x.id), MM_D_OK);
	CHECK_EQ(mm_direct_verify(&got.u.direct, DIFF, now, 600000), MM_D_OK);
	/* a second rewrite, by x: refused at the source */
	mm_wire_msg_t w2 = {.type = MM_W_DIRECT};
	uint8_t rbuf2[32 * MM_WIRE_ROUTE_MAX];
	w.u.direct.at = 2;
	CHECK_EQ(mm_direct_rewrite(&x, &w.u.direct, d.id, 1, rbuf2, &w2.u.direct),
	    MM_D_RW_TWICE);
	/* ... and a rewrite forged to look like one: x replaces r1's rewrite
	 * with its own, but x is not on the original route at rw_at */
	w2 = w;
	memcpy(w2.u.direct.rw_pub, x.pub, 32);
	w2.u.direct.rw_pow = x.nonce;
	uint8_t sb[MM_WIRE_REWRITE_SIGNED_LEN];
	mm_wire_rewrite_signed_bytes(w2.u.direct.sig, w2.u.direct.rw_at, &w2.u.direct.route, sb);
	CHECK_EQ(mm_id_sign(&x, sb, sizeof(sb), w2.u.direct.rw_sig), 0);
	w2.u.direct.at = 3;
	CHECK_EQ(wire(&w2, &got), MM_WIRE_OK);
	CHECK_EQ(mm_direct_verify(&got.u.direct, DIFF, now, 600000), MM_D_BAD_RW_SIG);
	/* a forged rewrite signature */
	w2 = w;
	w2.u.direct.rw_sig[5] ^= 0x40;
	w2.u.direct.at = 3;
	CHECK_EQ(wire(&w2, &got), MM_WIRE_OK);
	CHECK_EQ(mm_direct_verify(&got.u.direct, DIFF, now, 600000), MM_D_BAD_RW_SIG);
	/* the new route changed after the rewriter signed it */
	uint8_t alt[3 * 32];
	memcpy(alt, o.id, 32);
	memcpy(alt + 32, r1.id, 32);
	memcpy(alt + 64, d.id, 32);
	w2 = w;
	w2.u.direct.route = (mm_bytes_t){alt, 96};
	w2.u.direct.at = 2;
	CHECK_EQ(wire(&w2, &got), MM_WIRE_OK);
	CHECK_EQ(mm_direct_verify(&got.u.direct, DIFF, now, 600000), MM_D_BAD_RW_SIG);

	/* rerouting not allowed: no rewrite at a relay, and one made anyway
	 * is refused by every hop */
	mm_wire_msg_t nr = {.type = MM_W_DIRECT};
	CHECK_EQ(mm_direct_make(&o, route, 4, 0, 78, now, payload, sizeof(payload),
	    &nr.u.direct), 0);
	CHECK_EQ(mm_direct_rewrite(&r1, &nr.u.direct, suffix, 2, rbuf2, &w2.u.direct),
	    MM_D_RW_NO_FLAG);
	w2 = nr;
	w2.u.direct.has_rw = 1;
	w2.u.direct.route0 = nr.u.direct.route;
	w2.u.direct.route = (mm_bytes_t){rbuf, w.u.direct.route.len};
	w2.u.direct.rw_at = 1;
	memcpy(w2.u.direct.rw_pub, r1.pub, 32);
	w2.u.direct.rw_pow = r1.nonce;
	mm_wire_rewrite_signed_bytes(w2.u.direct.sig, 1, &w2.u.direct.route, sb);
	CHECK_EQ(mm_id_sign(&r1, sb, sizeof(sb), w2.u.direct.rw_sig), 0);
	w2.u.direct.at = 2;
	CHECK_EQ(wire(&w2, &got), MM_WIRE_OK);
	CHECK_EQ(mm_direct_hop_check(&got.u.direct, x.id, r1.id), MM_D_RW_NO_FLAG);
	CHECK_EQ(mm_direct_verify(&got.u.direct, DIFF, now, 600000), MM_D_RW_NO_FLAG);

	/* two rewrites cannot even be written: "rw" is one map, a list of
	 * them is refused by the decoder */
	{
		msgpack_sbuffer sbuf;
		msgpack_sbuffer_init(&sbuf);
		msgpack_packer pk;
		msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
#define KEY(s) (msgpack_pack_str(&pk, strlen(s)), msgpack_pack_str_body(&pk, s, strlen(s)))
#define BIN(p, n) (msgpack_pack_bin(&pk, n), msgpack_pack_bin_body(&pk, p, n))
		msgpack_pack_map(&pk, 2);
		KEY("cmd");
		KEY("direct");
		KEY("params");
		msgpack_pack_map(&pk, 9);
		KEY("pub"); BIN(o.pub, 32);
		KEY("pow"); msgpack_pack_uint64(&pk, o.nonce);
		KEY("route"); BIN(rbuf, w.u.direct.route.len);
		KEY("at"); msgpack_pack_uint8(&pk, 2);
		KEY("nonce"); msgpack_pack_uint64(&pk, 77);
		KEY("ts"); msgpack_pack_uint64(&pk, now);
		KEY("data"); BIN(payload, sizeof(payload));
		KEY("sig"); BIN(w.u.direct.sig, 64);
		KEY("rw");
		msgpack_pack_array(&pk, 2);
		for (int k = 0; k < 2; k++) {
			msgpack_pack_map(&pk, 1);
			KEY("at");
			msgpack_pack_uint8(&pk, 1);
		}
		const char *why = NULL;
		CHECK_EQ(mm_wire_decode(dec, (const uint8_t *)sbuf.data, (uint32_t)sbuf.size,
		    &got, &why), MM_WIRE_EPARAMS);
		CHECK(strstr(why, "single rewrite") != NULL);
		msgpack_sbuffer_destroy(&sbuf);
	}

	/* loops and bad indices are refused by the codec */
	uint8_t loop[3 * 32];
	memcpy(loop, o.id, 32);
	memcpy(loop + 32, r1.id, 32);
	memcpy(loop + 64, o.id, 32);
	mm_wire_msg_t bad = m;
	bad.u.direct.route = (mm_bytes_t){loop, 96};
	CHECK_EQ(mm_wire_encode(&bad, buf, sizeof(buf)), -EINVAL);
	bad = m;
	bad.u.direct.at = 4;
	CHECK_EQ(mm_wire_encode(&bad, buf, sizeof(buf)), -EINVAL);

	/* r2 cannot reach d: its notice goes back r2 -> r1 -> o */
	m.u.direct.at = 2;
	mm_wire_msg_t f = {.type = MM_W_DFAIL};
	CHECK_EQ(mm_direct_fail(&r2, &m.u.direct, MM_DFAIL_UNREACHABLE, rbuf, &f.u.dfail), 0);
	CHECK_EQ(f.u.dfail.route.len, 96);
	CHECK_EQ(memcmp(f.u.dfail.route.ptr + 64, o.id, 32), 0);
	f.u.dfail.at = 2;
	CHECK_EQ(wire(&f, &got), MM_WIRE_OK);
	CHECK_EQ(mm_dfail_verify(&got.u.dfail, DIFF), MM_D_OK);
	uint8_t ref[32];
	SHA256(m.u.direct.sig, 64, ref);
	CHECK_EQ(memcmp(got.u.dfail.ref, ref, 32), 0);
	got.u.dfail.code = MM_DFAIL_NO_ROUTE; /* altered on the way */
	CHECK_EQ(mm_dfail_verify(&got.u.dfail, DIFF), MM_D_BAD_SIG);

	/* first hops: fewest hops, then the lowest measured RTT */
	{
		unsigned hops[4] = {3, 3, 2, 2};
		uint32_t rtt[4] = {100, 50, 900, 0};
		CHECK_EQ(mm_route_pick(hops, rtt, 4), 2); /* 2 hops beat any RTT */
		hops[2] = 0; /* no route through it */
		CHECK_EQ(mm_route_pick(hops, rtt, 4), 3); /* unmeasured, but shorter */
		hops[3] = 3;
		CHECK_EQ(mm_route_pick(hops, rtt, 4), 1); /* a tie: 50 us wins */
		rtt[1] = 0;
		CHECK_EQ(mm_route_pick(hops, rtt, 4), 0); /* measured beats unmeasured */
		unsigned none[2] = {0, 0};
		CHECK_EQ(mm_route_pick(none, rtt, 2), -1);
	}

	mm_id_free(&o);
	mm_id_free(&r1);
	mm_id_free(&r2);
	mm_id_free(&d);
	mm_id_free(&x);
	mm_wire_dec_free(dec);
	fprintf(stderr, "test_direct: ok\n");
	return 0;
}
