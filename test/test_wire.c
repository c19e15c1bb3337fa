/* Wire codec: a round trip for every message type, and the rejection of
 * each kind of malformed input (bad msgpack, bombs, depth, trailing bytes,
 * wrong types, ranges, lengths, duplicate keys, unknown commands), with
 * unknown fields ignored. */
#include <msgpack.h>
#include <errno.h>
#include <string.h>

#include "frame.h"
#include "test.h"
#include "wire_cmp.h"
#include "wire.h"

static mm_wire_dec_t *dec;
static uint8_t buf[65536];

/* Encode, check the frame header, decode, return the decoded message. */
static void
round_trip(const mm_wire_msg_t *in, mm_wire_msg_t *out)
{
	int n = mm_wire_encode(in, buf, sizeof(buf));
	CHECK_GT(n, 4);
	uint32_t len = (uint32_t)buf[0] << 24 | buf[1] << 16 | buf[2] << 8 | buf[3];
	CHECK_EQ(len, (uint32_t)n - 4);
	const char *why = NULL;
	int r = mm_wire_decode(dec, buf + 4, len, out, &why);
	if (r != MM_WIRE_OK)
		fprintf(stderr, "decode: %s\n", why);
	CHECK_EQ(r, MM_WIRE_OK);
	CHECK_EQ(out->type, in->type);
	CHECK_EQ(out->req, in->req);
}

