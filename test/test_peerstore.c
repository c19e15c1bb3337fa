/* PeerStore: every edge state transition, sequence numbers, evidence,
 * overflow lists, phantom expiry, TTL and index reuse, addresses, capacity,
 * shedding; queries checked against brute force on random graphs. */
#include <string.h>
#include <unistd.h>

#include "peerstore.h"
#include "psquery.h"
#include "test.h"

static void
mkid(uint8_t id[32], uint32_t n)
{
	memset(id, 0, 32);
	for (int i = 0; i < 32; i++)
		id[i] = (uint8_t)((n * 2654435761u) >> (i % 4 * 8)) ^ (uint8_t)i;
	memcpy(id, &n, sizeof(n));
}

static mm_ps_t *
ps_new(uint32_t max_peers)
{
	mm_ps_config_t c;
	mm_ps_config_default(&c);
	c.max_peers = max_peers;
	c.hash_key[0] = 1; /* deterministic */
	c.hash_key[1] = 2;
	mm_ps_t *ps;
	CHECK_EQ(mm_ps_create(&c, &ps), 0);
	return ps;
}

static int
ev(mm_ps_t *ps, uint32_t o, uint32_t p, int kind, int dir, uint32_t seq,
    uint32_t now)
{
	uint8_t a[32], b[32];
	mkid(a, o);
	mkid(b, p);
	mm_ps_event_t e = {.origin = a, .peer = b, .kind = (uint8_t)kind,
	    .dir = (uint8_t)dir, .seq = seq, .now = now};
	return mm_ps_apply(ps, &e);
}

static mm_pidx_t
idx(mm_ps_t *ps, uint32_t n)
{
	uint8_t a[32];
	mkid(a, n);
	return mm_ps_lookup(ps, a);
}

static void
test_edge_states(void)
{
	mm_ps_t *ps = ps_new(1024);
	enum { A = 1, B = 2 };
	CHECK_EQ(ev(ps, A, B, MM_PS_CONNECT, MM_PS_OUT, 1, 10), MM_PS_APPLIED);
	mm_pidx_t a = idx(ps, A), b = idx(ps, B);
	CHECK_NE(a, MM_PIDX_NONE);
	CHECK_NE(b, MM_PIDX_NONE);
	CHECK_EQ(mm_ps_edge_state(ps, a, b), MM_EDGE_PHANTOM_A);
	CHECK_EQ(mm_ps_edge_state(ps, b, a), MM_EDGE_PHANTOM_B);
	CHECK(mm_ps_live(ps, a));
	CHECK(!mm_ps_live(ps, b)); /* known only as A's neighbour */
	/* B confirms with the opposite direction. */
	CHECK_EQ(ev(ps, B, A, MM_PS_CONNECT, MM_PS_IN, 1, 11), MM_PS_APPLIED);
	CHECK_EQ(mm_ps_edge_state(ps, a, b), MM_EDGE_CONFIRMED);
	mm_pidx_t out[32];
	CHECK_EQ(mm_ps_confirmed(ps, a, out, 32), 1);
	CHECK_EQ(out[0], b);
	/* Stale and replayed events change nothing. */
	CHECK_EQ(ev(ps, A, B, MM_PS_DISCONNECT, MM_PS_OUT, 1, 12), MM_PS_STALE);
	CHECK_EQ(mm_ps_edge_state(ps, a, b), MM_EDGE_CONFIRMED);
	CHECK_EQ(mm_ps_seq(ps, a), 1);
	/* Same claim again with a newer seq: accepted, nothing to change. */
	CHECK_EQ(ev(ps, A, B, MM_PS_CONNECT, MM_PS_OUT, 2, 12), MM_PS_NOOP);
	CHECK_EQ(mm_ps_seq(ps, a), 2);
	/* B now claims it dialled too: contradictory, evidence against B. */
	CHECK_EQ(mm_ps_evidence(ps, b), 0);
	CHECK_EQ(ev(ps, B, A, MM_PS_CONNECT, MM_PS_OUT, 2, 13), MM_PS_EV_CONFLICT);
	CHECK_EQ(mm_ps_edge_state(ps, a, b), MM_EDGE_CONFLICT);
	CHECK_EQ(mm_ps_evidence(ps, b), 1);
	CHECK_EQ(mm_ps_confirmed(ps, a, out, 32), 0); /* conflicts don't count */
	CHECK_EQ(ev(ps, B, A, MM_PS_CONNECT, MM_PS_IN, 3, 14), MM_PS_APPLIED);
	CHECK_EQ(mm_ps_edge_state(ps, a, b), MM_EDGE_CONFIRMED);
	/* A disconnects: only B's claim remains. */
	CHECK_EQ(ev(ps, A, B, MM_PS_DISCONNECT, MM_PS_OUT, 3, 15), MM_PS_APPLIED);
	CHECK_EQ(mm_ps_edge_state(ps, a, b), MM_EDGE_PHANTOM_B);
	/* A disconnect from a neighbour never seen: not evidence. */
	CHECK_EQ(ev(ps, A, 99, MM_PS_DISCONNECT, MM_PS_OUT, 4, 16), MM_PS_NOOP);
	CHECK_EQ(mm_ps_evidence(ps, a), 0);
	CHECK_EQ(idx(ps, 99), MM_PIDX_NONE); /* and nothing interned */
	/* Self edges are evidence and change nothing. */
	CHECK_EQ(ev(ps, A, A, MM_PS_CONNECT, MM_PS_OUT, 5, 17), MM_PS_EV_SELF);
	CHECK_EQ(mm_ps_evidence(ps, a), 1);
	CHECK_EQ(mm_ps_seq(ps, a), 4);
	/* Malformed events are refused outright. */
	CHECK_EQ(ev(ps, A, B, 7, MM_PS_OUT, 9, 18), -EINVAL);
	CHECK_EQ(ev(ps, A, B, MM_PS_CONNECT, 2, 9, 18), -EINVAL);
	CHECK_EQ(ev(ps, A, B, MM_PS_CONNECT, MM_PS_OUT, 0, 18), -EINVAL);
	mm_ps_stats_t st;
	mm_ps_stats(ps, &st);
	CHECK_EQ(st.records, 2);
	CHECK_EQ(st.claims, 1);
	CHECK_EQ(st.evidence, 2);
	mm_ps_destroy(ps);
}

