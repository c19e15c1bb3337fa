/* Nodes over real TLS connections on loopback, in one process: every node's
 * map converges to the true topology (confirmed edges, learnt by gossip
 * relayed through others), and two nodes that dial each other at the same
 * time end up with one connection, the same one on both sides. */
#include <arpa/inet.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>
#include <string.h>

#include "node.h"
#include "node_util.h"
#include "test.h"

#define DIFF 8
#define N 21

static mm_rt_t *rt;
static mm_identity_t ids[N];
static mm_node_t *nodes[N];
static uint16_t ports[N];

static void
start(int i)
{
	CHECK_EQ(mm_id_generate(&ids[i], DIFF, NULL), 0);
	mm_node_config_t c;
	mm_node_config_default(&c);
	c.net.id = &ids[i];
	c.net.network = "testnet";
	c.net.difficulty = DIFF;
	c.gossip.difficulty = DIFF;
	c.refresh_ms = 200; /* late joiners learn older links within this */
	c.select_ms = 0;    /* these tests build exact topologies by hand */
	if (i >= 8) /* 8..20: no refresh, so what they learn comes by sync */
		c.refresh_ms = 600000;
	if (i == 11) /* the degree cap */
		c.degree = c.max_degree = 2;
	c.mem_shed = i == 15 || i == 16; /* test_memory_pressure (forced levels) */
	c.redial_min_ms = 20;
	c.redial_max_ms = 160;
	char err[256] = "";
	int rc = mm_node_create(rt, &c, &nodes[i], err, sizeof(err));
	if (rc != 0)
		fprintf(stderr, "node %d: %s\n", i, err);
	CHECK_EQ(rc, 0);
	if (i != 7) /* 7 starts listening later (test_bootstrap_redial) */
		CHECK_EQ(mm_node_listen(nodes[i], "127.0.0.1", 0, &ports[i]), 0);
}