static void
fill(uint8_t *p, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

static void
test_round_trips(void)
{
	mm_wire_msg_t in, out;

	memset(&in, 0, sizeof(in));
	in.type = MM_W_HELLO;
	in.req = 1;
	in.u.hello.version = MM_WIRE_VERSION;
	in.u.hello.net = (mm_bytes_t){(const uint8_t *)"main", 4};
	fill(in.u.hello.pub, 32, 3);
	fill(in.u.hello.csig, 64, 4);
	in.u.hello.pow = 0xfedcba9876543210ull;
	in.u.hello.port = 7946;
	in.u.hello.ts = 1763700000123ull;
	in.u.hello.agent = (mm_bytes_t){(const uint8_t *)"meshmap/0.1.0", 13};
	round_trip(&in, &out);
	CHECK_EQ(out.u.hello.version, 1);
	CHECK_EQ(out.u.hello.net.len, 4);
	CHECK_EQ(memcmp(out.u.hello.net.ptr, "main", 4), 0);
	CHECK_EQ(memcmp(out.u.hello.pub, in.u.hello.pub, 32), 0);
	CHECK_EQ(memcmp(out.u.hello.csig, in.u.hello.csig, 64), 0);
	CHECK(out.u.hello.pow == in.u.hello.pow);
	CHECK_EQ(out.u.hello.port, 7946);
	CHECK(out.u.hello.ts == in.u.hello.ts);
	CHECK_EQ(out.u.hello.agent.len, 13);
	in.u.hello.port = 0; /* optional fields absent */
	in.u.hello.agent.len = 0;
	round_trip(&in, &out);
	CHECK_EQ(out.u.hello.port, 0);
	CHECK_EQ(out.u.hello.agent.len, 0);

	memset(&in, 0, sizeof(in));
	in.type = MM_W_PING;
	in.req = 77;
	in.u.ping.ts = 123456789;
	round_trip(&in, &out);
	CHECK_EQ(out.u.ping.ts, 123456789);
	in.type = MM_W_PONG;
	round_trip(&in, &out);
	CHECK_EQ(out.u.ping.ts, 123456789);

	memset(&in, 0, sizeof(in));
	in.type = MM_W_ERROR;
	in.req = 5;
	in.u.error.code = MM_WERR_UNKNOWN_CMD;
	in.u.error.msg = (mm_bytes_t){(const uint8_t *)"no such command", 15};
	round_trip(&in, &out);
	CHECK_EQ(out.u.error.code, MM_WERR_UNKNOWN_CMD);
	CHECK_EQ(memcmp(out.u.error.msg.ptr, "no such command", 15), 0);

	memset(&in, 0, sizeof(in));
	in.type = MM_W_EVENT; /* no req: gossip is not a request */
	fill(in.u.event.pub, 32, 1);
	in.u.event.pow = 0x0123456789abcdefull;
	fill(in.u.event.peer, 32, 2);
	fill(in.u.event.sig, 64, 9);
	in.u.event.kind = 2;
	in.u.event.dir = 1;
	in.u.event.seq = 4000000000u;
	in.u.event.ts = 1763700000999ull;
	in.u.event.ttl = 7;
	round_trip(&in, &out);
	CHECK_EQ(memcmp(&out.u.event, &in.u.event, sizeof(in.u.event)), 0);
	/* with the origin's neighbour list: 3 ids, and an empty list */
	in.u.event.has_nb = 1;
	in.u.event.nnb = 3;
	in.u.event.nbd = 5;
	fill(in.u.event.nb[0], 96, 3);
	round_trip(&in, &out);
	CHECK_EQ(memcmp(&out.u.event, &in.u.event, sizeof(in.u.event)), 0);
	memset(in.u.event.nb, 0, sizeof(in.u.event.nb));
	in.u.event.nnb = 0;
	in.u.event.nbd = 0;
	round_trip(&in, &out);
	CHECK_EQ(out.u.event.has_nb, 1);
	CHECK_EQ(out.u.event.nnb, 0);
	in.u.event.nbd = 1; /* a direction for an entry that is not there */
	uint8_t tmp[2048];
	CHECK_EQ(mm_wire_encode(&in, tmp, sizeof(tmp)), -EINVAL);
	/* The largest event (32 ids, every field at its widest) must fit the
	 * node's 2048-byte encode buffer (actors/node.c). */
	in.u.event.nnb = MM_WIRE_NB_MAX;
	in.u.event.nbd = UINT32_MAX;
	in.u.event.ttl = 255;
	in.u.event.ts = UINT64_MAX;
	in.u.event.pow = UINT64_MAX;
	int full = mm_wire_encode(&in, tmp, sizeof(tmp));
	in.u.event.nnb = 16;
	in.u.event.nbd = 0xffff;
	int half = mm_wire_encode(&in, tmp, sizeof(tmp));
	CHECK_GT(full, 0);
	CHECK_GT(half, 0);
	fprintf(stderr, "   event frame with 32 ids: %d bytes; with 16: %d\n", full, half);

	memset(&in, 0, sizeof(in));
	in.type = MM_W_GET_PEERS;
	in.req = 9;
	in.u.get_peers.cursor = 1234;
	in.u.get_peers.limit = 64;
	round_trip(&in, &out);
	CHECK_EQ(out.u.get_peers.cursor, 1234);
	CHECK_EQ(out.u.get_peers.limit, 64);

	static uint8_t ids[64][32], nbs[64][32 * 32];
	memset(&in, 0, sizeof(in));
	in.type = MM_W_PEERS;
	in.req = 9;
	in.u.peers.next = 1298;
	in.u.peers.count = 64;
	for (int i = 0; i < 64; i++) {
		mm_w_peer_t *q = &in.u.peers.peer[i];
		fill(ids[i], 32, (uint8_t)i);
		fill(nbs[i], sizeof(nbs[i]), (uint8_t)(i + 100));
		q->id = ids[i];
		q->seq = (uint32_t)i * 1000;
		q->nnb = (uint8_t)(i % 33);
		q->nb = nbs[i];
		q->dirs = 0xa5a5a5a5u >> (i % 8);
		q->has_addr = i % 3 != 0;
		if (i % 2) { /* IPv4: sent as 4 bytes */
			q->ip[10] = q->ip[11] = 0xff;
			q->ip[12] = 10;
			q->ip[15] = (uint8_t)i;
		} else {
			fill(q->ip, 16, (uint8_t)i);
		}
		q->port = q->has_addr ? (uint16_t)(7000 + i) : 0;
	}
	round_trip(&in, &out);
	CHECK_EQ(out.u.peers.next, 1298);
	CHECK_EQ(out.u.peers.count, 64);
	for (int i = 0; i < 64; i++) {
		const mm_w_peer_t *a = &in.u.peers.peer[i], *b = &out.u.peers.peer[i];
		CHECK_EQ(memcmp(a->id, b->id, 32), 0);
		CHECK_EQ(a->seq, b->seq);
		CHECK_EQ(a->nnb, b->nnb);
		CHECK_EQ(memcmp(a->nb, b->nb, 32u * a->nnb), 0);
		CHECK_EQ(a->dirs, b->dirs);
		CHECK_EQ(a->has_addr, b->has_addr);
		if (a->has_addr) {
			CHECK_EQ(memcmp(a->ip, b->ip, 16), 0);
			CHECK_EQ(a->port, b->port);
		}
	}
	/* The encoder refuses what the decoder would refuse. */
	in.u.peers.peer[3].nnb = 33;
	CHECK_EQ(mm_wire_encode(&in, buf, sizeof(buf)), -EINVAL);
	in.u.peers.peer[3].nnb = 3;
	CHECK_EQ(mm_wire_encode(&in, buf, 100), -ENOSPC);
	in.type = 0;
	CHECK_EQ(mm_wire_encode(&in, buf, sizeof(buf)), -EINVAL);
}

/* Anti-entropy messages: whole records only, at most 1024, empty allowed. */
static void
test_digest_want(void)
{
	static uint8_t ents[MM_WIRE_DIGEST_ENT * MM_WIRE_DIGEST_MAX + 36];
	fill(ents, sizeof(ents), 9);
	mm_wire_msg_t in, out;
	memset(&in, 0, sizeof(in));
	in.type = MM_W_DIGEST;
	in.u.digest.ents = (mm_bytes_t){ents, MM_WIRE_DIGEST_ENT * 3};
	round_trip(&in, &out);
	CHECK_EQ(out.u.digest.ents.len, 108);
	CHECK_EQ(memcmp(out.u.digest.ents.ptr, ents, 108), 0);
	/* the largest fits a frame */
	in.u.digest.ents.len = MM_WIRE_DIGEST_ENT * MM_WIRE_DIGEST_MAX;
	round_trip(&in, &out);
	CHECK_EQ(out.u.digest.ents.len, MM_WIRE_DIGEST_ENT * MM_WIRE_DIGEST_MAX);
	in.u.digest.ents.len += MM_WIRE_DIGEST_ENT;
	CHECK_EQ(mm_wire_encode(&in, buf, sizeof(buf)), -EINVAL);
	in.u.digest.ents.len = 35;
	CHECK_EQ(mm_wire_encode(&in, buf, sizeof(buf)), -EINVAL);
	in.type = MM_W_WANT;
	in.u.want.ids = (mm_bytes_t){NULL, 0};
	round_trip(&in, &out);
	CHECK_EQ(out.u.want.ids.len, 0);
	in.u.want.ids = (mm_bytes_t){ents, 64};
	in.req = 5;
	round_trip(&in, &out);
	CHECK_EQ(out.u.want.ids.len, 64);
	CHECK_EQ(out.req, 5);
	/* a decoder fed a partial record refuses it: encode 64 bytes as
	 * digest entries by hand (not a multiple of 36) */
	in.type = MM_W_DIGEST;
	in.u.digest.ents = (mm_bytes_t){ents, 72};
	int n = mm_wire_encode(&in, buf, sizeof(buf));
	CHECK_GT(n, 0);
	/* the bin's last 36 bytes become 35: patch the bin length byte */
	uint8_t *bl = memmem(buf, (size_t)n, "\xc4\x48", 2); /* bin8, 72 */
	CHECK(bl != NULL);
	bl[1] = 71;
	const char *why = NULL;
	CHECK_EQ(mm_wire_decode(dec, buf + 4, (uint32_t)n - 5, &out, &why), MM_WIRE_EPARAMS);
	CHECK(strstr(why, "digest.ents") != NULL);
	/* ihave and iwant: the same layouts under their own names */
	in.type = MM_W_IHAVE;
	in.u.ihave.ents = (mm_bytes_t){ents, MM_WIRE_DIGEST_ENT * 2};
	round_trip(&in, &out);
	CHECK_EQ(out.type, MM_W_IHAVE);
	CHECK_EQ(out.u.ihave.ents.len, 72);
	CHECK_EQ(memcmp(out.u.ihave.ents.ptr, ents, 72), 0);
	in.u.ihave.ents.len = 35;
	CHECK_EQ(mm_wire_encode(&in, buf, sizeof(buf)), -EINVAL);
	in.type = MM_W_IWANT;
	in.u.iwant.ids = (mm_bytes_t){ents, 96};
	round_trip(&in, &out);
	CHECK_EQ(out.type, MM_W_IWANT);
	CHECK_EQ(out.u.iwant.ids.len, 96);
	in.u.iwant.ids.len = 33;
	CHECK_EQ(mm_wire_encode(&in, buf, sizeof(buf)), -EINVAL);
	in.u.iwant.ids.len = 32 * (MM_WIRE_DIGEST_MAX + 1);
	CHECK_EQ(mm_wire_encode(&in, buf, sizeof(buf)), -EINVAL);
	CHECK(strcmp(mm_wire_type_name(MM_W_IHAVE), "ihave") == 0);
	CHECK(strcmp(mm_wire_type_name(MM_W_IWANT), "iwant") == 0);
}

/* ---- hostile input ---------------------------------------------------------- */

static msgpack_sbuffer sb;
static msgpack_packer pk;

static void
begin(void)
{
	msgpack_sbuffer_clear(&sb);
}

static void
str(const char *s)
{
	msgpack_pack_str(&pk, strlen(s));
	msgpack_pack_str_body(&pk, s, strlen(s));
}

static void
bin(size_t n)
{
	static uint8_t z[4096];
	msgpack_pack_bin(&pk, n);
	msgpack_pack_bin_body(&pk, z, n);
}

static int
decode_sb(mm_wire_msg_t *m, const char **why)
{
	return mm_wire_decode(dec, (const uint8_t *)sb.data, (uint32_t)sb.size, m, why);
}

static int
decode_raw(const void *p, size_t n, const char **why)
{
	mm_wire_msg_t m;
	return mm_wire_decode(dec, p, (uint32_t)n, &m, why);
}

/* A ping with params built by fn(). */
static int
ping_with(void (*fn)(void), const char **why)
{
	begin();
	msgpack_pack_map(&pk, 3);
	str("cmd");
	str("ping");
	str("req");
	msgpack_pack_uint32(&pk, 3);
	str("params");
	fn();
	mm_wire_msg_t m;
	return decode_sb(&m, why);
}

static void p_ok(void) { msgpack_pack_map(&pk, 1); str("ts"); msgpack_pack_uint64(&pk, 5); }
static void p_extra(void)
{
	msgpack_pack_map(&pk, 3);
	str("ts");
	msgpack_pack_uint64(&pk, 5);
	str("future_field");
	msgpack_pack_array(&pk, 2);
	msgpack_pack_nil(&pk);
	msgpack_pack_true(&pk);
	str("another");
	bin(100);
}
static void p_missing(void) { msgpack_pack_map(&pk, 0); }
static void p_negative(void) { msgpack_pack_map(&pk, 1); str("ts"); msgpack_pack_int64(&pk, -5); }
static void p_string(void) { msgpack_pack_map(&pk, 1); str("ts"); str("5"); }
static void p_float(void) { msgpack_pack_map(&pk, 1); str("ts"); msgpack_pack_double(&pk, 5.0); }
static void p_dup(void)
{
	msgpack_pack_map(&pk, 2);
	str("ts");
	msgpack_pack_uint64(&pk, 5);
	str("ts");
	msgpack_pack_uint64(&pk, 6);
}
static void p_emptykeys(void) /* found by fuzz_wire: "" twice */
{
	msgpack_pack_map(&pk, 3);
	str("ts");
	msgpack_pack_uint64(&pk, 5);
	str("");
	msgpack_pack_uint8(&pk, 1);
	str("");
	msgpack_pack_uint8(&pk, 2);
}
static void p_oneempty(void)
{
	msgpack_pack_map(&pk, 2);
	str("ts");
	msgpack_pack_uint64(&pk, 5);
	str("");
	msgpack_pack_uint8(&pk, 1);
}
static void p_intkey(void) { msgpack_pack_map(&pk, 1); msgpack_pack_uint8(&pk, 1); msgpack_pack_uint8(&pk, 1); }
static void p_notmap(void) { msgpack_pack_array(&pk, 1); msgpack_pack_uint8(&pk, 1); }
static void p_toomany(void)
{
	msgpack_pack_map(&pk, 40);
	for (int i = 0; i < 40; i++) {
		char k[8];
		snprintf(k, sizeof(k), "k%d", i);
		str(k);
		msgpack_pack_uint8(&pk, 1);
	}
}

static void
test_params_validation(void)
{
	const char *why;
	CHECK_EQ(ping_with(p_ok, &why), MM_WIRE_OK);
	CHECK_EQ(ping_with(p_extra, &why), MM_WIRE_OK); /* forward compatible */
	CHECK_EQ(ping_with(p_oneempty, &why), MM_WIRE_OK);
	struct {
		void (*fn)(void);
		int want;
	} bad[] = {{p_missing, MM_WIRE_EPARAMS}, {p_negative, MM_WIRE_EPARAMS},
	    {p_string, MM_WIRE_EPARAMS}, {p_float, MM_WIRE_EPARAMS},
	    {p_dup, MM_WIRE_EPARAMS}, {p_intkey, MM_WIRE_EPARAMS},
	    {p_emptykeys, MM_WIRE_EPARAMS},
	    {p_notmap, MM_WIRE_EPARAMS}, {p_toomany, MM_WIRE_EPARAMS}};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		CHECK_EQ(ping_with(bad[i].fn, &why), bad[i].want);
		CHECK(why != NULL && why[0] != '\0'); /* says what is wrong */
	}
}