static void
test_overflow_and_limit(void)
{
	mm_ps_t *ps = ps_new(1024);
	uint32_t seq = 1;
	/* 16 neighbours: 12 inline + 4 in an overflow block. */
	for (uint32_t p = 100; p < 116; p++)
		CHECK_EQ(ev(ps, 1, p, MM_PS_CONNECT, p % 2, seq++, 1), MM_PS_APPLIED);
	CHECK_EQ(ev(ps, 1, 116, MM_PS_CONNECT, MM_PS_OUT, seq++, 1), MM_PS_EV_TOO_MANY);
	CHECK_EQ(idx(ps, 116), MM_PIDX_NONE);
	mm_pidx_t a = idx(ps, 1), nb[32];
	uint8_t dirs[32];
	CHECK_EQ(mm_ps_neighbours(ps, a, nb, dirs, 32), 16);
	for (unsigned i = 0; i < 16; i++) {
		uint32_t n;
		memcpy(&n, mm_ps_id(ps, nb[i]), sizeof(n));
		CHECK_EQ(dirs[i], n % 2);
	}
	/* Down to 10: the overflow block goes back, the list stays right. */
	for (uint32_t p = 100; p < 106; p++)
		CHECK_EQ(ev(ps, 1, p, MM_PS_DISCONNECT, 0, seq++, 2), MM_PS_APPLIED);
	CHECK_EQ(mm_ps_neighbours(ps, a, nb, dirs, 32), 10);
	for (unsigned i = 0; i < 10; i++) {
		uint32_t n;
		memcpy(&n, mm_ps_id(ps, nb[i]), sizeof(n));
		CHECK_GE(n, 106);
		CHECK_EQ(dirs[i], n % 2);
	}
	/* Capacity: the map never grows past max_peers. */
	mm_ps_t *small = ps_new(8);
	int rc = 0;
	for (uint32_t p = 2; p < 20 && rc >= 0; p++)
		rc = ev(small, 1, p, MM_PS_CONNECT, MM_PS_OUT, p, 1);
	CHECK_EQ(rc, -ENOSPC);
	mm_ps_stats_t st;
	mm_ps_stats(small, &st);
	CHECK_EQ(st.ids, 8);
	mm_ps_destroy(small);
	mm_ps_destroy(ps);
}

