/* The join sync log keeps a quiet origin's newest frame. A hub H with a
 * log of 16 frames; four quiet peers Q link to it and then say nothing
 * more; a chatty peer C links and unlinks eight times, which makes about
 * 32 events (C's and H's) after the quiet ones. A newcomer N then links
 * to H: its join sync must still carry every Q's event, so that N's map
 * confirms each Q - H link (H's own event only claims H's side). A plain
 * ring of the last 16 frames had lost them (no anti-entropy here, no
 * refresh, no selection: the join sync is N's only source). */
#include <string.h>

#include "node.h"
#include "node_util.h"
#include "test.h"

#define DIFF 8
enum { H = 0, Q0 = 1, NQ = 4, C = Q0 + NQ, N = C + 1, ALL = N + 1 };

static mm_identity_t ids[ALL];
static mm_node_t *nodes[ALL];
static uint16_t ports[ALL];

int
main(void)
{
	mm_rt_config_t rc;
	mm_rt_config_default(&rc);
	rc.workers = 2;
	rc.mem_budget = (size_t)1 << 30; /* seven nodes in one process */
	mm_rt_t *rt;
	CHECK_EQ(mm_rt_create(&rc, &rt), 0);
	for (int i = 0; i < ALL; i++) {
		mm_node_config_t c;
		node_test_config(&c, &ids[i], DIFF, "synclog");
		c.select_ms = 0;    /* exactly these links */
		c.ae_ms = 0;        /* the join sync is the only repair */
		c.announce_ms = 0;  /* one event per link change */
		c.refresh_ms = 3600000; /* no re-announcement within the test */
		c.sync_events = 16;
		c.dedup_capacity = 16384;
		char err[256] = "";
		CHECK_EQ(mm_node_create(rt, &c, &nodes[i], err, sizeof(err)), 0);
		CHECK_EQ(mm_node_listen(nodes[i], "127.0.0.1", 0, &ports[i]), 0);
	}
	for (int q = Q0; q < Q0 + NQ; q++) {
		node_dial(nodes[q], ports[H]);
		WAIT_FOR(node_edge(nodes[H], ids[q].id, ids[H].id) == MM_EDGE_CONFIRMED);
	}
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
	node_dial(nodes[N], ports[H]);
	WAIT_FOR(node_edge(nodes[N], ids[N].id, ids[H].id) == MM_EDGE_CONFIRMED);
	for (int q = Q0; q < Q0 + NQ; q++)
		WAIT_FOR(node_edge(nodes[N], ids[q].id, ids[H].id) == MM_EDGE_CONFIRMED);
	mm_rt_stop(rt);
	for (int i = 0; i < ALL; i++) {
		mm_node_destroy(nodes[i]);
		mm_id_free(&ids[i]);
	}
	mm_rt_destroy(rt);
	fprintf(stderr, "test_synclog: ok\n");
	return 0;
}