static void
hello_pub(size_t publen, const char *net, uint64_t version, int *rc)
{
	begin();
	msgpack_pack_map(&pk, 2);
	str("cmd");
	str("hello");
	str("params");
	msgpack_pack_map(&pk, 6);
	str("v");
	msgpack_pack_uint64(&pk, version);
	str("net");
	str(net);
	str("pub");
	bin(publen);
	str("csig");
	bin(64);
	str("pow");
	msgpack_pack_uint64(&pk, 1);
	str("ts");
	msgpack_pack_uint64(&pk, 1);
	mm_wire_msg_t m;
	const char *why;
	*rc = decode_sb(&m, &why);
}

/* An event whose nb is nblen bytes (-1: absent) and nbd (-1: absent). */
static int
event_nb(int nblen, int64_t nbd)
{
	begin();
	msgpack_pack_map(&pk, 2);
	str("cmd");
	str("event");
	str("params");
	msgpack_pack_map(&pk, 9 + (nblen >= 0) + (nbd >= 0));
	str("pub");
	bin(32);
	str("pow");
	msgpack_pack_uint64(&pk, 1);
	str("peer");
	bin(32);
	str("kind");
	msgpack_pack_uint64(&pk, 1);
	str("dir");
	msgpack_pack_uint64(&pk, 1);
	str("seq");
	msgpack_pack_uint64(&pk, 1);
	str("ts");
	msgpack_pack_uint64(&pk, 1);
	str("ttl");
	msgpack_pack_uint64(&pk, 1);
	str("sig");
	bin(64);
	if (nblen >= 0) {
		str("nb");
		bin((size_t)nblen);
	}
	if (nbd >= 0) {
		str("nbd");
		msgpack_pack_uint64(&pk, (uint64_t)nbd);
	}
	mm_wire_msg_t m;
	const char *why;
	return decode_sb(&m, &why);
}