static void
test_phantoms_and_ttl(void)
{
	mm_ps_t *ps = ps_new(1024);
	mm_ps_gc_t gc;
	/* 1-2 confirmed, 1-3 phantom (3 never answers). */
	CHECK_EQ(ev(ps, 1, 2, MM_PS_CONNECT, MM_PS_OUT, 1, 100), MM_PS_APPLIED);
	CHECK_EQ(ev(ps, 2, 1, MM_PS_CONNECT, MM_PS_IN, 1, 100), MM_PS_APPLIED);
	CHECK_EQ(ev(ps, 1, 3, MM_PS_CONNECT, MM_PS_OUT, 2, 100), MM_PS_APPLIED);
	mm_pidx_t a = idx(ps, 1), b = idx(ps, 2), c = idx(ps, 3);
	mm_ps_expire(ps, 0, 159, &gc);
	CHECK_EQ(gc.phantoms, 0); /* not yet: timeout 60 s */
	CHECK_EQ(mm_ps_edge_state(ps, a, c), MM_EDGE_PHANTOM_A);
	mm_ps_expire(ps, 0, 160, &gc);
	CHECK_EQ(gc.phantoms, 1);
	CHECK_EQ(mm_ps_edge_state(ps, a, c), MM_EDGE_NONE);
	CHECK_EQ(mm_ps_edge_state(ps, a, b), MM_EDGE_CONFIRMED); /* untouched */
	/* 3 was referenced by that claim only: its id goes too. */
	CHECK_EQ(gc.ids, 1);
	CHECK_EQ(idx(ps, 3), MM_PIDX_NONE);

	/* A phantom confirmed before its deadline stays. */
	CHECK_EQ(ev(ps, 1, 4, MM_PS_CONNECT, MM_PS_OUT, 3, 200), MM_PS_APPLIED);
	CHECK_EQ(ev(ps, 4, 1, MM_PS_CONNECT, MM_PS_IN, 1, 230), MM_PS_APPLIED);
	mm_ps_expire(ps, 0, 300, &gc);
	CHECK_EQ(gc.phantoms, 0);
	CHECK_EQ(mm_ps_edge_state(ps, a, idx(ps, 4)), MM_EDGE_CONFIRMED);

	/* A phantom lives while its claimer keeps reporting: the sweep only
	 * looks at records whose last event is confirm_timeout_s old. */
	for (uint32_t p = 10; p < 15; p++)
		CHECK_EQ(ev(ps, 5, p, MM_PS_CONNECT, MM_PS_OUT, p, 300), MM_PS_APPLIED);
	mm_pidx_t e = idx(ps, 5);
	mm_pidx_t nb[32];
	CHECK_EQ(ev(ps, 5, 15, MM_PS_CONNECT, MM_PS_OUT, 20, 350), MM_PS_APPLIED);
	mm_ps_expire(ps, 0, 400, &gc); /* 5's last event at 350: too young */
	CHECK_EQ(gc.phantoms, 0);
	CHECK_EQ(mm_ps_neighbours(ps, e, nb, NULL, 32), 6);
	mm_ps_expire(ps, 0, 410, &gc);
	CHECK_EQ(gc.phantoms, 6);
	CHECK_EQ(mm_ps_neighbours(ps, e, nb, NULL, 32), 0);
	/* 5 is now isolated (no claims, nobody claims it, quiet for the
	 * confirmation timeout): a dead peer, evicted at once. */
	CHECK_EQ(gc.records, 1);
	CHECK(!mm_ps_live(ps, e));

	/* TTL: records not refreshed within ttl (3600) are evicted; the
	 * claims they held are released. */
	CHECK_EQ(ev(ps, 2, 1, MM_PS_CONNECT, MM_PS_IN, 2, 3000), MM_PS_NOOP);
	mm_ps_expire(ps, 0, 3901, &gc);
	/* 1 (t 200) and 4 (230) by the ttl; then 2's claim of the vanished 1
	 * is one-sided and old: dropped too, which leaves 2 isolated (its
	 * last event at 3000): evicted in the same sweep. */
	CHECK_EQ(gc.records, 3);
	CHECK(!mm_ps_live(ps, a));
	CHECK(!mm_ps_live(ps, b));
	CHECK_EQ(mm_ps_edge_state(ps, a, b), MM_EDGE_NONE);
	/* A peer that restarts after expiry is learnt again from seq 1. */
	CHECK_EQ(ev(ps, 1, 2, MM_PS_CONNECT, MM_PS_OUT, 1, 3902), MM_PS_APPLIED);
	CHECK_EQ(ev(ps, 2, 1, MM_PS_CONNECT, MM_PS_IN, 3, 3902), MM_PS_APPLIED);
	a = idx(ps, 1);
	b = idx(ps, 2);
	CHECK_EQ(mm_ps_edge_state(ps, a, b), MM_EDGE_CONFIRMED);
	mm_ps_destroy(ps);
}

/* mm_ps_forget: records the node found unreachable and silent become
 * tombstones; replays of their old events are stale, a newer event
 * restores them, and the id is freed ttl_s after their last event. */
