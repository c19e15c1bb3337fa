/* Source-routed direct messages between real nodes over TLS.
 *   0 - 1 - 2 - 3 - 4 - 5, and 1 - 6 - 3 (a detour around 2).
 * A message along 0-1-2-3-4-5 arrives. Node 2 dies (its runtime stops);
 * the same route again, with rerouting allowed: node 1 rewrites it once
 * (1-6-3-4-5) and it still arrives, marked rewritten; without rerouting,
 * node 1 drops it and its signed failure notice reaches node 0. Then a
 * hostile peer at node 5 sends a rewrite the origin did not allow, a
 * forged rewrite signature and a genuine rewrite (only the last is
 * delivered), and finally two rewrites in one message (refused by the
 * codec: the connection is closed). */
#include <msgpack.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "direct.h"
#include "node.h"
#include "node_util.h"
#include "test.h"

#define DIFF 8
#define N 7

static mm_identity_t ids[N];
static mm_node_t *nodes[N];
static uint16_t ports[N];
static atomic_int delivered[N], delivered_rw[N], failed, fail_code;
static uint64_t fail_handle;
static uint8_t fail_relay[32];

static void
on_direct(void *arg, const uint8_t origin[32], const uint8_t *data, uint32_t len,
    int rewritten)
{
	int i = (int)(intptr_t)arg;
	(void)origin;
	CHECK(len >= 5 && memcmp(data, "hello", 5) == 0);
	atomic_fetch_add(&delivered[i], 1);
	if (rewritten)
		atomic_fetch_add(&delivered_rw[i], 1);
}

static void
on_fail(void *arg, uint64_t handle, uint32_t code, const uint8_t relay[32])
{
	(void)arg;
	fail_handle = handle;
	memcpy(fail_relay, relay, 32);
	atomic_store(&fail_code, (int)code);
	atomic_fetch_add(&failed, 1);
}

/* node 5 answers requests: "pong:" + the request, error 42 for "fail",
 * nothing for "slow" */
static void
on_request(void *arg, const uint8_t origin[32], uint64_t id, const uint8_t *data,
    uint32_t len)
{
	mm_node_t *self = nodes[(int)(intptr_t)arg];
	if (len == 4 && memcmp(data, "fail", 4) == 0) {
		CHECK_EQ(mm_node_respond(self, origin, id, 42, "nope", 4), 0);
	} else if (!(len == 4 && memcmp(data, "slow", 4) == 0)) {
		uint8_t out[64] = "pong:";
		CHECK_LE(len, 50);
		memcpy(out + 5, data, len);
		CHECK_EQ(mm_node_respond(self, origin, id, 0, out, len + 5), 0);
	}
}

struct answer {
	atomic_int done;
	int status;
	char data[64];
};

static void
on_response(void *arg, int status, const uint8_t *data, uint32_t len)
{
	struct answer *a = arg;
	CHECK_EQ(atomic_load(&a->done), 0); /* exactly once */
	a->status = status;
	if (len > 0 && len < sizeof(a->data))
		memcpy(a->data, data, len);
	atomic_store(&a->done, 1);
}

static mm_node_t *
mk(mm_rt_t *rt, int i)
{
	mm_node_config_t c;
	node_test_config(&c, &ids[i], DIFF, "route");
	c.select_ms = 0; /* exactly the links below */
	c.net.ping_interval_ms = 100; /* round trips measured early */
	c.on_direct = on_direct;
	c.on_direct_fail = on_fail;
	c.direct_arg = (void *)(intptr_t)i;
	if (i == 5)
		c.on_request = on_request;
	if (i == 0)
		c.req_inflight_max = 2;
	mm_node_t *n;
	char err[256] = "";
	CHECK_EQ(mm_node_create(rt, &c, &n, err, sizeof(err)), 0);
	CHECK_EQ(mm_node_listen(n, "127.0.0.1", 0, &ports[i]), 0);
	return n;
}

static int
all_confirmed(int at, const int (*e)[2], int ne)
{
	for (int k = 0; k < ne; k++)
		if (node_edge(nodes[at], ids[e[k][0]].id, ids[e[k][1]].id) != MM_EDGE_CONFIRMED)
			return 0;
	return 1;
}

static void
line_route(uint8_t *r)
{
	for (int i = 0; i < 6; i++)
		memcpy(r + 32 * i, ids[i].id, 32);
}

/* ---- the hostile peer -------------------------------------------------------- */

static mm_identity_t org, rel; /* its origin and relay identities */
static atomic_int hostile_ready, hostile_closed;
static uint8_t r0[4 * 32], rbuf[32 * MM_WIRE_ROUTE_MAX];
/* a datagram: kind byte 0, then the text (docs/PROTOCOL.md) */
static const char hello[] = "\0hello from far away";