static void
test_event_lists(void)
{
	CHECK_EQ(event_nb(-1, -1), MM_WIRE_OK);       /* a delta only */
	CHECK_EQ(event_nb(0, -1), MM_WIRE_OK);        /* empty list */
	CHECK_EQ(event_nb(64, 3), MM_WIRE_OK);
	CHECK_EQ(event_nb(32 * 32, 0xffffffff), MM_WIRE_OK); /* the maximum */
	CHECK_EQ(event_nb(33, -1), MM_WIRE_EPARAMS);  /* not whole ids */
	CHECK_EQ(event_nb(32 * 33, -1), MM_WIRE_EPARAMS); /* too many */
	CHECK_EQ(event_nb(64, 4), MM_WIRE_EPARAMS);   /* bit beyond the list */
	CHECK_EQ(event_nb(-1, 0), MM_WIRE_EPARAMS);   /* nbd without nb */
	CHECK_EQ(event_nb(64, 1ll << 33), MM_WIRE_EPARAMS);
}

static void
test_lengths_and_ranges(void)
{
	int rc;
	hello_pub(32, "main", 1, &rc);
	CHECK_EQ(rc, MM_WIRE_OK);
	hello_pub(31, "main", 1, &rc);
	CHECK_EQ(rc, MM_WIRE_EPARAMS);
	hello_pub(33, "main", 1, &rc);
	CHECK_EQ(rc, MM_WIRE_EPARAMS);
	hello_pub(32, "", 1, &rc);
	CHECK_EQ(rc, MM_WIRE_EPARAMS);
	hello_pub(32, "a-network-name-longer-than-32-bytes", 1, &rc);
	CHECK_EQ(rc, MM_WIRE_EPARAMS);
	hello_pub(32, "main", 1ull << 32, &rc);
	CHECK_EQ(rc, MM_WIRE_EPARAMS);

	/* event: kind 0 or 3, dir 2, seq 0, ttl 256 */
	const struct {
		const char *key;
		uint64_t val;
	} ev_bad[] = {{"kind", 0}, {"kind", 3}, {"dir", 2}, {"seq", 0}, {"ttl", 256},
	    {"seq", 1ull << 32}};
	for (size_t i = 0; i < sizeof(ev_bad) / sizeof(ev_bad[0]); i++) {
		begin();
		msgpack_pack_map(&pk, 2);
		str("cmd");
		str("event");
		str("params");
		msgpack_pack_map(&pk, 9);
		const char *keys[] = {"kind", "dir", "seq", "ts", "ttl", "pow"};
		uint64_t vals[] = {1, 0, 1, 1, 3, 7};
		for (int k = 0; k < 6; k++) {
			str(keys[k]);
			msgpack_pack_uint64(&pk, strcmp(keys[k], ev_bad[i].key) == 0 ?
			    ev_bad[i].val : vals[k]);
		}
		str("pub");
		bin(32);
		str("peer");
		bin(32);
		str("sig");
		bin(64);
		mm_wire_msg_t m;
		const char *why;
		CHECK_EQ(decode_sb(&m, &why), MM_WIRE_EPARAMS);
	}
	/* peers: 65 entries; nb not a multiple of 32; ip of 5 bytes */
	for (int c = 0; c < 3; c++) {
		begin();
		msgpack_pack_map(&pk, 2);
		str("cmd");
		str("peers");
		str("params");
		msgpack_pack_map(&pk, 1);
		str("list");
		unsigned n = c == 0 ? 65 : 1;
		msgpack_pack_array(&pk, n);
		for (unsigned i = 0; i < n; i++) {
			msgpack_pack_map(&pk, c == 2 ? 5 : 3);
			str("id");
			bin(32);
			str("seq");
			msgpack_pack_uint32(&pk, 1);
			str("nb");
			bin(c == 1 ? 33 : 64);
			if (c == 2) {
				str("ip");
				bin(5);
				str("port");
				msgpack_pack_uint16(&pk, 1);
			}
		}
		mm_wire_msg_t m;
		const char *why;
		CHECK_EQ(decode_sb(&m, &why), MM_WIRE_EPARAMS);
	}
}

static void
test_unknown_command(void)
{
	begin();
	msgpack_pack_map(&pk, 3);
	str("cmd");
	str("teleport");
	str("req");
	msgpack_pack_uint32(&pk, 4242);
	str("params");
	msgpack_pack_map(&pk, 0);
	mm_wire_msg_t m;
	const char *why;
	CHECK_EQ(decode_sb(&m, &why), MM_WIRE_EUNKNOWN);
	CHECK_EQ(m.req, 4242); /* so that the error answer can name it */
	/* missing cmd, cmd not a string */
	begin();
	msgpack_pack_map(&pk, 1);
	str("req");
	msgpack_pack_uint32(&pk, 1);
	CHECK_EQ(decode_sb(&m, &why), MM_WIRE_EPARAMS);
	begin();
	msgpack_pack_map(&pk, 1);
	str("cmd");
	msgpack_pack_uint32(&pk, 1);
	CHECK_EQ(decode_sb(&m, &why), MM_WIRE_EPARAMS);
}