static void
test_forget_tombstone(void)
{
	mm_ps_t *ps = ps_new(1024);
	mm_ps_gc_t gc;
	CHECK_EQ(ev(ps, 1, 2, MM_PS_CONNECT, MM_PS_OUT, 5, 100), MM_PS_APPLIED);
	CHECK_EQ(ev(ps, 2, 1, MM_PS_CONNECT, MM_PS_IN, 5, 100), MM_PS_APPLIED);
	CHECK_EQ(ev(ps, 3, 4, MM_PS_CONNECT, MM_PS_OUT, 9, 100), MM_PS_APPLIED);
	CHECK_EQ(ev(ps, 4, 3, MM_PS_CONNECT, MM_PS_IN, 9, 100), MM_PS_APPLIED);
	mm_pidx_t f[4] = {idx(ps, 1), idx(ps, 2), idx(ps, 3), idx(ps, 4)};
	/* too young: nothing */
	CHECK_EQ(mm_ps_forget(ps, 0, f, 4, 279, 180), 0);
	CHECK_EQ(mm_ps_edge_state(ps, f[0], f[1]), MM_EDGE_CONFIRMED);
	/* another shard's records are not this shard's to clear */
	CHECK_EQ(mm_ps_forget(ps, 1, f, 4, 280, 180), 0);
	CHECK_EQ(mm_ps_forget(ps, 0, f, 4, 280, 180), 4);
	for (int i = 0; i < 4; i++) {
		CHECK(!mm_ps_live(ps, f[i]));
		CHECK(mm_ps_seq_binds(ps, f[i]));
	}
	CHECK_EQ(mm_ps_edge_state(ps, f[0], f[1]), MM_EDGE_NONE);
	CHECK_EQ(mm_ps_forget(ps, 0, f, 4, 290, 180), 0); /* already gone */
	/* the ids stay (tombstones), even with nothing claiming them */
	mm_ps_expire(ps, 0, 400, &gc);
	CHECK_EQ(idx(ps, 3), f[2]);
	/* a replay of the last event (or an older one) is stale */
	CHECK_EQ(ev(ps, 1, 2, MM_PS_CONNECT, MM_PS_OUT, 5, 410), MM_PS_STALE);
	CHECK_EQ(ev(ps, 2, 1, MM_PS_CONNECT, MM_PS_IN, 4, 410), MM_PS_STALE);
	CHECK(!mm_ps_live(ps, f[0]));
	/* the origins' next events bring them back (a healed partition) */
	CHECK_EQ(ev(ps, 1, 2, MM_PS_CONNECT, MM_PS_OUT, 6, 420), MM_PS_APPLIED);
	CHECK_EQ(ev(ps, 2, 1, MM_PS_CONNECT, MM_PS_IN, 6, 420), MM_PS_APPLIED);
	CHECK(mm_ps_live(ps, f[0]));
	CHECK_EQ(mm_ps_edge_state(ps, f[0], f[1]), MM_EDGE_CONFIRMED);
	/* 3 and 4 (last events at 100): freed once ttl_s (3600) has passed */
	mm_ps_expire(ps, 0, 3700, &gc);
	CHECK_EQ(idx(ps, 3), f[2]);
	mm_ps_expire(ps, 0, 3701, &gc);
	CHECK_EQ(idx(ps, 3), MM_PIDX_NONE);
	CHECK_EQ(idx(ps, 4), MM_PIDX_NONE);
	CHECK_EQ(gc.ids, 2);
	/* and then an old event is news again, as for any unknown origin */
	CHECK_EQ(ev(ps, 3, 4, MM_PS_CONNECT, MM_PS_OUT, 9, 3702), MM_PS_APPLIED);
	mm_ps_destroy(ps);
}

static void
test_index_reuse(void)
{
	mm_ps_t *ps = ps_new(16);
	mm_ps_gc_t gc;
	CHECK_EQ(ev(ps, 1, 2, MM_PS_CONNECT, MM_PS_OUT, 50, 10), MM_PS_APPLIED);
	mm_pidx_t old = idx(ps, 1);
	mm_ps_expire(ps, 0, 10 + 3601, &gc);
	CHECK_EQ(gc.records, 1);
	CHECK_EQ(idx(ps, 1), MM_PIDX_NONE);
	CHECK_EQ(idx(ps, 2), MM_PIDX_NONE);
	/* Within the grace period a fresh index is used, then the freed one;
	 * the reused record does not inherit the old peer's seq. */
	CHECK_EQ(ev(ps, 7, 8, MM_PS_CONNECT, MM_PS_OUT, 1, 3612), MM_PS_APPLIED);
	CHECK_NE(idx(ps, 7), old);
	CHECK_EQ(ev(ps, 9, 8, MM_PS_CONNECT, MM_PS_IN, 1, 3612 + 200), MM_PS_APPLIED);
	CHECK_EQ(idx(ps, 9), old);
	CHECK_EQ(mm_ps_seq(ps, old), 1);
	mm_ps_destroy(ps);
}

