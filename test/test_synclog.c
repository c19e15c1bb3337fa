/* The join sync log keeps a quiet origin's newest frame. A hub H with a
 * log of 16 frames; four quiet peers Q link to it and then say nothing
 * more; a chatty peer C links and unlinks eight times, which makes about
 * 32 events (C's and H's) after the quiet ones. A newcomer N then links
 * to H: its join sync must still carry every Q's event, so that N's map
 * confirms each Q - H link (H's own event only claims H's side). A plain
 * ring of the last 16 frames had lost them (no anti-entropy here, no
 * refresh, no selection: the join sync is N's only source).
 *
 * Then the log's growth: a hub with a log of 8 frames (growing up to 32)
 * and twelve quiet peers, more origins than 7/8 of 8 frames can keep. The
 * log must grow (to 16), and a newcomer's join sync must carry every
 * quiet peer's event; with no growth allowed it cannot (checked: the
 * second scenario fails with sync_events_max 8). Forced high memory
 * pressure then takes the log back to 8 frames. Last, a join sync is
 * cut to 3/4 of the sender's event burst and to half its write cap; what
 * it leaves out is announced (ihave), and the newcomer gets it all by
 * asking, the answers paced by the connection. */
#include <string.h>

#include "node.h"
#include "node_util.h"
#include "test.h"

#define DIFF 8
#define MAXN 14

static mm_identity_t ids[MAXN];
static mm_node_t *nodes[MAXN];
static uint16_t ports[MAXN];

static uint32_t hub_burst; /* the hub's and the newcomer's event_burst; 0: the default */
static uint32_t hub_wcap;  /* the hub's write_cap; 0: the default */

static mm_rt_t *
start(int all, uint32_t sync_events, uint32_t sync_max)
{
	mm_rt_config_t rc;
	mm_rt_config_default(&rc);
	rc.workers = 2;
	rc.mem_budget = (size_t)1 << 30; /* many nodes in one process */
	mm_rt_t *rt;
	CHECK_EQ(mm_rt_create(&rc, &rt), 0);
	for (int i = 0; i < all; i++) {
		mm_node_config_t c;
		node_test_config(&c, &ids[i], DIFF, "synclog");
		c.select_ms = 0;    /* exactly these links */
		c.ae_ms = 0;        /* the join sync is the only repair */
		c.announce_ms = 0;  /* one event per link change */
		c.refresh_ms = 3600000; /* no re-announcement within the test */
		c.sync_events = sync_events;
		c.sync_events_max = sync_max;
		c.dedup_capacity = 16384;
		c.mem_shed = i == 0; /* the hub obeys memory pressure (forced below) */
		if ((i == 0 || i == all - 1) && hub_burst != 0)
			c.event_burst = hub_burst;
		if (i == 0 && hub_wcap != 0)
			c.net.write_cap = hub_wcap;
		c.net.max_conns_per_ip = 32; /* every peer dials from 127.0.0.1 */
		c.net.max_pending_per_ip = 32;
		char err[256] = "";
		CHECK_EQ(mm_node_create(rt, &c, &nodes[i], err, sizeof(err)), 0);
		CHECK_EQ(mm_node_listen(nodes[i], "127.0.0.1", 0, &ports[i]), 0);
	}
	return rt;
}

static void
stop(mm_rt_t *rt, int all)
{
	mm_rt_stop(rt);
	for (int i = 0; i < all; i++) {
		mm_node_destroy(nodes[i]);
		mm_id_free(&ids[i]);
	}
	mm_rt_destroy(rt);
}

/* quiet peers q0..q1-1 link to the hub h and say nothing more */
static void
link_quiet(int h, int q0, int q1)
{
	for (int q = q0; q < q1; q++) {
		node_dial(nodes[q], ports[h]);
		WAIT_FOR(node_edge(nodes[h], ids[q].id, ids[h].id) == MM_EDGE_CONFIRMED);
	}
}