static uint16_t
free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t l = sizeof(a);
	CHECK_EQ(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	CHECK_EQ(getsockname(fd, (struct sockaddr *)&a, &l), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static uint64_t
dials(int i)
{
	mm_node_stats_t s;
	mm_node_stats(nodes[i], &s);
	return s.dials;
}

static void
dial(int from, int to)
{
	node_dial(nodes[from], ports[to]);
}

static enum mm_ps_edge
edge_at(int at, int x, int y)
{
	return node_edge(nodes[at], ids[x].id, ids[y].id);
}

/* Every node in nodes[0..4) sees exactly the true edges, confirmed. */
static int
converged(const int (*edges)[2], int ne, int upto)
{
	for (int at = 0; at < upto; at++) {
		for (int k = 0; k < ne; k++)
			if (edge_at(at, edges[k][0], edges[k][1]) != MM_EDGE_CONFIRMED)
				return 0;
		mm_ps_stats_t s;
		mm_ps_stats(mm_node_map(nodes[at]), &s);
		if (s.claims != (uint64_t)2 * ne) /* nothing else claimed */
			return 0;
	}
	return 1;
}

static void
test_map_converges(void)
{
	/* A star around 0, plus 1-3: the edge 1-3 must reach 2 through 0. */
	dial(1, 0);
	dial(2, 0);
	dial(3, 0);
	WAIT_FOR(mm_node_peers(nodes[0]) == 3);
	dial(3, 1);
	const int edges[][2] = {{0, 1}, {0, 2}, {0, 3}, {1, 3}};
	WAIT_FOR(converged(edges, 4, 4));
	mm_node_stats_t s;
	mm_node_stats(nodes[2], &s);
	CHECK_GT(s.events_in, 0);
	CHECK_EQ(s.events_bad, 0);
	CHECK_EQ(mm_node_peers(nodes[2]), 1);
	CHECK_EQ(edge_at(2, 1, 3), MM_EDGE_CONFIRMED); /* learnt two hops away */
	/* 0's link changes (three links, and more as it runs): each signed,
	 * or held and folded into a later signed event (the throttle), none
	 * lost (its list is in every map, above) */
	WAIT_FOR((mm_node_stats(nodes[0], &s), s.events_signed + s.events_coalesced ==
	    s.events_local));
	CHECK_GE(s.events_local, 3);
	CHECK_GE(s.events_signed, 1);
	fprintf(stderr, "   4 nodes: every map has the 4 edges, confirmed\n");
}

static void
test_simultaneous_dial(void)
{
	/* 4 and 5 dial each other at once: both connections may complete;
	 * both sides keep the one dialled by the lower id. */
	dial(4, 5);
	dial(5, 4);
	WAIT_FOR(edge_at(4, 4, 5) == MM_EDGE_CONFIRMED &&
	    edge_at(5, 4, 5) == MM_EDGE_CONFIRMED);
	WAIT_FOR(mm_node_peers(nodes[4]) == 1 && mm_node_peers(nodes[5]) == 1);
	test_sleep_ms(300); /* let a losing connection finish closing */
	CHECK_EQ(mm_node_peers(nodes[4]), 1);
	CHECK_EQ(mm_node_peers(nodes[5]), 1);
	/* The losing connection's close is an own event too, and the
	 * own-event throttle (announce_ms, 500 ms) may still hold the newest
	 * neighbour list: for that long the edge may read as a conflict
	 * (seen under TSan). It must come back confirmed at both ends. */
	WAIT_FOR(edge_at(4, 4, 5) == MM_EDGE_CONFIRMED &&
	    edge_at(5, 4, 5) == MM_EDGE_CONFIRMED);
	mm_node_stats_t s4, s5;
	mm_node_stats(nodes[4], &s4);
	mm_node_stats(nodes[5], &s5);
	fprintf(stderr, "   simultaneous dial: one connection each; duplicates closed "
	    "%llu + %llu\n", (unsigned long long)s4.duplicates_closed,
	    (unsigned long long)s5.duplicates_closed);
}

static void
test_bootstrap_redial(void)
{
	/* 6 keeps a bootstrap address where nobody listens yet: it retries
	 * with backoff; once 7 listens there, the connection forms; while it
	 * is up, no further dials (no storm). */
	uint16_t p = free_port();
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(p)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK_EQ(mm_node_bootstrap(nodes[6], (struct sockaddr *)&a, sizeof(a)), 0);
	WAIT_FOR(dials(6) >= 3); /* it keeps trying */
	CHECK_EQ(mm_node_peers(nodes[6]), 0);
	CHECK_EQ(mm_node_listen(nodes[7], "127.0.0.1", p, &ports[7]), 0);
	WAIT_FOR(mm_node_peers(nodes[6]) == 1 && mm_node_peers(nodes[7]) == 1);
	WAIT_FOR(edge_at(6, 6, 7) == MM_EDGE_CONFIRMED);
	uint64_t d = dials(6);
	test_sleep_ms(500); /* several backoff caps: a storm would show */
	CHECK_EQ(dials(6), d);
	CHECK_EQ(mm_node_peers(nodes[6]), 1);
	fprintf(stderr, "   bootstrap: %llu dials until the address came up, none "
	    "while connected\n", (unsigned long long)d);
}

static void
test_join_sync(void)
{
	/* 8 and 9 link up; 10 joins later through 8 alone. Nothing is
	 * re-announced (refresh 600 s), so 10 can only learn the edge 8-9,
	 * confirmed, from the events 8 replays to a new peer. */
	dial(9, 8);
	WAIT_FOR(edge_at(8, 8, 9) == MM_EDGE_CONFIRMED &&
	    edge_at(9, 8, 9) == MM_EDGE_CONFIRMED);
	dial(10, 8);
	WAIT_FOR(edge_at(10, 8, 9) == MM_EDGE_CONFIRMED &&
	    edge_at(10, 8, 10) == MM_EDGE_CONFIRMED);
	mm_node_stats_t s8, s10;
	mm_node_stats(nodes[8], &s8);
	mm_node_stats(nodes[10], &s10);
	CHECK_EQ(s8.refreshes, 0);
	CHECK_EQ(s10.refreshes, 0);
	CHECK_GT(s8.syncs, 0);
	CHECK_GT(s8.sync_events_sent, 1);
	CHECK_EQ(s10.events_bad, 0);
	fprintf(stderr, "   join sync: the newcomer has the older edge; %llu "
	    "events replayed by 8\n", (unsigned long long)s8.sync_events_sent);
}

static void
test_degree_cap(void)
{
	/* 11 allows 2 links (its max_degree): the third peer
	 * that dials it is refused, and its own claim list stays at 2. */
	dial(12, 11);
	dial(13, 11);
	WAIT_FOR(mm_node_peers(nodes[11]) == 2);
	dial(14, 11);
	mm_node_stats_t s;
	WAIT_FOR((mm_node_stats(nodes[11], &s), s.refused_full >= 1));
	test_sleep_ms(200);
	CHECK_EQ(mm_node_peers(nodes[11]), 2);
	const mm_ps_t *ps = mm_node_map(nodes[11]);
	mm_pidx_t me = mm_ps_lookup(ps, ids[11].id);
	CHECK(me != MM_PIDX_NONE);
	mm_pidx_t nb[MM_PS_MAX_NB];
	uint8_t dirs[MM_PS_MAX_NB];
	CHECK_EQ(mm_ps_neighbours(ps, me, nb, dirs, MM_PS_MAX_NB), 2);
	CHECK_EQ(s.events_bad, 0);
	/* The refused peer was told where else to go: a peers list (11's
	 * two neighbours, which it verified), then "no slot". */
	mm_node_stats_t r;
	WAIT_FOR((mm_node_stats(nodes[14], &r), r.px_received >= 1));
	mm_node_stats(nodes[11], &s); /* answered before it was received */
	CHECK(s.px_answered >= 1);
	fprintf(stderr, "   degree cap: 2 links kept, %llu refused\n",
	    (unsigned long long)s.refused_full);
}

/* ---- a liar: a raw connection that sends a forged event ------------------ */

static mm_identity_t liar;
static mm_w_event_t liar_lie;
static mm_net_t *liar_net;
static atomic_int liar_ready, liar_closed;

static void
liar_on_ready(mm_conn_t *c, const uint8_t id[32], void *arg)
{
	(void)id;
	(void)arg;
	mm_wire_msg_t m = {.type = MM_W_EVENT};
	if (atomic_load(&liar_ready) == 0) {
		/* 1. a lie with a valid signature: "liar is connected to node
		 * 12", which 12 never confirms; 2. the same event again (a
		 * replay) */
		m.u.event = liar_lie;
		CHECK_EQ(mm_conn_send(c, &m), 0);
		CHECK_EQ(mm_conn_send(c, &m), 0);
	}
	/* 3. a newer one signed with garbage */
	m.u.event = liar_lie;
	m.u.event.seq += 1000;
	memset(m.u.event.sig, 0x5a, sizeof(m.u.event.sig));
	CHECK_EQ(mm_conn_send(c, &m), 0);
	atomic_fetch_add(&liar_ready, 1);
}

static void
liar_on_close(mm_conn_t *c, int reason, const char *why, void *arg)
{
	(void)c;
	(void)reason;
	(void)why;
	(void)arg;
	atomic_fetch_add(&liar_closed, 1);
}

static void
test_liar_banned(void)
{
	/* The liar connects to 9 and sends a validly signed lie, a replay of
	 * it, then an event with a bad signature: 9 drops the replay before
	 * any verify, never confirms the lie (only the liar claims that
	 * link), and on the forgery closes the connection and bans the
	 * liar's id. When the liar comes back, it is refused at ready. */
	CHECK_EQ(mm_id_generate(&liar, DIFF, NULL), 0);
	{
		mm_ps_config_t pc;
		mm_ps_config_default(&pc);
		pc.max_peers = 64;
		mm_ps_t *lps;
		mm_dedup_t *ld;
		mm_gossip_t *lg;
		mm_dedup_config_t dc;
		mm_dedup_config_default(&dc);
		mm_gossip_config_t gc;
		mm_gossip_config_default(&gc);
		gc.difficulty = DIFF;
		CHECK_EQ(mm_ps_create(&pc, &lps), 0);
		CHECK_EQ(mm_dedup_create(&dc, &ld), 0);
		CHECK_EQ(mm_gossip_create(&gc, &liar, lps, ld, &lg), 0);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		CHECK_EQ(mm_gossip_local(lg, MM_PS_CONNECT, ids[12].id, MM_PS_OUT,
		    (uint64_t)ts.tv_sec * 1000u, 1, &liar_lie), 0);
		mm_gossip_destroy(lg);
		mm_dedup_destroy(ld);
		mm_ps_destroy(lps);
	}
	mm_node_stats_t s0;
	mm_node_stats(nodes[9], &s0);
	mm_net_config_t nc;
	mm_net_config_default(&nc);
	nc.id = &liar;
	nc.network = "testnet";
	nc.difficulty = DIFF;
	nc.on_ready = liar_on_ready;
	nc.on_close = liar_on_close;
	mm_net_t *ln;
	char err[256];
	CHECK_EQ(mm_net_create(rt, &nc, &ln, err, sizeof(err)), 0);
	unsigned before = mm_node_peers(nodes[9]);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(ports[9])};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK_EQ(mm_net_dial(ln, (struct sockaddr *)&a, sizeof(a), NULL), 0);
	mm_node_stats_t s;
	WAIT_FOR((mm_node_stats(nodes[9], &s), s.bans == 1));
	WAIT_FOR(atomic_load(&liar_closed) == 1);
	CHECK(mm_node_banned_id(nodes[9], liar.id));
	CHECK_EQ(s.events_bad, 1);
	CHECK_GE(s.events_dup - s0.events_dup, 1); /* the replay */
	/* The lie is at most a phantom (one-sided), in 9's map and in 12's
	 * if it got there: never a confirmed edge. */
	CHECK(node_edge(nodes[9], liar.id, ids[12].id) == MM_EDGE_PHANTOM_A ||
	    node_edge(nodes[9], liar.id, ids[12].id) == MM_EDGE_PHANTOM_B);
	for (int i = 0; i < N; i++)
		CHECK(node_edge(nodes[i], liar.id, ids[12].id) != MM_EDGE_CONFIRMED);
	CHECK_EQ(edge_at(9, 12, 12), MM_EDGE_NONE);
	/* back again: the handshake completes (loopback is never banned by
	 * address), then the id is refused */
	CHECK_EQ(mm_net_dial(ln, (struct sockaddr *)&a, sizeof(a), NULL), 0);
	WAIT_FOR((mm_node_stats(nodes[9], &s), s.refused_banned == 1));
	WAIT_FOR(atomic_load(&liar_closed) == 2);
	CHECK_EQ(mm_node_peers(nodes[9]), before);
	mm_node_stats(nodes[9], &s);
	CHECK_EQ(s.events_bad, 1); /* the second connection sent nothing accepted */
	CHECK_EQ(s.bans, 1);
	fprintf(stderr, "   liar: lie kept a phantom, replay dropped, banned after one "
	    "forged event, refused on return\n");
	liar_net = ln;
}

static void
test_sync_compact(void)
{
	/* 17 links to 18, then to 19 three times over (each link dropped by
	 * 17): its log holds a dozen events, but each origin's newest carries
	 * its whole neighbour list. A newcomer (20) gets one event per origin
	 * and still learns the truth: 17-18 confirmed, 17-19 gone. */
	dial(18, 17);
	WAIT_FOR(edge_at(17, 17, 18) == MM_EDGE_CONFIRMED);
	for (int r = 0; r < 3; r++) {
		dial(19, 17);
		WAIT_FOR(mm_node_peers(nodes[19]) == 1 && edge_at(17, 17, 19) == MM_EDGE_CONFIRMED);
		CHECK_EQ(mm_node_disconnect(nodes[17], ids[19].id), 0);
		WAIT_FOR(mm_node_peers(nodes[19]) == 0 && mm_node_peers(nodes[17]) == 1);
	}
	mm_node_stats_t a, b;
	mm_node_stats(nodes[17], &a);
	dial(20, 17);
	WAIT_FOR(edge_at(20, 17, 18) == MM_EDGE_CONFIRMED &&
	    edge_at(20, 17, 20) == MM_EDGE_CONFIRMED);
	mm_node_stats(nodes[17], &b);
	CHECK_EQ(b.syncs - a.syncs, 1);
	uint64_t sent = b.sync_events_sent - a.sync_events_sent;
	CHECK_GE(sent, 2);
	CHECK_LE(sent, 3); /* 17's, 18's, 19's newest; the whole log is 11+ */
	CHECK(edge_at(20, 17, 19) != MM_EDGE_CONFIRMED);
	fprintf(stderr, "   join sync: %llu events for a log of 3 origins' histories\n",
	    (unsigned long long)sent);
}

static void
test_memory_pressure(void)
{
	/* At critical memory pressure (forced: the runtime's test hook; the
	 * process's real RSS, 17 nodes, is above the 50 MB budget anyway), a
	 * newcomer is refused with addresses of others; at a forced OK, the
	 * same dial links. The other nodes here do not follow the pressure. */
	mm_node_stats_t s;
	mm_rt_force_pressure(rt, MM_PRESSURE_CRITICAL);
	WAIT_FOR((mm_node_stats(nodes[15], &s), s.pressure == MM_PRESSURE_CRITICAL));
	WAIT_FOR((mm_node_stats(nodes[16], &s), s.pressure == MM_PRESSURE_CRITICAL));
	dial(16, 15);
	mm_node_stats_t r15, r16;
	WAIT_FOR((mm_node_stats(nodes[15], &r15), mm_node_stats(nodes[16], &r16),
	    r15.refused_memory + r16.refused_memory >= 1));
	CHECK_EQ(mm_node_peers(nodes[15]), 0);
	CHECK_EQ(mm_node_peers(nodes[16]), 0);
	mm_rt_force_pressure(rt, MM_PRESSURE_OK);
	WAIT_FOR((mm_node_stats(nodes[15], &s), s.pressure == MM_PRESSURE_OK));
	WAIT_FOR((mm_node_stats(nodes[16], &s), s.pressure == MM_PRESSURE_OK));
	dial(16, 15);
	WAIT_FOR(mm_node_peers(nodes[15]) == 1 && mm_node_peers(nodes[16]) == 1);
	mm_rt_force_pressure(rt, -1);
	fprintf(stderr, "   memory pressure: refused at critical (%llu), linked after\n",
	    (unsigned long long)(r15.refused_memory + r16.refused_memory));
}

int
main(void)
{
	mm_rt_config_t rc;
	mm_rt_config_default(&rc);
	rc.workers = 2;
	CHECK_EQ(mm_rt_create(&rc, &rt), 0);
	for (int i = 0; i < N; i++)
		start(i);
	RUN(test_map_converges);
	RUN(test_simultaneous_dial);
	RUN(test_bootstrap_redial);
	RUN(test_join_sync);
	RUN(test_degree_cap);
	RUN(test_liar_banned);
	RUN(test_sync_compact);
	RUN(test_memory_pressure);
	mm_rt_stop(rt);
	mm_net_destroy(liar_net);
	mm_id_free(&liar);
	for (int i = 0; i < N; i++) {
		mm_node_destroy(nodes[i]);
		mm_id_free(&ids[i]);
	}
	mm_rt_destroy(rt);
	fprintf(stderr, "test_node: ok\n");
	return 0;
}