static void
test_bad_msgpack(void)
{
	const char *why;
	/* Container bombs: counts far above the bytes present. */
	const uint8_t arr32[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
	const uint8_t map32[] = {0xdf, 0x7f, 0xff, 0xff, 0xff, 0xa1, 'x'};
	const uint8_t arr16[] = {0xdc, 0xff, 0xff, 0x01, 0x02};
	const uint8_t bin32[] = {0xc6, 0x7f, 0xff, 0xff, 0xff, 0x00};
	const uint8_t str8[] = {0xd9, 0x10, 'a', 'b'};
	const uint8_t reserved[] = {0xc1};
	const uint8_t ext[] = {0xd4, 0x01, 0x02};
	const uint8_t trailing[] = {0x80, 0x00};
	const uint8_t empty_map[] = {0x80};
	const uint8_t not_map[] = {0x91, 0x01};
	struct {
		const uint8_t *p;
		size_t n;
		int want;
	} cases[] = {{arr32, sizeof(arr32), MM_WIRE_EMSGPACK},
	    {map32, sizeof(map32), MM_WIRE_EMSGPACK},
	    {arr16, sizeof(arr16), MM_WIRE_EMSGPACK},
	    {bin32, sizeof(bin32), MM_WIRE_EMSGPACK},
	    {str8, sizeof(str8), MM_WIRE_EMSGPACK},
	    {reserved, sizeof(reserved), MM_WIRE_EMSGPACK},
	    {ext, sizeof(ext), MM_WIRE_EMSGPACK},
	    {trailing, sizeof(trailing), MM_WIRE_EMSGPACK},
	    {empty_map, sizeof(empty_map), MM_WIRE_EPARAMS}, /* no cmd */
	    {not_map, sizeof(not_map), MM_WIRE_EMSGPACK}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		why = NULL;
		CHECK_EQ(decode_raw(cases[i].p, cases[i].n, &why), cases[i].want);
		CHECK(why != NULL && why[0] != '\0');
	}
	/* Nesting deeper than the limit. */
	uint8_t deep[64];
	memset(deep, 0x91, sizeof(deep)); /* [[[[...]]]] */
	deep[sizeof(deep) - 1] = 0x01;
	CHECK_EQ(decode_raw(deep, sizeof(deep), &why), MM_WIRE_EMSGPACK);
	/* Every truncation of a valid message is refused. */
	mm_wire_msg_t in;
	memset(&in, 0, sizeof(in));
	in.type = MM_W_EVENT;
	in.u.event.kind = 1;
	in.u.event.seq = 1;
	int n = mm_wire_encode(&in, buf, sizeof(buf));
	CHECK_GT(n, 4);
	for (int cut = 1; cut < n - 4; cut++)
		CHECK_EQ(decode_raw(buf + 4, (size_t)cut, &why), MM_WIRE_EMSGPACK);
}

/* ---- the event fast path agrees with the general decoder ---- */

static mm_wire_dec_t *gdec;

typedef int (*fast_fn)(const uint8_t *, uint32_t, mm_wire_msg_t *);
typedef int (*same_fn)(const mm_wire_msg_t *, const mm_wire_msg_t *);

/* Decode sb both ways (mm_wire_decode and the general path) and with the
 * fast path `fast` for messages of `type`; the results must agree.
 * Returns the fast path's verdict (1 taken, 0 left to the general path). */
static int
fast_both(int *rc, fast_fn fast, int type, same_fn same)
{
	mm_wire_msg_t a, b, f;
	const char *wa = NULL, *wb = NULL;
	const uint8_t *p = (const uint8_t *)sb.data;
	uint32_t n = (uint32_t)sb.size;
	int ra = mm_wire_decode(dec, p, n, &a, &wa);
	int rb = mm_wire_decode_general(gdec, p, n, &b, &wb);
	int taken = fast(p, n, &f);
	CHECK_EQ(ra, rb);
	if (ra != MM_WIRE_OK)
		CHECK(strcmp(wa, wb) == 0); /* the same reason */
	if (ra == MM_WIRE_OK) {
		CHECK_EQ(a.type, b.type);
		CHECK_EQ(a.req, b.req);
		if (a.type == type)
			CHECK(same(&a, &b));
	}
	if (taken) {
		CHECK_EQ(rb, MM_WIRE_OK); /* it takes nothing the general path refuses */
		CHECK_EQ(f.type, type);
		CHECK_EQ(f.req, b.req);
		CHECK(same(&f, &b));
	}
	*rc = ra;
	return taken;
}

static int
same_event(const mm_wire_msg_t *a, const mm_wire_msg_t *b)
{
	return memcmp(&a->u.event, &b->u.event, sizeof(a->u.event)) == 0;
}

static int
event_both(int *rc)
{
	return fast_both(rc, mm_wire_decode_event_fast, MM_W_EVENT, same_event);
}

/* One event body: variant v changes one thing. */
enum {
	FV_PLAIN, FV_REQ, FV_NB0, FV_NB12, FV_NB32, FV_REORDER, FV_WIDE_INTS,
	FV_STR8_KEYS, FV_BIN16, FV_MAP16,
	/* left to the general path, which accepts */
	FV_UNKNOWN_KEY, FV_SIGNED_INT, FV_CMD_LAST,
	FV_CMD_PING, /* a ping: its ts is there, the rest ignored */
	/* refused */
	FV_DUP_SEQ, FV_TTL_256, FV_KIND_0, FV_KIND_3, FV_SEQ_0, FV_NBD_NO_NB,
	FV_NBD_BEYOND, FV_NB_33, FV_PUB_31, FV_PUB_STR, FV_NEG_TS, FV_NO_SIG,
	FV_TRAILING, FV_REQ_BIG, FV_NO_PARAMS,
	FV__N
};

static void
raw(const void *p, size_t n)
{
	msgpack_sbuffer_write(&sb, p, n);
}

/* a key, as str8 in the variant that asks for it */
static void
vkey(const char *k, int v_)
{
	if (v_ == FV_STR8_KEYS) {
		uint8_t h[2] = {0xd9, (uint8_t)strlen(k)};
		raw(h, 2);
		raw(k, strlen(k));
	} else
		str(k);
}

static void
ukey(const char *k, uint64_t v, int v_)
{
	vkey(k, v_);
	if (v_ == FV_WIDE_INTS) {
		uint8_t b[9] = {0xcf};
		for (int i = 0; i < 8; i++)
			b[1 + i] = (uint8_t)(v >> (56 - 8 * i));
		raw(b, 9);
	} else if (v_ == FV_SIGNED_INT && strcmp(k, "dir") == 0) {
		uint8_t b[2] = {0xd0, (uint8_t)v}; /* int8, not negative */
		raw(b, 2);
	} else if (v_ == FV_NEG_TS && strcmp(k, "ts") == 0)
		msgpack_pack_int64(&pk, -1);
	else
		msgpack_pack_uint64(&pk, v);
}

static void
bkey(const char *k, size_t n, int v_)
{
	vkey(k, v_);
	static uint8_t z[32 * 33];
	for (size_t i = 0; i < sizeof(z); i++)
		z[i] = (uint8_t)(i * 13 + n);
	if (v_ == FV_BIN16) {
		uint8_t h[3] = {0xc5, (uint8_t)(n >> 8), (uint8_t)n};
		raw(h, 3);
		raw(z, n);
	} else if (v_ == FV_PUB_STR && strcmp(k, "pub") == 0) {
		msgpack_pack_str(&pk, n);
		msgpack_pack_str_body(&pk, z, n);
	} else {
		msgpack_pack_bin(&pk, n);
		msgpack_pack_bin_body(&pk, z, n);
	}
}

static void
event_variant(int v)
{
	begin();
	int top = 2 + (v == FV_REQ || v == FV_REQ_BIG) - (v == FV_NO_PARAMS);
	msgpack_pack_map(&pk, (uint32_t)top);
	if (v != FV_CMD_LAST) {
		str("cmd");
		str(v == FV_CMD_PING ? "ping" : "event");
	}
	if (v == FV_REQ || v == FV_REQ_BIG) {
		str("req");
		msgpack_pack_uint64(&pk, v == FV_REQ ? 0xffffffffull : 1ull << 32);
	}
	if (v == FV_NO_PARAMS)
		goto end;
	str("params");
	unsigned nkeys = 9 + (v == FV_NB0 || v == FV_NB12 || v == FV_NB32 ||
	    v == FV_NBD_BEYOND || v == FV_NB_33) + (v == FV_NB12 || v == FV_NB32 ||
	    v == FV_NBD_NO_NB || v == FV_NBD_BEYOND) + (v == FV_UNKNOWN_KEY) +
	    (v == FV_DUP_SEQ) - (v == FV_NO_SIG);
	if (v == FV_MAP16) {
		uint8_t h[3] = {0xde, 0, (uint8_t)nkeys};
		raw(h, 3);
	} else
		msgpack_pack_map(&pk, nkeys);
	if (v == FV_REORDER) {
		ukey("ttl", 9, v);
		ukey("ts", 1700000000123ull, v);
		bkey("sig", 64, v);
		ukey("seq", 77, v);
		bkey("peer", 32, v);
		ukey("dir", 1, v);
		ukey("kind", 2, v);
		ukey("pow", UINT64_MAX, v);
		bkey("pub", 32, v);
		goto end;
	}
	bkey("pub", v == FV_PUB_31 ? 31 : 32, v);
	ukey("pow", UINT64_MAX, v);
	bkey("peer", 32, v);
	ukey("kind", v == FV_KIND_0 ? 0 : v == FV_KIND_3 ? 3 : 1, v);
	ukey("dir", 1, v);
	ukey("seq", v == FV_SEQ_0 ? 0 : 0xffffffffu, v);
	ukey("ts", 1700000000123ull, v);
	ukey("ttl", v == FV_TTL_256 ? 256 : 255, v);
	if (v != FV_NO_SIG)
		bkey("sig", 64, v);
	if (v == FV_NB0)
		bkey("nb", 0, v);
	if (v == FV_NB12 || v == FV_NBD_BEYOND)
		bkey("nb", 12 * 32, v);
	if (v == FV_NB32)
		bkey("nb", 32 * 32, v);
	if (v == FV_NB_33)
		bkey("nb", 33, v);
	if (v == FV_NB12 || v == FV_NBD_NO_NB)
		ukey("nbd", 0x0a5a, v);
	if (v == FV_NBD_BEYOND)
		ukey("nbd", 1u << 12, v);
	if (v == FV_NB32)
		ukey("nbd", 0xffffffffu, v);
	if (v == FV_UNKNOWN_KEY) {
		str("future");
		msgpack_pack_array(&pk, 1);
		msgpack_pack_nil(&pk);
	}
	if (v == FV_DUP_SEQ)
		ukey("seq", 5, v);
end:
	if (v == FV_CMD_LAST) {
		str("cmd");
		str("event");
	}
	if (v == FV_TRAILING)
		raw("\xc0", 1);
}

/* Variants [0, general) are the fast path's own; [general, refused) are
 * valid but left to the general path; the rest are refused. */
static void
check_variants(int nv, void (*variant)(int), int (*both)(int *), int general,
    int refused)
{
	for (int v = 0; v < nv; v++) {
		variant(v);
		int rc, taken = both(&rc);
		if (v < general) {
			if (!taken)
				fprintf(stderr, "variant %d not taken\n", v);
			CHECK_EQ(taken, 1);
			CHECK_EQ(rc, MM_WIRE_OK);
		} else if (v < refused) {
			CHECK_EQ(taken, 0);
			CHECK_EQ(rc, MM_WIRE_OK);
		} else {
			CHECK_EQ(taken, 0);
			if (rc == MM_WIRE_OK)
				fprintf(stderr, "variant %d accepted\n", v);
			CHECK(rc != MM_WIRE_OK);
		}
	}
}

/* buf holds an encoded frame of n bytes: every truncation is refused by
 * both paths, and every one-bit change is judged alike by both. */
static void
check_mutations(int n, int (*both)(int *))
{
	for (int cut = 1; cut < n - 4; cut++) {
		msgpack_sbuffer_clear(&sb);
		raw(buf + 4, (size_t)cut);
		int rc;
		CHECK_EQ(both(&rc), 0);
		CHECK(rc != MM_WIRE_OK);
	}
	for (int at = 0; at < n - 4; at++)
		for (int x = 1; x < 256; x <<= 1) {
			msgpack_sbuffer_clear(&sb);
			raw(buf + 4, (size_t)(n - 4));
			sb.data[at] ^= (char)x;
			int rc;
			both(&rc);
		}
}

static void
test_event_fast_path(void)
{
	gdec = mm_wire_dec_new();
	check_variants(FV__N, event_variant, event_both, FV_UNKNOWN_KEY, FV_DUP_SEQ);
	/* What mm_wire_encode writes is the fast path's, every field read. */
	mm_wire_msg_t in, out;
	memset(&in, 0, sizeof(in));
	in.type = MM_W_EVENT;
	in.req = 9;
	mm_w_event_t *e = &in.u.event;
	fill(e->pub, 32, 1);
	fill(e->peer, 32, 2);
	fill(e->sig, 64, 3);
	e->kind = 2;
	e->dir = 1;
	e->seq = 123456;
	e->ts = 1700000000999ull;
	e->ttl = 17;
	e->pow = 0x0123456789abcdefull;
	e->has_nb = 1;
	e->nnb = 5;
	fill(&e->nb[0][0], 5 * 32, 4);
	e->nbd = 0x15;
	int n = mm_wire_encode(&in, buf, sizeof(buf));
	CHECK_GT(n, 4);
	CHECK_EQ(mm_wire_decode_event_fast(buf + 4, (uint32_t)n - 4, &out), 1);
	CHECK_EQ(out.type, MM_W_EVENT);
	CHECK_EQ(out.req, 9u);
	CHECK(memcmp(&out.u.event, e, sizeof(*e)) == 0);
	/* Every truncation and every one-bit change agrees too. */
	check_mutations(n, event_both);
	mm_wire_dec_free(gdec);
}

/* ---- the direct fast path agrees with the general decoder ---- */

static int
same_direct(const mm_wire_msg_t *a, const mm_wire_msg_t *b)
{
	return wire_direct_same(&a->u.direct, &b->u.direct);
}

static int
direct_both(int *rc)
{
	return fast_both(rc, mm_wire_decode_direct_fast, MM_W_DIRECT, same_direct);
}

enum {
	DV_PLAIN, DV_REQ, DV_RR, DV_RR0, DV_DATA0, DV_DATA_MAX, DV_ROUTE16,
	DV_REORDER, DV_WIDE_INTS, DV_STR8_KEYS, DV_BIN16, DV_MAP16,
	/* left to the general path, which accepts */
	DV_RW, DV_UNKNOWN_KEY, DV_SIGNED_INT, DV_CMD_LAST,
	/* refused */
	DV_AT0, DV_AT_DST1, DV_RR2, DV_ROUTE1, DV_ROUTE17, DV_ROUTE_ODD,
	DV_ROUTE_REPEAT, DV_DATA_BIG, DV_SIG63, DV_NO_NONCE, DV_DUP_AT,
	DV_TRAILING, DV_PUB_STR,
	DV__N
};

static void
direct_variant(int v)
{
	static uint8_t z[MM_WIRE_DATA_MAX + 1];
	for (size_t i = 0; i < sizeof(z); i++)
		z[i] = (uint8_t)(i * 31 + 5);
	unsigned hops = v == DV_ROUTE16 ? 16 : v == DV_ROUTE1 ? 1 : v == DV_ROUTE17 ? 17 : 4;
	uint8_t route[32 * 17];
	for (unsigned i = 0; i < 17; i++)
		fill(route + 32 * i, 32, (uint8_t)(i + 1));
	if (v == DV_ROUTE_REPEAT)
		memcpy(route + 64, route + 32, 32);
	size_t rlen = 32 * hops + (v == DV_ROUTE_ODD ? 5 : 0);
	size_t dlen = v == DV_DATA0 ? 0 : v == DV_DATA_MAX ? MM_WIRE_DATA_MAX :
	    v == DV_DATA_BIG ? MM_WIRE_DATA_MAX + 1 : 300;
	begin();
	msgpack_pack_map(&pk, 2 + (v == DV_REQ));
	if (v != DV_CMD_LAST) {
		str("cmd");
		str("direct");
	}
	if (v == DV_REQ) {
		str("req");
		msgpack_pack_uint32(&pk, 77);
	}
	str("params");
	unsigned nkeys = 8 + (v == DV_RR || v == DV_RR0 || v == DV_RR2 || v == DV_RW) +
	    (v == DV_RW) + (v == DV_UNKNOWN_KEY) + (v == DV_DUP_AT) - (v == DV_NO_NONCE);
	if (v == DV_MAP16) {
		uint8_t h[3] = {0xde, 0, (uint8_t)nkeys};
		raw(h, 3);
	} else
		msgpack_pack_map(&pk, nkeys);
	int fv = v == DV_WIDE_INTS ? FV_WIDE_INTS : v == DV_STR8_KEYS ? FV_STR8_KEYS :
	    v == DV_BIN16 ? FV_BIN16 : v == DV_PUB_STR ? FV_PUB_STR : FV_PLAIN;
	if (v == DV_REORDER) {
		ukey("ts", 1700000000123ull, fv);
		bkey("sig", 64, fv);
		ukey("at", 2, fv);
		ukey("nonce", 99, fv);
	}
	bkey("pub", 32, fv);
	ukey("pow", UINT64_MAX, fv);
	vkey("route", fv);
	msgpack_pack_bin(&pk, rlen);
	msgpack_pack_bin_body(&pk, route, rlen);
	if (v != DV_REORDER) {
		vkey("at", fv);
		if (v == DV_SIGNED_INT) {
			uint8_t b[2] = {0xd0, 2}; /* int8, not negative */
			raw(b, 2);
		} else if (v == DV_WIDE_INTS) {
			uint8_t b[9] = {0xcf, 0, 0, 0, 0, 0, 0, 0, 2};
			raw(b, 9);
		} else
			msgpack_pack_uint8(&pk, v == DV_AT0 ? 0 : v == DV_AT_DST1 ? (uint8_t)hops :
			    v == DV_ROUTE16 ? 15 : 2);
		if (v != DV_NO_NONCE)
			ukey("nonce", 99, fv);
		ukey("ts", 1700000000123ull, fv);
	}
	if (v == DV_RR || v == DV_RR0 || v == DV_RR2 || v == DV_RW)
		ukey("rr", v == DV_RR0 ? 0 : v == DV_RR2 ? 2 : 1, fv);
	vkey("data", fv);
	msgpack_pack_bin(&pk, dlen);
	msgpack_pack_bin_body(&pk, z, dlen);
	if (v != DV_REORDER)
		bkey("sig", v == DV_SIG63 ? 63 : 64, fv);
	if (v == DV_RW) { /* the rewriter, relay 1, kept hops 0..1 */
		str("rw");
		msgpack_pack_map(&pk, 5);
		str("route0");
		msgpack_pack_bin(&pk, 32 * 5);
		uint8_t r0[32 * 5];
		memcpy(r0, route, 64);
		fill(r0 + 64, 64, 200);
		memcpy(r0 + 128, route + 96, 32);
		msgpack_pack_bin_body(&pk, r0, sizeof(r0));
		bkey("pub", 32, FV_PLAIN);
		ukey("pow", 5, FV_PLAIN);
		ukey("at", 1, FV_PLAIN);
		bkey("sig", 64, FV_PLAIN);
	}
	if (v == DV_UNKNOWN_KEY) {
		str("future");
		msgpack_pack_nil(&pk);
	}
	if (v == DV_DUP_AT)
		ukey("at", 1, fv);
	if (v == DV_CMD_LAST) {
		str("cmd");
		str("direct");
	}
	if (v == DV_TRAILING)
		raw("\xc0", 1);
}

static void
test_direct_fast_path(void)
{
	gdec = mm_wire_dec_new();
	check_variants(DV__N, direct_variant, direct_both, DV_RW, DV_AT0);
	/* What mm_wire_encode writes is the fast path's, every field read;
	 * every truncation and every one-bit change agrees too. */
	mm_wire_msg_t in, out;
	memset(&in, 0, sizeof(in));
	in.type = MM_W_DIRECT;
	in.req = 3;
	mm_w_direct_t *d = &in.u.direct;
	uint8_t route[32 * 5], data[200];
	for (unsigned i = 0; i < 5; i++)
		fill(route + 32 * i, 32, (uint8_t)(40 + i));
	fill(data, sizeof(data), 9);
	fill(d->pub, 32, 1);
	fill(d->sig, 64, 3);
	d->pow = 0x0123456789abcdefull;
	d->route = (mm_bytes_t){route, sizeof(route)};
	d->data = (mm_bytes_t){data, sizeof(data)};
	d->at = 3;
	d->rr = 1;
	d->nonce = 0xfeedfacecafebeefull;
	d->ts = 1700000000999ull;
	int n = mm_wire_encode(&in, buf, sizeof(buf));
	CHECK_GT(n, 4);
	CHECK_EQ(mm_wire_decode_direct_fast(buf + 4, (uint32_t)n - 4, &out), 1);
	CHECK_EQ(out.type, MM_W_DIRECT);
	CHECK_EQ(out.req, 3u);
	CHECK(wire_direct_same(&out.u.direct, d));
	CHECK_EQ(out.u.direct.raw_len, 0u); /* a req: not forwarded as it is */
	check_mutations(n, direct_both);
	/* Without req the reader keeps the frame and where `at` is: that
	 * frame with the byte raised is exactly what the encoder writes for
	 * the next hop (the relay's raw forward, node.c send_direct_raw). */
	in.req = 0;
	n = mm_wire_encode(&in, buf, sizeof(buf));
	CHECK_GT(n, 4);
	CHECK_EQ(mm_wire_decode_direct_fast(buf + 4, (uint32_t)n - 4, &out), 1);
	CHECK(out.u.direct.raw == buf + 4);
	CHECK_EQ(out.u.direct.raw_len, (uint32_t)n - 4);
	uint32_t ao = out.u.direct.at_off;
	CHECK(ao > 0 && ao < (uint32_t)n - 4);
	CHECK_EQ(buf[4 + ao], 3);
	static uint8_t fwd[sizeof(buf)], want[sizeof(buf)];
	memcpy(fwd, buf, (size_t)n);
	fwd[4 + ao] = 4;
	d->at = 4;
	CHECK_EQ(mm_wire_encode(&in, want, sizeof(want)), n);
	CHECK(memcmp(fwd, want, (size_t)n) == 0);
	/* `at` written wide (0xcc 0x04) is read, but not patched in place */
	memmove(buf + 4 + ao + 2, buf + 4 + ao + 1, (size_t)n - 4 - ao - 1);
	buf[4 + ao] = 0xcc;
	buf[4 + ao + 1] = 4;
	CHECK_EQ(mm_wire_decode_direct_fast(buf + 4, (uint32_t)n - 3, &out), 1);
	CHECK_EQ(out.u.direct.at, 4);
	CHECK_EQ(out.u.direct.raw_len, 0u);
	mm_wire_dec_free(gdec);
}

int
main(void)
{
	dec = mm_wire_dec_new();
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	RUN(test_round_trips);
	RUN(test_params_validation);
	RUN(test_lengths_and_ranges);
	RUN(test_unknown_command);
	RUN(test_bad_msgpack);
	RUN(test_event_lists);
	RUN(test_digest_want);
	RUN(test_event_fast_path);
	RUN(test_direct_fast_path);
	msgpack_sbuffer_destroy(&sb);
	mm_wire_dec_free(dec);
	fprintf(stderr, "test_wire: ok\n");
	return 0;
}