static void
test_set_neighbours_and_addr(void)
{
	mm_ps_t *ps = ps_new(1024);
	uint8_t o[32], ids[3][32];
	uint8_t dirs[3] = {MM_PS_OUT, MM_PS_IN, MM_PS_OUT};
	mkid(o, 1);
	for (int i = 0; i < 3; i++)
		mkid(ids[i], 10 + (uint32_t)i);
	CHECK_EQ(ev(ps, 1, 50, MM_PS_CONNECT, MM_PS_OUT, 1, 5), MM_PS_APPLIED);
	CHECK_EQ(mm_ps_set_neighbours(ps, o, 7, 6, (const uint8_t (*)[32])ids, dirs, 3),
	    MM_PS_APPLIED);
	mm_pidx_t nb[32];
	uint8_t d[32];
	CHECK_EQ(mm_ps_neighbours(ps, idx(ps, 1), nb, d, 32), 3);
	CHECK_EQ(nb[1], idx(ps, 11));
	CHECK_EQ(d[1], MM_PS_IN);
	CHECK_EQ(mm_ps_set_neighbours(ps, o, 7, 6, (const uint8_t (*)[32])ids, dirs, 2),
	    MM_PS_STALE);
	mm_ps_stats_t st;
	mm_ps_stats(ps, &st);
	CHECK_EQ(st.claims, 3);

	mm_ps_addr_t a = {.ip = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 7},
	    .port = 7000}, got;
	CHECK_EQ(mm_ps_set_addr(ps, ids[2], &a, 8), 0);
	CHECK(mm_ps_live(ps, idx(ps, 12))); /* dialable: a live record */
	CHECK_EQ(mm_ps_get_addr(ps, idx(ps, 12), &got), 0);
	CHECK_EQ(got.port, 7000);
	CHECK_EQ(memcmp(got.ip, a.ip, 16), 0);
	CHECK_EQ(mm_ps_get_addr(ps, idx(ps, 11), &got), -ENOENT);
	/* IPv6 (side array), then back to IPv4 for the same peer. */
	mm_ps_addr_t v6 = {.ip = {0x20, 0x01, 0x0d, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8, 9,
	    10, 11, 12}, .port = 9};
	CHECK_EQ(mm_ps_set_addr(ps, ids[1], &v6, 8), 0);
	CHECK_EQ(mm_ps_get_addr(ps, idx(ps, 11), &got), 0);
	CHECK_EQ(memcmp(got.ip, v6.ip, 16), 0);
	CHECK_EQ(got.port, 9);
	CHECK_EQ(mm_ps_set_addr(ps, ids[1], &a, 8), 0);
	CHECK_EQ(mm_ps_get_addr(ps, idx(ps, 11), &got), 0);
	CHECK_EQ(memcmp(got.ip, a.ip, 16), 0);
	mm_ps_addr_t zero = {.port = 0};
	CHECK_EQ(mm_ps_set_addr(ps, ids[1], &zero, 8), 0);
	/* Many IPv6 addresses (past any 16-bit limit), freed and reused. */
	mm_ps_t *six = ps_new(100000);
	for (uint32_t p = 0; p < 70000; p++) {
		uint8_t id6[32];
		mkid(id6, p);
		memcpy(v6.ip + 12, &p, 4);
		CHECK_EQ(mm_ps_set_addr(six, id6, &v6, 1), 0);
	}
	for (uint32_t p = 0; p < 70000; p += 7) {
		uint8_t id6[32];
		mkid(id6, p);
		CHECK_EQ(mm_ps_set_addr(six, id6, &zero, 1), 0);
	}
	for (uint32_t p = 0; p < 70000; p++) {
		mm_ps_addr_t g6;
		int rc = mm_ps_get_addr(six, idx(six, p), &g6);
		if (p % 7 == 0) {
			CHECK_EQ(rc, -ENOENT);
		} else {
			CHECK_EQ(rc, 0);
			CHECK_EQ(memcmp(g6.ip + 12, &p, 4), 0);
		}
	}
	mm_ps_destroy(six);
	/* Many addresses: the side table grows and stays exact. */
	for (uint32_t p = 100; p < 1000; p++) {
		uint8_t id[32];
		mkid(id, p);
		a.port = (uint16_t)p;
		CHECK_EQ(mm_ps_set_addr(ps, id, &a, 9), 0);
	}
	for (uint32_t p = 100; p < 1000; p += 2) { /* remove half */
		uint8_t id[32];
		mkid(id, p);
		mm_ps_addr_t z = {.port = 0};
		CHECK_EQ(mm_ps_set_addr(ps, id, &z, 9), 0);
	}
	for (uint32_t p = 100; p < 1000; p++) {
		int rc = mm_ps_get_addr(ps, idx(ps, p), &got);
		if (p % 2 == 0) {
			CHECK_EQ(rc, -ENOENT);
		} else {
			CHECK_EQ(rc, 0);
			CHECK_EQ(got.port, p);
		}
	}
	mm_ps_stats(ps, &st);
	CHECK_EQ(st.addresses, 1 + 450);
	mm_ps_destroy(ps);
}