static void
make_rewritten(mm_wire_msg_t *m, uint64_t nonce)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	mm_wire_msg_t o = {.type = MM_W_DIRECT};
	CHECK_EQ(mm_direct_make(&org, r0, 4, 1, nonce, (uint64_t)ts.tv_sec * 1000u, hello,
	    sizeof(hello), &o.u.direct), 0);
	memset(m, 0, sizeof(*m));
	m->type = MM_W_DIRECT;
	CHECK_EQ(mm_direct_rewrite(&rel, &o.u.direct, ids[5].id, 1, rbuf, &m->u.direct), 0);
	m->u.direct.at = 2; /* org, rel, 5 */
}

static void
hostile_ready_cb(mm_conn_t *c, const uint8_t id[32], void *arg)
{
	(void)id;
	(void)arg;
	mm_wire_msg_t m;
	if (atomic_load(&hostile_ready) == 0) {
		/* (a) a rewrite the origin did not allow (the flag cleared) */
		make_rewritten(&m, 1);
		m.u.direct.rr = 0;
		CHECK_EQ(mm_conn_send(c, &m), 0);
		/* (b) a forged rewrite signature */
		make_rewritten(&m, 2);
		m.u.direct.rw_sig[0] ^= 1;
		CHECK_EQ(mm_conn_send(c, &m), 0);
		/* (c) a genuine rewrite: delivered */
		make_rewritten(&m, 3);
		CHECK_EQ(mm_conn_send(c, &m), 0);
	} else {
		/* (d) two rewrites in one message: "rw" as a list */
		make_rewritten(&m, 4);
		msgpack_sbuffer sb;
		msgpack_sbuffer_init(&sb);
		msgpack_packer pk;
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
#define KEY(s) (msgpack_pack_str(&pk, strlen(s)), msgpack_pack_str_body(&pk, s, strlen(s)))
#define BIN(p, n) (msgpack_pack_bin(&pk, n), msgpack_pack_bin_body(&pk, p, n))
		msgpack_pack_map(&pk, 2);
		KEY("cmd"); KEY("direct");
		KEY("params");
		msgpack_pack_map(&pk, 10);
		KEY("pub"); BIN(org.pub, 32);
		KEY("pow"); msgpack_pack_uint64(&pk, org.nonce);
		KEY("route"); BIN(m.u.direct.route.ptr, m.u.direct.route.len);
		KEY("at"); msgpack_pack_uint8(&pk, 2);
		KEY("rr"); msgpack_pack_uint8(&pk, 1);
		KEY("nonce"); msgpack_pack_uint64(&pk, 4);
		KEY("ts"); msgpack_pack_uint64(&pk, m.u.direct.ts);
		KEY("data"); BIN(hello, sizeof(hello));
		KEY("sig"); BIN(m.u.direct.sig, 64);
		KEY("rw");
		msgpack_pack_array(&pk, 2);
		for (int k = 0; k < 2; k++) {
			msgpack_pack_map(&pk, 5);
			KEY("route0"); BIN(r0, sizeof(r0));
			KEY("pub"); BIN(rel.pub, 32);
			KEY("pow"); msgpack_pack_uint64(&pk, rel.nonce);
			KEY("at"); msgpack_pack_uint8(&pk, 1);
			KEY("sig"); BIN(m.u.direct.rw_sig, 64);
		}
		uint8_t frame[4096];
		CHECK_LT(sb.size + 4, sizeof(frame));
		frame[0] = (uint8_t)(sb.size >> 24);
		frame[1] = (uint8_t)(sb.size >> 16);
		frame[2] = (uint8_t)(sb.size >> 8);
		frame[3] = (uint8_t)sb.size;
		memcpy(frame + 4, sb.data, sb.size);
		CHECK_EQ(mm_conn_send_frame(c, frame, sb.size + 4), 0);
		msgpack_sbuffer_destroy(&sb);
	}
	atomic_fetch_add(&hostile_ready, 1);
}

static void
hostile_close_cb(mm_conn_t *c, int reason, const char *why, void *arg)
{
	(void)c;
	(void)reason;
	(void)why;
	(void)arg;
	atomic_fetch_add(&hostile_closed, 1);
}