/* newcomer nn links to h; its map must confirm every quiet link */
static void
check_newcomer(int h, int q0, int q1, int nn)
{
	node_dial(nodes[nn], ports[h]);
	WAIT_FOR(node_edge(nodes[nn], ids[nn].id, ids[h].id) == MM_EDGE_CONFIRMED);
	for (int q = q0; q < q1; q++)
		WAIT_FOR(node_edge(nodes[nn], ids[q].id, ids[h].id) == MM_EDGE_CONFIRMED);
}

/* The newcomer nn's map confirms every quiet link q0..q1-1 to h; if not
 * within 60 s, the counters that say where the events stopped, then the
 * failure. */
static void
wait_complete(int h, int q0, int q1, int nn)
{
	for (unsigned waited = 0;; waited++) {
		int miss = 0;
		for (int q = q0; q < q1; q++)
			miss += node_edge(nodes[nn], ids[q].id, ids[h].id) != MM_EDGE_CONFIRMED;
		if (miss == 0)
			return;
		if (waited == 60000) {
			mm_node_stats_t x, y;
			mm_node_stats(nodes[nn], &x);
			mm_node_stats(nodes[h], &y);
			fprintf(stderr, "test_synclog: %d quiet links missing; newcomer: "
			    "ihave entries %llu, asked %llu, deferred %llu, events "
			    "in %llu (dup %llu, stale %llu, bad %llu), rate drops "
			    "%llu, links %u; hub: announced %llu, served %llu (paced "
			    "%llu, over %llu), frames dropped %llu\n", miss,
			    (unsigned long long)x.ihave_received,
			    (unsigned long long)x.iwant_sent,
			    (unsigned long long)x.asks_deferred,
			    (unsigned long long)x.events_in,
			    (unsigned long long)x.events_dup,
			    (unsigned long long)x.events_stale,
			    (unsigned long long)x.events_bad,
			    (unsigned long long)x.rate_dropped, mm_node_peers(nodes[nn]),
			    (unsigned long long)y.sync_announced,
			    (unsigned long long)y.iwant_served,
			    (unsigned long long)y.served_paced,
			    (unsigned long long)y.iwant_over,
			    (unsigned long long)y.frames_dropped);
			CHECK_EQ(miss, 0);
		}
		test_sleep_ms(1);
	}
}

static void
compaction(void)
{
	enum { H = 0, Q0 = 1, NQ = 4, C = Q0 + NQ, N = C + 1, ALL = N + 1 };
	mm_rt_t *rt = start(ALL, 16, 16); /* no growth: compaction alone */
	link_quiet(H, Q0, Q0 + NQ);
	mm_node_stats_t before, after;
	mm_node_stats(nodes[H], &before);
	for (int k = 0; k < 8; k++) {
		node_dial(nodes[C], ports[H]);
		WAIT_FOR(node_edge(nodes[H], ids[C].id, ids[H].id) == MM_EDGE_CONFIRMED &&
		    node_edge(nodes[C], ids[C].id, ids[H].id) == MM_EDGE_CONFIRMED);
		CHECK_EQ(mm_node_disconnect(nodes[C], ids[H].id), 0);
		/* C's side stays claimed at H: C has no link left to say it */
		WAIT_FOR(node_edge(nodes[H], ids[C].id, ids[H].id) != MM_EDGE_CONFIRMED &&
		    mm_node_peers(nodes[H]) == NQ && mm_node_peers(nodes[C]) == 0);
	}
	mm_node_stats(nodes[H], &after);
	/* the chatty peer's events (and H's own) did roll a 16-frame ring over */
	uint64_t logged = after.events_in + after.events_local - before.events_in -
	    before.events_local;
	fprintf(stderr, "test_synclog: %llu events at H after the quiet ones\n",
	    (unsigned long long)logged);
	CHECK_GT(logged, 16);
	CHECK_EQ(after.sync_log_cap, 16);
	check_newcomer(H, Q0, Q0 + NQ, N);
	stop(rt, ALL);
}

