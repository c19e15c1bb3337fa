/* Neighbour selection (selector.h) on a hand-built map: the ranking's
 * every criterion in order (another component, room, across a bridge,
 * overlap, confirmed, age), the bridge classes it uses, and the choice of
 * the worst neighbour (most overlap, youngest on a tie, only among the
 * eligible). */
#include <stdlib.h>
#include <string.h>

#include "peerstore.h"
#include "psquery.h"
#include "selector.h"
#include "test.h"

static mm_ps_t *ps;
static uint32_t seqs[64];

static void
mkid(uint8_t id[32], uint32_t n)
{
	for (int i = 0; i < 32; i++)
		id[i] = (uint8_t)(n * 37u + (uint32_t)i * 11u);
	memcpy(id, &n, sizeof(n));
}

static void
claim(uint32_t a, uint32_t b, int dir, uint32_t now)
{
	uint8_t x[32], y[32];
	mkid(x, a);
	mkid(y, b);
	mm_ps_event_t e = {.origin = x, .peer = y, .kind = MM_PS_CONNECT,
	    .dir = (uint8_t)dir, .seq = ++seqs[a], .now = now};
	CHECK_EQ(mm_ps_apply(ps, &e), MM_PS_APPLIED);
}

static void
link(uint32_t a, uint32_t b, uint32_t now)
{
	claim(a, b, MM_PS_OUT, now);
	claim(b, a, MM_PS_IN, now);
}

static mm_pidx_t
idx(uint32_t n)
{
	uint8_t x[32];
	mkid(x, n);
	return mm_ps_lookup(ps, x);
}

static int
pos(const mm_sel_cand_t *c, unsigned nc, uint32_t tag)
{
	for (unsigned i = 0; i < nc; i++)
		if (c[i].tag == tag)
			return (int)i;
	return -1;
}