static void
test_shed(void)
{
	mm_ps_t *ps = ps_new(1024);
	/* 20 peers, peer p last updated at time p. */
	for (uint32_t p = 1; p <= 20; p++)
		CHECK_EQ(ev(ps, p, 100 + p, MM_PS_CONNECT, MM_PS_OUT, 1, p), MM_PS_APPLIED);
	CHECK_EQ(mm_ps_shed(ps, 0, MM_PIDX_NONE, 5, 30), 5);
	for (uint32_t p = 1; p <= 20; p++)
		CHECK_EQ(mm_ps_live(ps, idx(ps, p)), p > 5);
	mm_ps_destroy(ps);
}

/* ---- queries ------------------------------------------------------------ */

static void
connect_both(mm_ps_t *ps, uint32_t x, uint32_t y, uint32_t *seq)
{
	CHECK_EQ(ev(ps, x, y, MM_PS_CONNECT, MM_PS_OUT, seq[x]++, 1), MM_PS_APPLIED);
	CHECK_EQ(ev(ps, y, x, MM_PS_CONNECT, MM_PS_IN, seq[y]++, 1), MM_PS_APPLIED);
}

static void
test_overlap_example(void)
{
	/* Seed §3.3: A has B, C, D; X's neighbours E, F, G; Y's B, C, H; Z's
	 * B, C, D. Overlap X 0, Y 2, Z 3: X first. */
	enum { A = 1, B, C, D, E, F, G, H, X, Y, Z };
	uint32_t seq[16];
	for (int i = 0; i < 16; i++)
		seq[i] = 1;
	mm_ps_t *ps = ps_new(1024);
	connect_both(ps, A, B, seq);
	connect_both(ps, A, C, seq);
	connect_both(ps, A, D, seq);
	connect_both(ps, X, E, seq);
	connect_both(ps, X, F, seq);
	connect_both(ps, X, G, seq);
	connect_both(ps, Y, B, seq);
	connect_both(ps, Y, C, seq);
	connect_both(ps, Y, H, seq);
	connect_both(ps, Z, B, seq);
	connect_both(ps, Z, C, seq);
	connect_both(ps, Z, D, seq);
	mm_psq_t *q = mm_psq_new();
	mm_pidx_t cur[32];
	unsigned nc = mm_ps_confirmed(ps, idx(ps, A), cur, 32);
	CHECK_EQ(nc, 3);
	CHECK_EQ(mm_ps_overlap(ps, q, idx(ps, X), cur, nc), 0);
	CHECK_EQ(mm_ps_overlap(ps, q, idx(ps, Y), cur, nc), 2);
	CHECK_EQ(mm_ps_overlap(ps, q, idx(ps, Z), cur, nc), 3);
	mm_pidx_t cands[4] = {idx(ps, Z), idx(ps, Y), idx(ps, X), idx(ps, B)};
	mm_pidx_t best[3];
	unsigned ov[3];
	/* B is already a neighbour: skipped. */
	CHECK_EQ(mm_ps_topk_least_overlap(ps, q, cands, 4, cur, nc, 3, best, ov), 3);
	CHECK_EQ(best[0], idx(ps, X));
	CHECK_EQ(best[1], idx(ps, Y));
	CHECK_EQ(best[2], idx(ps, Z));
	CHECK_EQ(ov[0], 0);
	CHECK_EQ(ov[2], 3);
	CHECK_EQ(mm_ps_topk_least_overlap(ps, q, cands, 4, cur, nc, 1, best, ov), 1);
	CHECK_EQ(best[0], idx(ps, X));
	mm_psq_free(q);
	mm_ps_destroy(ps);
}

/* Random graphs: path lengths against a plain BFS on an adjacency matrix,
 * components, bridges and articulation points against brute force (remove
 * each edge / node and count components). */
#define RN 40
static int adjm[RN + 1][RN + 1];

static int
count_components(int skip_u, int skip_v, int skip_node, int *live)
{
	int seen[RN + 1] = {0}, comps = 0;
	for (int r = 1; r <= RN; r++) {
		if (!live[r] || seen[r] || r == skip_node)
			continue;
		comps++;
		int st[RN + 1], sp = 0;
		st[sp++] = r;
		seen[r] = 1;
		while (sp) {
			int u = st[--sp];
			for (int v = 1; v <= RN; v++) {
				if (!adjm[u][v] || seen[v] || v == skip_node)
					continue;
				if ((u == skip_u && v == skip_v) || (u == skip_v && v == skip_u))
					continue;
				seen[v] = 1;
				st[sp++] = v;
			}
		}
	}
	return comps;
}