static void
growth(uint32_t sync_max)
{
	enum { H = 0, Q0 = 1, NQ = 12, N = Q0 + NQ, ALL = N + 1 };
	mm_rt_t *rt = start(ALL, 8, sync_max);
	mm_node_stats_t s;
	mm_node_stats(nodes[H], &s);
	CHECK_EQ(s.sync_log_cap, 8);
	link_quiet(H, Q0, Q0 + NQ);
	/* 13 origins (the quiet peers and H) keep 13 frames: more than 7/8 of
	 * 8, not of 16 */
	mm_node_stats(nodes[H], &s);
	fprintf(stderr, "test_synclog: the hub's log holds %llu frames\n",
	    (unsigned long long)s.sync_log_cap);
	CHECK_EQ(s.sync_log_cap, 16);
	check_newcomer(H, Q0, Q0 + NQ, N);
	/* high memory pressure takes the log back to sync_events */
	mm_rt_force_pressure(rt, MM_PRESSURE_HIGH);
	WAIT_FOR((mm_node_stats(nodes[H], &s), s.sync_log_cap == 8));
	mm_rt_force_pressure(rt, -1);
	stop(rt, ALL);
}

/* A join sync sends at most 3/4 of event_burst frames, and at most half
 * the write cap in bytes: a hub with 13 origins in its log and a burst
 * of 8 sends a newcomer 6 frames; with a write cap of 4 KiB (the 13
 * frames are about 4.5 KB; all at once they would get the newcomer cut
 * off as a slow reader) it sends fewer than 13 and the link holds. Either
 * way the origins left out are announced, one ihave entry per origin, and
 * the newcomer gets them all. With the burst of 8 at both ends the
 * newcomer may ask for only half the room left (1 of 7 at first): the
 * rest it asks at its ihave timer as the room comes back (with no
 * anti-entropy here, nothing else would bring them). */
static void
sync_cap(uint32_t burst, uint32_t wcap)
{
	enum { H = 0, Q0 = 1, NQ = 12, N = Q0 + NQ, ALL = N + 1 };
	hub_burst = burst;
	hub_wcap = wcap;
	mm_rt_t *rt = start(ALL, 64, 64);
	link_quiet(H, Q0, Q0 + NQ);
	mm_node_stats_t a, b;
	mm_node_stats(nodes[H], &a);
	node_dial(nodes[N], ports[H]);
	/* the sync and its announcement, one entry per origin left out (the
	 * quiet peers and H; the stats are read from another thread: wait
	 * for both, not for the first) */
	WAIT_FOR((mm_node_stats(nodes[H], &b), b.syncs == a.syncs + 1 &&
	    b.sync_announced - a.sync_announced ==
	    NQ + 1 - (b.sync_events_sent - a.sync_events_sent)));
	uint64_t sent = b.sync_events_sent - a.sync_events_sent;
	fprintf(stderr, "test_synclog: a join sync of %llu frames (burst %u, write "
	    "cap %u)\n", (unsigned long long)sent, burst, wcap);
	if (burst != 0)
		CHECK_EQ(sent, burst * 3 / 4);
	if (wcap != 0) {
		CHECK_GT(sent, 0);
		CHECK_LT(sent, NQ + 1);
	}
	WAIT_FOR(node_edge(nodes[N], ids[N].id, ids[H].id) == MM_EDGE_CONFIRMED);
	test_sleep_ms(500);
	CHECK_EQ(mm_node_peers(nodes[N]), 1); /* not cut as a slow reader */
	/* and what was announced, the newcomer asked for and got: its map
	 * confirms every quiet link (no anti-entropy, no refresh here) */
	wait_complete(H, Q0, Q0 + NQ, N);
	/* all within the budgets: neither end counted the other over them */
	mm_node_stats_t sn, sh;
	mm_node_stats(nodes[N], &sn);
	mm_node_stats(nodes[H], &sh);
	CHECK_EQ(sn.misbehaviour[MM_WERR_RATE], 0);
	CHECK_EQ(sh.misbehaviour[MM_WERR_RATE], 0);
	CHECK_EQ(sh.iwant_over, 0);
	hub_burst = 0;
	hub_wcap = 0;
	stop(rt, ALL);
}

int
main(void)
{
	compaction();
	growth(32);
	sync_cap(8, 0);
	sync_cap(0, 4096);
	fprintf(stderr, "test_synclog: ok\n");
	return 0;
}