int
main(void)
{
	mm_ps_config_t pc;
	mm_ps_config_default(&pc);
	pc.max_neighbours_temp = MM_PS_MAX_NB;
	CHECK_EQ(mm_ps_create(&pc, &ps), 0);
	mm_psq_t *q = mm_psq_new();
	CHECK(q != NULL);

	/* us: 0, linked to 1, 2, 3; 1 and 2 are linked to each other */
	link(0, 1, 10);
	link(0, 2, 10);
	link(0, 3, 10);
	link(1, 2, 10);
	/* 3 reaches further: 4, 5 and 7 (the others below hang off them);
	 * 0 - 3 is a bridge, and so are 3 - 4, 3 - 5, 3 - 7 */
	link(3, 4, 10);
	link(3, 5, 10);
	link(3, 7, 10);
	/* 16 (seen at 40, before 12): on a cycle with us (0-1-30-16-31-2-0),
	 * so on our side of every bridge; no overlap, room */
	link(30, 1, 40);
	link(31, 2, 40);
	link(16, 30, 40);
	link(16, 31, 40);
	/* 12 (seen at 50) and 11 (seen at 100): no overlap, confirmed */
	link(12, 5, 50);
	link(11, 4, 100);
	/* 10: confirmed with two of ours: overlap 2 */
	link(10, 1, 110);
	link(10, 2, 110);
	/* 13: only a one-sided claim: not confirmed */
	claim(13, 6, MM_PS_OUT, 120);
	/* 15: three links already (the target here is 3): no room */
	link(15, 7, 130);
	link(15, 8, 130);
	link(15, 9, 130);
	/* 20 - 21: a component of their own */
	link(20, 21, 140);

	const unsigned target = 3;
	mm_pidx_t nb[3] = {idx(1), idx(2), idx(3)};
	uint32_t tags[] = {10, 11, 12, 13, 14, 15, 20, 21, 16};
	mm_sel_cand_t c[9];
	for (unsigned i = 0; i < 9; i++) {
		c[i].tag = tags[i];
		c[i].idx = tags[i] == 14 ? MM_PIDX_NONE : idx(tags[i]); /* 14: unknown */
		CHECK(tags[i] == 14 || c[i].idx != MM_PIDX_NONE);
	}
	/* the classes, from an analysis of the map */
	mm_ps_graph_t g;
	CHECK_EQ(mm_ps_analyse(ps, q, 1, &g), 0);
	uint32_t span = mm_ps_span(ps);
	uint8_t *cls = calloc(span, 1);
	CHECK(cls != NULL);
	/* our side of every bridge: 0 1 2 30 31 16, and 10 (on 1 - 2) */
	CHECK_EQ(mm_psq_bridge_side(ps, q, idx(0), cls, span), 7);
	CHECK_EQ(cls[idx(16)], 1);
	CHECK_EQ(cls[idx(10)], 1);
	CHECK_EQ(cls[idx(3)], 2);
	CHECK_EQ(cls[idx(12)], 2);
	CHECK_EQ(cls[idx(20)], 3);
	CHECK_EQ(cls[idx(13)], 3); /* live, no confirmed edge: alone */
	mm_sel_rank(ps, nb, 3, target, cls, span, c, 9, 42);
	/* another component first (20 and 21, in either order) */
	CHECK(c[0].other_comp && c[1].other_comp);
	CHECK((c[0].tag == 20 && c[1].tag == 21) || (c[0].tag == 21 && c[1].tag == 20));
	/* then room and across a bridge: confirmed, older first (12 before
	 * 11) */
	CHECK_EQ(pos(c, 9, 12), 2);
	CHECK_EQ(pos(c, 9, 11), 3);
	CHECK(c[2].across && c[3].across);
	/* then room on our side, no overlap: 16 (older than 12, but on our
	 * side of the bridges), the unconfirmed 13, the unknown 14 */
	CHECK_EQ(pos(c, 9, 16), 4);
	CHECK_EQ(pos(c, 9, 13), 5);
	CHECK_EQ(pos(c, 9, 14), 6);
	CHECK(!c[5].confirmed && c[5].room && !c[5].other_comp);
	/* overlap 2 after every overlap 0 */
	CHECK_EQ(pos(c, 9, 10), 7);
	CHECK_EQ(c[7].overlap, 2);
	/* no room last, whatever its overlap (0) or its bridge */
	CHECK_EQ(pos(c, 9, 15), 8);
	CHECK_EQ(c[8].room, 0);
	CHECK_EQ(c[8].overlap, 0);
	CHECK(c[8].across);
	for (unsigned i = 0; i + 1 < 9; i++)
		CHECK(!mm_sel_before(&c[i + 1], &c[i]));

	/* Thin peers (the eclipse defence): with thin_below 2, those with
	 * fewer than 2 confirmed links (11, 12, 13) and the address known
	 * long with no record (14) rank after every other, with room or
	 * not; another component still goes first. */
	mm_sel_cand_t t[9];
	for (unsigned i = 0; i < 9; i++) {
		t[i] = (mm_sel_cand_t){.tag = tags[i], .known_long = 1,
		    .idx = tags[i] == 14 ? MM_PIDX_NONE : idx(tags[i])};
	}
	mm_sel_policy_t tp = {.kind = MM_SEL_OVERLAP, .thin_below = 2};
	mm_sel_rank_policy(&tp, ps, nb, 3, target, cls, span, t, 9, 42);
	CHECK(t[0].other_comp && t[1].other_comp);
	CHECK_EQ(pos(t, 9, 16), 2);
	CHECK_EQ(pos(t, 9, 10), 3);
	CHECK_EQ(pos(t, 9, 15), 4); /* full, but not thin */
	for (unsigned i = 2; i < 9; i++)
		CHECK_EQ(t[i].thin, i >= 5);
	CHECK_EQ(pos(t, 9, 12), 5);
	CHECK_EQ(pos(t, 9, 11), 6);
	/* an address only, known briefly: a newcomer, not thin */
	for (unsigned i = 0; i < 9; i++)
		t[i].known_long = t[i].tag != 14;
	mm_sel_rank_policy(&tp, ps, nb, 3, target, cls, span, t, 9, 42);
	CHECK_EQ(t[pos(t, 9, 14)].thin, 0);
	CHECK(pos(t, 9, 14) < 5);

	/* No analysis yet: no component or bridge preference at all. */
	mm_sel_cand_t d[2] = {{.idx = idx(20), .tag = 20}, {.idx = idx(11), .tag = 11}};
	mm_sel_rank(ps, NULL, 0, target, NULL, 0, d, 2, 1);
	CHECK(!d[0].other_comp && !d[1].other_comp && !d[0].across && !d[1].across);
	free(cls);

	/* The worst neighbour: 1 and 2 overlap (each has the other), 3 does
	 * not; between 1 and 2 the younger link goes. */
	uint8_t elig[3] = {1, 1, 1};
	uint64_t since[3] = {10, 20, 30};
	unsigned wo = 99;
	CHECK_EQ(mm_sel_worst(ps, nb, 3, elig, since, &wo), 1);
	CHECK_EQ(wo, 1);
	since[0] = 40; /* now 1 is the younger */
	CHECK_EQ(mm_sel_worst(ps, nb, 3, elig, since, &wo), 0);
	elig[0] = 0;   /* too young to drop */
	CHECK_EQ(mm_sel_worst(ps, nb, 3, elig, since, &wo), 1);
	elig[1] = 0;
	CHECK_EQ(mm_sel_worst(ps, nb, 3, elig, since, &wo), 2);
	CHECK_EQ(wo, 0);
	elig[2] = 0;
	CHECK_EQ(mm_sel_worst(ps, nb, 3, elig, since, &wo), -1);

	/* The reach query that ranks components. */
	/* 0 1 2 3 4 5 7, 10 11 12 15 8 9, and 30 31 16 */
	CHECK_EQ(mm_ps_reach(ps, q, idx(0)), 16);
	CHECK(mm_psq_reached(q, idx(10)));
	CHECK(!mm_psq_reached(q, idx(20)));
	CHECK(!mm_psq_reached(q, idx(13)));

	/* Edge digests: the map's is the sum over its confirmed edges. */
	uint8_t a[32], b[32];
	uint64_t sum = 0, ne = 0;
	static const uint32_t edges[][2] = {{0, 1}, {0, 2}, {0, 3}, {1, 2}, {3, 4},
	    {3, 5}, {3, 7}, {30, 1}, {31, 2}, {16, 30}, {16, 31}, {12, 5},
	    {11, 4}, {10, 1}, {10, 2}, {15, 7}, {15, 8}, {15, 9}, {20, 21}};
	for (unsigned i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
		mkid(a, edges[i][0]);
		mkid(b, edges[i][1]);
		CHECK_EQ(mm_ps_edge_hash(a, b), mm_ps_edge_hash(b, a));
		sum += mm_ps_edge_hash(a, b);
	}
	CHECK_EQ(mm_ps_edges_digest(ps, &ne), sum);
	CHECK_EQ(ne, sizeof(edges) / sizeof(edges[0]));

	/* Classes between analyses: 40 - 41 is another component when the
	 * map is analysed; then 40 links to 16, on our side. Until the next
	 * analysis the classes still put 40 elsewhere, but its confirmed
	 * link to one of ours shows it is in our component now (a peer that
	 * came back under churn: every node at its target dialled it as a
	 * partition to repair). 41 is only linked to 40: still elsewhere
	 * until the next analysis; 20 - 21 truly is. */
	link(40, 41, 150);
	CHECK_EQ(mm_ps_analyse(ps, q, 1, &g), 0);
	span = mm_ps_span(ps);
	cls = calloc(span, 1);
	CHECK(cls != NULL);
	mm_psq_bridge_side(ps, q, idx(0), cls, span);
	CHECK_EQ(cls[idx(40)], 3);
	mm_sel_cand_t s3[3] = {{.idx = idx(40), .tag = 40}, {.idx = idx(41), .tag = 41},
	    {.idx = idx(20), .tag = 20}};
	mm_sel_rank(ps, nb, 3, target, cls, span, s3, 3, 7);
	CHECK(s3[0].other_comp && s3[1].other_comp && s3[2].other_comp);
	link(40, 16, 160);
	for (unsigned i = 0; i < 3; i++)
		s3[i].idx = idx(s3[i].tag);
	mm_sel_rank(ps, nb, 3, target, cls, span, s3, 3, 7);
	CHECK_EQ(s3[pos(s3, 3, 40)].other_comp, 0);
	CHECK_EQ(s3[pos(s3, 3, 41)].other_comp, 1);
	CHECK_EQ(s3[pos(s3, 3, 20)].other_comp, 1);
	CHECK_EQ(pos(s3, 3, 40), 2);
	free(cls);

	mm_psq_free(q);
	mm_ps_destroy(ps);
	fprintf(stderr, "test_selector: ok\n");
	return 0;
}
