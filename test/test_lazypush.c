/* Lazy push: an event relayed by a hub goes whole to gossip_eager of its
 * links and as an ihave to the others, which must ask for it (iwant).
 *
 * A hub H with six leaves L0..L5, each linked to H only (no selection, no
 * anti-entropy). Once the star is mapped, L0 dials L1: both announce the
 * new link, to H among others. H relays each event whole to one link
 * (gossip_eager 1) and as an ihave to the rest, so at least three of the
 * leaves L2..L5 (which hear of nothing but through H) get each event only
 * by asking. Every leaf's map must confirm L0 - L1 all the same. The same
 * star with gossip_eager 0 (every event whole to every link) is the
 * control: no ihave, no iwant, the same maps. */
#include <string.h>

#include "node.h"
#include "node_util.h"
#include "test.h"

#define DIFF 8
#define N 7 /* H = 0, leaves 1..6 (L0..L5) */

static mm_identity_t ids[N];
static mm_node_t *nodes[N];
static uint16_t ports[N];

static void
star(unsigned eager, mm_node_stats_t st[N])
{
	mm_rt_config_t rc;
	mm_rt_config_default(&rc);
	rc.workers = 2;
	mm_rt_t *rt;
	CHECK_EQ(mm_rt_create(&rc, &rt), 0);
	for (int i = 0; i < N; i++) {
		mm_node_config_t c;
		node_test_config(&c, &ids[i], DIFF, "lazy");
		c.select_ms = 0; /* exactly the links dialled here */
		c.ae_ms = 0;     /* nothing but gossip repairs */
		c.gossip_eager = eager;
		c.ihave_ms = 50;
		char err[256] = "";
		CHECK_EQ(mm_node_create(rt, &c, &nodes[i], err, sizeof(err)), 0);
		CHECK_EQ(mm_node_listen(nodes[i], "127.0.0.1", 0, &ports[i]), 0);
	}
	for (int i = 1; i < N; i++) {
		node_dial(nodes[i], ports[0]);
		WAIT_FOR(mm_node_peers(nodes[0]) == (unsigned)i);
	}
	/* the star, mapped by every leaf */
	for (int at = 1; at < N; at++)
		for (int i = 1; i < N; i++)
			WAIT_FOR(node_edge(nodes[at], ids[0].id, ids[i].id) == MM_EDGE_CONFIRMED);
	mm_node_stats_t before[N];
	for (int i = 0; i < N; i++)
		mm_node_stats(nodes[i], &before[i]);
	node_dial(nodes[1], ports[2]);
	WAIT_FOR(mm_node_peers(nodes[1]) == 2 && mm_node_peers(nodes[2]) == 2);
	for (int at = 0; at < N; at++)
		WAIT_FOR(node_edge(nodes[at], ids[1].id, ids[2].id) == MM_EDGE_CONFIRMED);
	for (int i = 0; i < N; i++) {
		mm_node_stats(nodes[i], &st[i]);
		CHECK_EQ(st[i].events_bad, 0);
		CHECK_EQ(st[i].iwant_over, 0);
		/* from here on: what the new link's events cost */
		st[i].ihave_sent -= before[i].ihave_sent;
		st[i].iwant_sent -= before[i].iwant_sent;
		st[i].iwant_served -= before[i].iwant_served;
	}
	mm_rt_stop(rt);
	for (int i = 0; i < N; i++) {
		mm_node_destroy(nodes[i]);
		mm_id_free(&ids[i]);
	}
	mm_rt_destroy(rt);
}

int
main(void)
{
	mm_node_stats_t st[N];
	uint64_t asked = 0, ihaves = 0;

	star(0, st);
	for (int i = 0; i < N; i++) {
		CHECK_EQ(st[i].ihave_sent, 0);
		CHECK_EQ(st[i].iwant_sent, 0);
		CHECK_EQ(st[i].iwant_served, 0);
	}
	fprintf(stderr, "   gossip_eager 0: every leaf maps L0 - L1, no ihave, no iwant\n");

	star(1, st);
	for (int i = 3; i < N; i++) /* L2..L5: only H could tell them */
		asked += st[i].iwant_sent;
	for (int i = 0; i < N; i++)
		ihaves += st[i].ihave_sent;
	/* each of the two events: at most one of L2..L5 got it whole */
	CHECK_GE(asked, 6);
	CHECK_GE(st[0].ihave_sent, 6);
	CHECK_GE(st[0].iwant_served, 6);
	fprintf(stderr, "   gossip_eager 1: every leaf maps L0 - L1; the hub sent %llu "
	    "ihave entries (all nodes %llu), the leaves L2..L5 asked for %llu "
	    "events and the hub served %llu\n", (unsigned long long)st[0].ihave_sent,
	    (unsigned long long)ihaves, (unsigned long long)asked,
	    (unsigned long long)st[0].iwant_served);
	fprintf(stderr, "test_lazypush: ok\n");
	return 0;
}