static int
bfs_dist(int s, int t)
{
	int d[RN + 1], qq[RN + 1], h = 0, tl = 0;
	for (int i = 0; i <= RN; i++)
		d[i] = -1;
	d[s] = 0;
	qq[tl++] = s;
	while (h < tl) {
		int u = qq[h++];
		for (int v = 1; v <= RN; v++)
			if (adjm[u][v] && d[v] < 0) {
				d[v] = d[u] + 1;
				qq[tl++] = v;
			}
	}
	return d[t];
}

static void
test_graph_queries_random(void)
{
	uint64_t r = 12345;
	unsigned tot_bridges = 0, tot_arts = 0, tot_comps = 0, tot_paths = 0, tot_alone = 0;
	mm_psq_t *q = mm_psq_new();
	for (int round = 0; round < 60; round++) {
		mm_ps_t *ps = ps_new(1024);
		memset(adjm, 0, sizeof(adjm));
		uint32_t seq[RN + 1];
		int live[RN + 1] = {0}, deg[RN + 1] = {0};
		for (int i = 0; i <= RN; i++)
			seq[i] = 1;
		int edges = 20 + round % 40;
		for (int k = 0; k < edges; k++) {
			r = r * 6364136223846793005ull + 1442695040888963407ull;
			int u = 1 + (int)((r >> 33) % RN), v = 1 + (int)((r >> 45) % RN);
			if (u == v || adjm[u][v] || deg[u] >= 12 || deg[v] >= 12)
				continue;
			adjm[u][v] = adjm[v][u] = 1;
			deg[u]++;
			deg[v]++;
			live[u] = live[v] = 1;
			connect_both(ps, (uint32_t)u, (uint32_t)v, seq);
		}
		/* a one-sided claim must not count as an edge */
		CHECK_EQ(ev(ps, 1, 1000, MM_PS_CONNECT, MM_PS_OUT, seq[1]++, 1) >= 0, 1);
		live[1] = 1;
		mm_ps_graph_t g;
		CHECK_EQ(mm_ps_analyse(ps, q, 1, &g), 0);
		int comps = count_components(0, 0, 0, live), nodes = 0, e = 0;
		int bridges = 0, arts = 0, alone = 0;
		for (int u = 1; u <= RN; u++) {
			nodes += live[u];
			alone += live[u] && deg[u] == 0; /* a component of one */
			for (int v = u + 1; v <= RN; v++)
				if (adjm[u][v]) {
					e++;
					bridges += count_components(u, v, 0, live) > comps;
				}
			/* u cuts the graph if the rest splits into more parts
			 * without it (an isolated u would only remove one). */
			if (live[u] && deg[u] > 0)
				arts += count_components(0, 0, u, live) > comps;
		}
		CHECK_EQ(g.nodes, nodes);
		CHECK_EQ(g.edges, e);
		CHECK_EQ(g.components, comps);
		CHECK_EQ(g.isolated, alone);
		tot_alone += alone;
		CHECK_EQ(g.bridges, bridges);
		CHECK_EQ(g.articulation, arts);
		tot_bridges += g.bridges;
		tot_arts += g.articulation;
		tot_comps += g.components;
		/* shortest paths */
		for (int k = 0; k < 30; k++) {
			r = r * 6364136223846793005ull + 1442695040888963407ull;
			int s = 1 + (int)((r >> 33) % RN), t = 1 + (int)((r >> 45) % RN);
			if (!live[s] || !live[t])
				continue;
			mm_pidx_t path[RN + 1];
			int len = mm_ps_path(ps, q, idx(ps, (uint32_t)s), idx(ps, (uint32_t)t),
			    path, RN + 1);
			int d = bfs_dist(s, t);
			if (d < 0) {
				CHECK_EQ(len, -ENOENT);
				continue;
			}
			CHECK_EQ(len, d + 1);
			tot_paths++;
			for (int i = 0; i + 1 < len; i++) /* every hop confirmed */
				CHECK_EQ(mm_ps_edge_state(ps, path[i], path[i + 1]),
				    MM_EDGE_CONFIRMED);
			if (len >= 2) {
				mm_pidx_t tiny[1];
				CHECK_EQ(mm_ps_path(ps, q, path[0], path[len - 1], tiny, 1),
				    len > 1 ? -ENOSPC : 1);
			}
		}
		mm_ps_destroy(ps);
	}
	mm_psq_free(q);
	/* The comparison must have had something to compare. */
	CHECK_GT(tot_bridges, 0);
	CHECK_GT(tot_arts, 0);
	CHECK_GT(tot_paths, 100);
	CHECK_GT(tot_alone, 0);
	fprintf(stderr, "   60 graphs: %u components (%u of one record), %u bridges, "
	    "%u articulation points, %u paths, all equal to brute force\n", tot_comps,
	    tot_alone, tot_bridges, tot_arts, tot_paths);
}

