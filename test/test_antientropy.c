/* Anti-entropy repairs what rumours missed. A line A - B - C - D with a
 * gossip ttl of 1: D's events reach C, and B with ttl 0 (applied, not
 * forwarded), so A never hears D's side of the C - D link and the edge
 * stays a phantom in A's map. With anti-entropy on, B's digest tells A
 * that B has a newer D, A asks, B sends it, and A's map confirms C - D.
 * The same line with anti-entropy off is the control. */
#include <arpa/inet.h>
#include <string.h>

#include "node.h"
#include "node_util.h"
#include "test.h"

#define DIFF 8

static mm_identity_t ids[4];
static mm_node_t *nodes[4];
static uint16_t ports[4];

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

static void
line(uint32_t ae_ms, int *repaired, uint64_t *served)
{
	mm_rt_config_t rc;
	mm_rt_config_default(&rc);
	rc.workers = 2;
	mm_rt_t *rt;
	CHECK_EQ(mm_rt_create(&rc, &rt), 0);
	for (int i = 0; i < 4; i++) {
		mm_node_config_t c;
		node_test_config(&c, &ids[i], DIFF, "ae");
		c.gossip.ttl = 1;
		c.select_ms = 0; /* exactly the line */
		c.ae_ms = ae_ms;
		char err[256] = "";
		CHECK_EQ(mm_node_create(rt, &c, &nodes[i], err, sizeof(err)), 0);
		CHECK_EQ(mm_node_listen(nodes[i], "127.0.0.1", 0, &ports[i]), 0);
	}
	dial(1, 0);
	WAIT_FOR(mm_node_peers(nodes[0]) == 1);
	dial(2, 1);
	WAIT_FOR(mm_node_peers(nodes[1]) == 2);
	dial(3, 2);
	WAIT_FOR(mm_node_peers(nodes[2]) == 2);
	/* B holds both sides of C - D, and A holds C's side. */
	WAIT_FOR(edge_at(1, 2, 3) == MM_EDGE_CONFIRMED);
	WAIT_FOR(edge_at(0, 1, 2) == MM_EDGE_CONFIRMED && edge_at(0, 2, 3) != MM_EDGE_NONE);
	if (ae_ms != 0) {
		WAIT_FOR(edge_at(0, 2, 3) == MM_EDGE_CONFIRMED);
	} else {
		/* Control: give gossip the time several anti-entropy rounds
		 * would have had; nothing else can bring D's side to A. */
		test_sleep_ms(1500);
	}
	*repaired = edge_at(0, 2, 3) == MM_EDGE_CONFIRMED;
	*served = 0;
	for (int i = 0; i < 4; i++) {
		mm_node_stats_t s;
		mm_node_stats(nodes[i], &s);
		*served += s.ae_served;
		CHECK_EQ(s.events_bad, 0);
	}
	mm_rt_stop(rt);
	for (int i = 0; i < 4; i++) {
		mm_node_destroy(nodes[i]);
		mm_id_free(&ids[i]);
	}
	mm_rt_destroy(rt);
}

int
main(void)
{
	int repaired;
	uint64_t served;
	line(0, &repaired, &served);
	CHECK_EQ(repaired, 0);
	CHECK_EQ(served, 0);
	fprintf(stderr, "   without anti-entropy: A's map keeps C - D a phantom\n");
	line(200, &repaired, &served);
	CHECK_EQ(repaired, 1);
	CHECK_GE(served, 1);
	fprintf(stderr, "   with anti-entropy: C - D confirmed at A (%llu frames served)\n",
	    (unsigned long long)served);
	fprintf(stderr, "test_antientropy: ok\n");
	return 0;
}