int
main(void)
{
	mm_rt_config_t rc;
	mm_rt_config_default(&rc);
	rc.workers = 2;
	mm_rt_t *rt, *rt2;
	CHECK_EQ(mm_rt_create(&rc, &rt), 0);
	rc.workers = 1;
	CHECK_EQ(mm_rt_create(&rc, &rt2), 0); /* node 2 alone: it will die */
	for (int i = 0; i < N; i++)
		nodes[i] = mk(i == 2 ? rt2 : rt, i);
	static const int edges[][2] = {{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}, {1, 6}, {6, 3}};
	for (int k = 0; k < 7; k++)
		node_dial(nodes[edges[k][1]], ports[edges[k][0]]);
	WAIT_FOR(all_confirmed(0, edges, 7) && all_confirmed(1, edges, 7));

	/* 1. along the line */
	uint8_t route[6 * 32];
	line_route(route);
	uint64_t h;
	CHECK_EQ(mm_node_send_route(nodes[0], route, 6, "hello 1", 7, 1, &h), 0);
	WAIT_FOR(atomic_load(&delivered[5]) == 1);
	CHECK_EQ(atomic_load(&delivered_rw[5]), 0);
	mm_node_stats_t s;
	for (int i = 1; i <= 4; i++) {
		mm_node_stats(nodes[i], &s);
		CHECK_EQ(s.direct_relayed, 1);
	}
	fprintf(stderr, "   5 hops: delivered\n");
	/* 1 -> 3 has two 2-hop routes (via 2, via 6): the tie goes to the
	 * link with the lower round trip once pings have measured them */
	test_sleep_ms(300);
	CHECK_EQ(mm_node_send_direct(nodes[1], ids[3].id, "hello rtt", 9, 0, &h), 0);
	WAIT_FOR(atomic_load(&delivered[3]) == 1);

	/* 2. node 2 dies */
	mm_node_stats_t s6;
	mm_node_stats(nodes[6], &s6);
	mm_rt_stop(rt2);
	/* node 1 has dropped its claim; 2's own claim stays a phantom */
	WAIT_FOR(node_edge(nodes[1], ids[1].id, ids[2].id) != MM_EDGE_CONFIRMED &&
	    mm_node_peers(nodes[1]) == 2);
	CHECK_EQ(mm_node_send_route(nodes[0], route, 6, "hello 2", 7, 1, &h), 0);
	WAIT_FOR(atomic_load(&delivered[5]) == 2);
	CHECK_EQ(atomic_load(&delivered_rw[5]), 1);
	mm_node_stats(nodes[1], &s);
	CHECK_EQ(s.direct_rewritten, 1);
	mm_node_stats(nodes[6], &s);
	CHECK_EQ(s.direct_relayed - s6.direct_relayed, 1);
	fprintf(stderr, "   middle node dead: rewritten once at node 1, delivered\n");

	/* 3. without rerouting: dropped at node 1, which tells node 0 */
	CHECK_EQ(mm_node_send_route(nodes[0], route, 6, "hello 3", 7, 0, &h), 0);
	WAIT_FOR(atomic_load(&failed) == 1);
	CHECK_EQ(fail_handle, h);
	CHECK_EQ(atomic_load(&fail_code), MM_DFAIL_UNREACHABLE);
	CHECK_EQ(memcmp(fail_relay, ids[1].id, 32), 0);
	CHECK_EQ(atomic_load(&delivered[5]), 2);
	fprintf(stderr, "   no rerouting allowed: signed failure notice back to the origin\n");

	/* 4. the shortest path, chosen by node 0 itself, once node 1's
	 * disconnect event has reached it (own events are throttled,
	 * announce_ms: it may be up to 500 ms behind node 1's own map) */
	WAIT_FOR(node_edge(nodes[0], ids[1].id, ids[2].id) != MM_EDGE_CONFIRMED);
	mm_node_stats_t rs0;
	mm_node_stats(nodes[0], &rs0);
	CHECK_EQ(mm_node_send_direct(nodes[0], ids[5].id, "hello 4", 7, 0, &h), 0);
	WAIT_FOR(atomic_load(&delivered[5]) == 3);
	/* ten more to the same destination: the route comes from the cache
	 * (an entry lives 1 s: at most one more search if the run crosses it) */
	for (int i = 0; i < 10; i++)
		CHECK_EQ(mm_node_send_direct(nodes[0], ids[5].id, "hello 4", 7, 0, &h), 0);
	WAIT_FOR(atomic_load(&delivered[5]) == 13);
	mm_node_stats(nodes[0], &s);
	CHECK_EQ(s.route_searches - rs0.route_searches + s.route_cache_hits - rs0.route_cache_hits, 11);
	CHECK_LE(s.route_searches - rs0.route_searches, 2);
	fprintf(stderr, "   11 sends to one destination: %llu route searches\n",
	    (unsigned long long)(s.route_searches - rs0.route_searches));

	/* 5. requests from node 0 */
	struct answer a1 = {0}, a2 = {0}, a3 = {0}, a4 = {0}, a5 = {0}, a6 = {0};
	CHECK_EQ(mm_node_request(nodes[0], ids[5].id, "ping", 4, 5000, on_response, &a1), 0);
	WAIT_FOR(atomic_load(&a1.done));
	CHECK_EQ(a1.status, 0);
	CHECK_EQ(strcmp(a1.data, "pong:ping"), 0);
	CHECK_EQ(mm_node_request(nodes[0], ids[5].id, "fail", 4, 5000, on_response, &a2), 0);
	WAIT_FOR(atomic_load(&a2.done));
	CHECK_EQ(a2.status, 42);
	CHECK_EQ(strcmp(a2.data, "nope"), 0);
	CHECK_EQ(mm_node_request(nodes[0], ids[4].id, "ping", 4, 5000, on_response, &a3), 0);
	WAIT_FOR(atomic_load(&a3.done));
	CHECK_EQ(a3.status, MM_RQ_ENOHANDLER); /* node 4 has no handler */
	/* two slow ones fill node 0's bound for node 5 (2): the third is busy
	 * at once; the two time out */
	CHECK_EQ(mm_node_request(nodes[0], ids[5].id, "slow", 4, 300, on_response, &a4), 0);
	CHECK_EQ(mm_node_request(nodes[0], ids[5].id, "slow", 4, 300, on_response, &a5), 0);
	CHECK_EQ(mm_node_request(nodes[0], ids[5].id, "ping", 4, 5000, on_response, &a6), 0);
	WAIT_FOR(atomic_load(&a6.done));
	CHECK_EQ(a6.status, MM_RQ_BUSY);
	WAIT_FOR(atomic_load(&a4.done) && atomic_load(&a5.done));
	CHECK_EQ(a4.status, MM_RQ_TIMEOUT);
	CHECK_EQ(a5.status, MM_RQ_TIMEOUT);
	/* nobody by that id in the map */
	struct answer a7 = {0};
	uint8_t nobody[32];
	memset(nobody, 0xab, sizeof(nobody));
	CHECK_EQ(mm_node_request(nodes[0], nobody, "ping", 4, 5000, on_response, &a7), 0);
	WAIT_FOR(atomic_load(&a7.done));
	CHECK_EQ(a7.status, MM_RQ_UNREACHABLE);
	mm_node_stats(nodes[0], &s);
	CHECK_EQ(s.requests_timed_out, 2);
	fprintf(stderr, "   requests: answered, error response, no handler, busy, "
	    "timeouts, unreachable\n");

	/* 6. a hostile peer at node 5 */
	CHECK_EQ(mm_id_generate(&org, DIFF, NULL), 0);
	CHECK_EQ(mm_id_generate(&rel, DIFF, NULL), 0);
	memcpy(r0, org.id, 32);
	memcpy(r0 + 32, rel.id, 32);
	memcpy(r0 + 64, ids[4].id, 32);
	memcpy(r0 + 96, ids[5].id, 32);
	mm_net_config_t nc;
	mm_net_config_default(&nc);
	nc.id = &rel;
	nc.network = "route";
	nc.difficulty = DIFF;
	nc.on_ready = hostile_ready_cb;
	nc.on_close = hostile_close_cb;
	mm_net_t *hn;
	char err[256];
	CHECK_EQ(mm_net_create(rt, &nc, &hn, err, sizeof(err)), 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(ports[5])};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	mm_node_stats_t s0;
	mm_node_stats(nodes[5], &s0);
	CHECK_EQ(mm_net_dial(hn, (struct sockaddr *)&a, sizeof(a), NULL), 0);
	WAIT_FOR(atomic_load(&delivered[5]) == 14);
	WAIT_FOR((mm_node_stats(nodes[5], &s), s.direct_refused - s0.direct_refused == 2));
	CHECK_EQ(atomic_load(&delivered_rw[5]), 2); /* (c), and step 2 */
	CHECK(!mm_node_banned_id(nodes[5], rel.id)); /* 20 points: not yet */
	/* (d) on a second connection: closed for a malformed message */
	CHECK_EQ(mm_net_dial(hn, (struct sockaddr *)&a, sizeof(a), NULL), 0);
	WAIT_FOR(atomic_load(&hostile_ready) == 2);
	WAIT_FOR(atomic_load(&hostile_closed) >= 1);
	CHECK_EQ(atomic_load(&delivered[5]), 14);
	fprintf(stderr, "   rewrite without the flag, forged rewrite and two rewrites "
	    "refused; a genuine rewrite delivered\n");

	mm_rt_stop(rt);
	mm_net_destroy(hn);
	for (int i = 0; i < N; i++) {
		mm_node_destroy(nodes[i]);
		mm_id_free(&ids[i]);
	}
	mm_id_free(&org);
	mm_id_free(&rel);
	mm_rt_destroy(rt);
	mm_rt_destroy(rt2);
	fprintf(stderr, "test_route: ok\n");
	return 0;
}