/* The id index grows with the ids it holds: a store allowed 65,536 peers
 * that knows 1,000 holds no table sized for 65,536 (that alone would be
 * 327,680 bytes), every id stays findable through each doubling, and
 * removals from the grown table keep the others findable. */
static void
test_index_growth(void)
{
	mm_ps_t *ps = ps_new(65536);
	mm_ps_stats_t st;
	uint32_t n = 0;
	for (; n < 1000; n += 2)
		CHECK_GE(ev(ps, n, n + 1, MM_PS_CONNECT, MM_PS_OUT, 1, 1), 0);
	mm_ps_stats(ps, &st);
	CHECK_EQ(st.ids, 1000);
	/* 4 chunks of 256 x 104 bytes, a two-page table (2,044 slots: 1,000
	 * ids are past 0.8 of one page's 1,020), and what is sized for
	 * max_peers: the chunk and overflow pointers (256 x 16 + 1,024 x 8
	 * bytes) and the struct */
	size_t pg = (size_t)sysconf(_SC_PAGESIZE); /* one 16 KiB page holds 4,092 */
	CHECK_LT(st.bytes, 4 * 256 * 104 + (pg > 4096 ? pg : 2 * 4096) + 12288 + 2048);
	for (; n < 30000; n += 2)
		CHECK_GE(ev(ps, n, n + 1, MM_PS_CONNECT, MM_PS_OUT, 1, 1), 0);
	for (uint32_t i = 0; i < 30000; i++)
		CHECK_EQ(idx(ps, i), i);
	mm_ps_stats(ps, &st);
	CHECK_EQ(st.ids, 30000);
	/* 118 chunks and a 256 KiB table (65,532 slots; the tables it
	 * replaced hold no pages) */
	CHECK_LT(st.bytes, 118 * 256 * 104 + 64 * 4096 + 12288 + 2048);
	/* Each origin's claim is a phantom (the other end never confirms):
	 * past confirm_timeout_s the claims go, and the odd ids (nothing
	 * but referenced) are freed from the grown table; the origins keep
	 * their records until ttl_s. */
	mm_ps_gc_t gc;
	mm_ps_expire(ps, 0, 1 + 61, &gc);
	CHECK_EQ(gc.ids, 15000);
	for (uint32_t i = 0; i < 30000; i++)
		CHECK_EQ(idx(ps, i), i % 2 ? MM_PIDX_NONE : i);
	/* The batched lookup answers as one lookup at a time: known and
	 * freed ids, 36-byte entries as in ihave, batches of 16 and a tail. */
	enum { NQ = 1000, ENT = 36 };
	static uint8_t ents[NQ * ENT];
	mm_pidx_t got[NQ];
	for (uint32_t i = 0; i < NQ; i++) {
		mkid(ents + (size_t)i * ENT, i * 29 % 30011); /* some past 30,000 */
		memset(ents + (size_t)i * ENT + 32, 0xee, 4);
	}
	for (unsigned q = 0; q <= NQ; q = q < 40 ? q + 1 : q * 5) {
		memset(got, 0xab, sizeof(got));
		mm_ps_lookup_many(ps, ents, ENT, q, got);
		unsigned known = 0;
		for (unsigned i = 0; i < q; i++) {
			CHECK_EQ(got[i], mm_ps_lookup(ps, ents + (size_t)i * ENT));
			known += got[i] != MM_PIDX_NONE;
		}
		if (q >= 40)
			CHECK(known > 0 && known < q); /* both kinds were asked */
		if (q < NQ)
			CHECK_EQ(got[q], (mm_pidx_t)0xabababab); /* nothing past n */
	}
	mm_ps_destroy(ps);
}

int
main(void)
{
	RUN(test_edge_states);
	RUN(test_overflow_and_limit);
	RUN(test_phantoms_and_ttl);
	RUN(test_forget_tombstone);
	RUN(test_index_reuse);
	RUN(test_index_growth);
	RUN(test_set_neighbours_and_addr);
	RUN(test_shed);
	RUN(test_overlap_example);
	RUN(test_graph_queries_random);
	fprintf(stderr, "test_peerstore: ok\n");
	return 0;
}
