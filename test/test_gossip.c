/* Gossip engine: own events are signed, applied and deduplicated; received
 * events go dedup -> time -> proof of work -> staleness -> signature -> map,
 * and only new, valid, consistent ones are forwarded with ttl - 1. Attacks:
 * a tampered copy raced ahead of the genuine event does not suppress it, a
 * replay costs no verify, a lie is not forwarded. A line of five nodes
 * converges on the same map. */
#include <string.h>

#include "gossip.h"
#include "test.h"

#define DIFF 8
#define NOW 1763700000000ull /* unix ms */

struct node {
	mm_identity_t id;
	mm_ps_t *ps;
	mm_dedup_t *dd;
	mm_gossip_t *g;
};

static void
node_new(struct node *n, unsigned difficulty, uint8_t ttl)
{
	CHECK_EQ(mm_id_generate(&n->id, difficulty, NULL), 0);
	CHECK_EQ(mm_ps_create(NULL, &n->ps), 0);
	CHECK_EQ(mm_dedup_create(NULL, &n->dd), 0);
	mm_gossip_config_t c;
	mm_gossip_config_default(&c);
	c.difficulty = DIFF;
	c.ttl = ttl;
	CHECK_EQ(mm_gossip_create(&c, &n->id, n->ps, n->dd, &n->g), 0);
}

static void
node_free(struct node *n)
{
	mm_gossip_destroy(n->g);
	mm_dedup_destroy(n->dd);
	mm_ps_destroy(n->ps);
	mm_id_free(&n->id);
}

static mm_gossip_stats_t
stats(struct node *n)
{
	mm_gossip_stats_t s;
	mm_gossip_stats(n->g, &s);
	return s;
}

/* An event signed by id's key, whatever its content: what a liar sends. */
static mm_w_event_t
forge(const mm_identity_t *id, const uint8_t *peer, int kind, uint32_t seq,
    uint64_t ts)
{
	mm_w_event_t e = {.kind = (uint8_t)kind, .dir = MM_PS_OUT, .seq = seq,
	    .ts = ts, .ttl = 4, .pow = id->nonce};
	memcpy(e.pub, id->pub, 32);
	memcpy(e.peer, peer, 32);
	uint8_t b[MM_WIRE_EVENT_SIGNED_LEN];
	mm_wire_event_signed_bytes(&e, b);
	CHECK_EQ(mm_id_sign(id, b, sizeof(b), e.sig), 0);
	return e;
}

static enum mm_ps_edge
edge(struct node *n, const uint8_t *x, const uint8_t *y)
{
	return mm_ps_edge_state(n->ps, mm_ps_lookup(n->ps, x), mm_ps_lookup(n->ps, y));
}

static void
test_basic_flow(void)
{
	struct node a, b, c;
	node_new(&a, DIFF, 3);
	node_new(&b, DIFF, 3);
	node_new(&c, DIFF, 3);
	mm_w_event_t e, f, f2;
	CHECK_EQ(mm_gossip_local(a.g, MM_PS_CONNECT, b.id.id, MM_PS_OUT, NOW, 100, &e), 0);
	CHECK_EQ(e.ttl, 3);
	CHECK_EQ(edge(&a, a.id.id, b.id.id), MM_EDGE_PHANTOM_A); /* in a's own map */
	/* b: new, valid -> applied and forwarded with ttl 2 */
	CHECK_EQ(mm_gossip_receive(b.g, &e, NOW, 100, &f), MM_G_FORWARD);
	CHECK_EQ(f.ttl, 2);
	CHECK_EQ(edge(&b, a.id.id, b.id.id), MM_EDGE_PHANTOM_A);
	/* the same event again: duplicate, no second verify */
	for (int i = 0; i < 100; i++)
		CHECK_EQ(mm_gossip_receive(b.g, &e, NOW, 100, &f2), MM_G_DUP);
	CHECK_EQ(stats(&b).verified, 1);
	/* c gets the forwarded copy (ttl 2) and passes it on with ttl 1 */
	CHECK_EQ(mm_gossip_receive(c.g, &f, NOW, 100, &f2), MM_G_FORWARD);
	CHECK_EQ(f2.ttl, 1);
	/* a's own event coming back is a duplicate for a */
	CHECK_EQ(mm_gossip_receive(a.g, &e, NOW, 100, &f2), MM_G_DUP);
	/* b confirms: the edge is confirmed in c's map once both reports land */
	mm_w_event_t e2;
	CHECK_EQ(mm_gossip_local(b.g, MM_PS_CONNECT, a.id.id, MM_PS_IN, NOW, 100, &e2), 0);
	CHECK_EQ(mm_gossip_receive(c.g, &e2, NOW, 100, &f2), MM_G_FORWARD);
	CHECK_EQ(edge(&c, a.id.id, b.id.id), MM_EDGE_CONFIRMED);
	/* sequence numbers of own events always grow, even within one ms */
	mm_w_event_t e3;
	CHECK_EQ(mm_gossip_local(a.g, MM_PS_DISCONNECT, b.id.id, MM_PS_OUT, NOW, 101, &e3), 0);
	CHECK_GT(e3.seq, e.seq);
	node_free(&a);
	node_free(&b);
	node_free(&c);
}

static void
test_attacks(void)
{
	struct node a, b, m;
	node_new(&a, DIFF, 4);
	node_new(&b, DIFF, 4);
	node_new(&m, 0, 4); /* m's own key has no proof of work */
	while (mm_pow_ok(m.id.pub, m.id.nonce, DIFF))
		m.id.nonce++;
	mm_w_event_t e, f, bad;
	uint8_t x[32];
	memset(x, 0x77, 32);
	CHECK_EQ(mm_gossip_local(a.g, MM_PS_CONNECT, x, MM_PS_OUT, NOW, 100, &e), 0);

	/* A tampered copy with the genuine signature, raced ahead: refused,
	 * and the genuine event is still accepted after it. */
	bad = e;
	bad.peer[0] ^= 1;
	CHECK_EQ(mm_gossip_receive(b.g, &bad, NOW, 100, &f), MM_G_BAD_SIG);
	CHECK_EQ(mm_gossip_receive(b.g, &e, NOW, 100, &f), MM_G_FORWARD);

	/* An older event that b never saw, arriving after a newer one: stale,
	 * dropped without spending a verify. (A copy with another ttl is the
	 * same message: ttl is not in the message id, so it is a duplicate.) */
	mm_w_event_t older, newer, f2;
	CHECK_EQ(mm_gossip_local(a.g, MM_PS_CONNECT, x, MM_PS_IN, NOW + 1000, 101,
	    &older), 0);
	CHECK_EQ(mm_gossip_local(a.g, MM_PS_DISCONNECT, x, MM_PS_OUT, NOW + 2000, 101,
	    &newer), 0);
	CHECK_EQ(mm_gossip_receive(b.g, &newer, NOW + 2000, 101, &f), MM_G_FORWARD);
	uint64_t v = stats(&b).verified;
	CHECK_EQ(mm_gossip_receive(b.g, &older, NOW + 3000, 102, &f2), MM_G_STALE);
	CHECK_EQ(stats(&b).verified, v);
	CHECK_EQ(edge(&b, a.id.id, x), MM_EDGE_NONE); /* the disconnect holds */
	mm_w_event_t lower = newer;
	lower.ttl = 0;
	CHECK_EQ(mm_gossip_receive(b.g, &lower, NOW + 3000, 102, &f2), MM_G_DUP);

	/* Short proof of work: refused before any verify. */
	mm_w_event_t me;
	CHECK_EQ(mm_gossip_local(m.g, MM_PS_CONNECT, x, MM_PS_OUT, NOW, 100, &me), 0);
	v = stats(&b).verified;
	CHECK_EQ(mm_gossip_receive(b.g, &me, NOW, 100, &f), MM_G_BAD_POW);
	CHECK_EQ(stats(&b).verified, v);

	/* A timestamp an hour in the future. */
	mm_w_event_t fut;
	CHECK_EQ(mm_gossip_local(a.g, MM_PS_CONNECT, x, MM_PS_OUT, NOW + 3600000, 102,
	    &fut), 0);
	CHECK_EQ(mm_gossip_receive(b.g, &fut, NOW, 102, &f), MM_G_BAD_TIME);

	/* Lies: a self-edge, and more neighbours than allowed (16). Signed
	 * properly by a, refused by b's map, never forwarded. (a's own gossip
	 * engine cannot produce them: its map refuses them first.) */
	CHECK(mm_gossip_local(a.g, MM_PS_CONNECT, a.id.id, MM_PS_OUT, NOW + 4000, 103,
	    &f) < 0);
	uint32_t seq = newer.seq + 100;
	mm_w_event_t self_edge = forge(&a.id, a.id.id, MM_PS_CONNECT, seq++, NOW + 4000);
	CHECK_EQ(mm_gossip_receive(b.g, &self_edge, NOW + 4000, 103, &f), MM_G_LIE);
	int lies = 0;
	for (int i = 0; i < 20; i++) {
		uint8_t p[32];
		memset(p, i + 1, 32);
		mm_w_event_t ev = forge(&a.id, p, MM_PS_CONNECT, seq++, NOW + 5000);
		int r = mm_gossip_receive(b.g, &ev, NOW + 5000, 104, &f);
		lies += r == MM_G_LIE;
		CHECK(r == MM_G_FORWARD || r == MM_G_LIE);
	}
	CHECK_EQ(lies, 20 - 16);
	CHECK_GE(mm_ps_evidence(b.ps, mm_ps_lookup(b.ps, a.id.id)), 5);
	mm_gossip_stats_t s = stats(&b);
	fprintf(stderr, "   b: %llu received, %llu verified, %llu dup, %llu stale, %llu "
	    "bad pow, %llu bad sig, %llu bad time, %llu lies\n",
	    (unsigned long long)s.received, (unsigned long long)s.verified,
	    (unsigned long long)s.dup, (unsigned long long)s.stale,
	    (unsigned long long)s.bad_pow, (unsigned long long)s.bad_sig,
	    (unsigned long long)s.bad_time, (unsigned long long)s.lies);
	node_free(&a);
	node_free(&b);
	node_free(&m);
}

/* A line n0 - n1 - n2 - n3 - n4: every node reports its links; events
 * travel hop by hop (forwarded to all links but the sender), ttl 6 covers
 * the line, and every map ends up with the four confirmed edges. With ttl 2,
 * n0's events do not reach n4. */
static void
run_line(uint8_t ttl, int *edges_at_end)
{
	enum { N = 5 };
	struct node n[N];
	for (int i = 0; i < N; i++)
		node_new(&n[i], DIFF, ttl);
	/* queue of (to, from, event) */
	static struct qent {
		int to, from;
		mm_w_event_t e;
	} q[10000];
	int qh = 0, qt = 0;
	for (int i = 0; i + 1 < N; i++) {
		mm_w_event_t e;
		CHECK_EQ(mm_gossip_local(n[i].g, MM_PS_CONNECT, n[i + 1].id.id, MM_PS_OUT,
		    NOW, 10, &e), 0);
		q[qt++] = (struct qent){i + 1, i, e};
		if (i > 0)
			q[qt++] = (struct qent){i - 1, i, e};
		CHECK_EQ(mm_gossip_local(n[i + 1].g, MM_PS_CONNECT, n[i].id.id, MM_PS_IN,
		    NOW, 10, &e), 0);
		q[qt++] = (struct qent){i, i + 1, e};
		if (i + 2 < N)
			q[qt++] = (struct qent){i + 2, i + 1, e};
	}
	while (qh < qt) {
		int to = q[qh].to, from = q[qh].from;
		mm_w_event_t f;
		int r = mm_gossip_receive(n[to].g, &q[qh].e, NOW, 10, &f);
		qh++;
		CHECK(r >= 0);
		if (r != MM_G_FORWARD)
			continue;
		for (int k = to - 1; k <= to + 1; k += 2) /* line neighbours */
			if (k >= 0 && k < N && k != from) {
				CHECK_LT(qt, 10000);
				q[qt++] = (struct qent){k, to, f};
			}
	}
	int confirmed_at_n4 = 0;
	for (int i = 0; i + 1 < N; i++)
		confirmed_at_n4 += edge(&n[N - 1], n[i].id.id, n[i + 1].id.id) ==
		    MM_EDGE_CONFIRMED;
	*edges_at_end = confirmed_at_n4;
	for (int i = 0; i < N; i++)
		node_free(&n[i]);
}

static void
test_line(void)
{
	int e;
	run_line(6, &e);
	CHECK_EQ(e, 4); /* n4 knows the whole line */
	run_line(2, &e);
	CHECK_LT(e, 4); /* ttl bounds how far the map reaches */
	CHECK_GE(e, 2);
}

static void
test_out_of_order(void)
{
	/* a links to x, then to y: two events, the second carrying both links.
	 * r gets them newest first (another path was faster): the newer one
	 * alone gives it a's whole list, and the older one is stale. With
	 * deltas only, the link to x would have been lost. */
	struct node a, r, x, y;
	node_new(&a, DIFF, 3);
	node_new(&r, DIFF, 3);
	node_new(&x, DIFF, 3);
	node_new(&y, DIFF, 3);
	mm_w_event_t e1, e2, fwd;
	CHECK_EQ(mm_gossip_local(a.g, MM_PS_CONNECT, x.id.id, MM_PS_OUT, NOW, 1, &e1), 0);
	CHECK_EQ(mm_gossip_local(a.g, MM_PS_CONNECT, y.id.id, MM_PS_IN, NOW, 1, &e2), 0);
	CHECK(e1.has_nb && e1.nnb == 1);
	CHECK(e2.has_nb && e2.nnb == 2);
	CHECK_EQ(mm_gossip_receive(r.g, &e2, NOW, 1, &fwd), MM_G_FORWARD);
	CHECK_EQ(mm_gossip_receive(r.g, &e1, NOW, 1, &fwd), MM_G_STALE);
	mm_pidx_t ai = mm_ps_lookup(r.ps, a.id.id);
	CHECK_EQ(mm_ps_claim_dir(r.ps, ai, mm_ps_lookup(r.ps, x.id.id)), MM_PS_OUT);
	CHECK_EQ(mm_ps_claim_dir(r.ps, ai, mm_ps_lookup(r.ps, y.id.id)), MM_PS_IN);
	/* a disconnect carries the list without the link */
	mm_w_event_t e3;
	CHECK_EQ(mm_gossip_local(a.g, MM_PS_DISCONNECT, x.id.id, MM_PS_OUT, NOW, 1, &e3), 0);
	CHECK_EQ(e3.nnb, 1);
	CHECK_EQ(mm_gossip_receive(r.g, &e3, NOW, 1, &fwd), MM_G_FORWARD);
	CHECK_EQ(mm_ps_claim_dir(r.ps, ai, mm_ps_lookup(r.ps, x.id.id)), -1);
	CHECK_EQ(mm_ps_claim_dir(r.ps, ai, mm_ps_lookup(r.ps, y.id.id)), MM_PS_IN);
	/* a list that contradicts its own delta is a lie, and changes nothing */
	mm_w_event_t bad = forge(&a.id, x.id.id, MM_PS_CONNECT, e3.seq + 10, NOW);
	bad.has_nb = 1;
	bad.nnb = 1;
	memcpy(bad.nb[0], y.id.id, 32); /* "connect x", list {y} */
	uint8_t b[MM_WIRE_EVENT_SIGNED_LEN];
	mm_wire_event_signed_bytes(&bad, b);
	CHECK_EQ(mm_id_sign(&a.id, b, sizeof(b), bad.sig), 0);
	CHECK_EQ(mm_gossip_receive(r.g, &bad, NOW, 1, &fwd), MM_G_LIE);
	CHECK_EQ(mm_ps_claim_dir(r.ps, ai, mm_ps_lookup(r.ps, x.id.id)), -1);
	/* the list is signed: changing it after signing breaks the signature */
	mm_w_event_t e4;
	CHECK_EQ(mm_gossip_local(a.g, MM_PS_CONNECT, x.id.id, MM_PS_OUT, NOW, 1, &e4), 0);
	mm_w_event_t t4 = e4;
	t4.nbd ^= 1;
	CHECK_EQ(mm_gossip_receive(r.g, &t4, NOW, 1, &fwd), MM_G_BAD_SIG);
	/* ... and that forged copy, raced ahead, does not get the genuine one
	 * dropped as a duplicate (the dedup key leaves the list out, so keys
	 * are recorded only after the verify) */
	CHECK_EQ(mm_gossip_receive(r.g, &e4, NOW, 1, &fwd), MM_G_FORWARD);
	CHECK_EQ(mm_gossip_receive(r.g, &e4, NOW, 1, &fwd), MM_G_DUP);
	CHECK_EQ(mm_ps_claim_dir(r.ps, ai, mm_ps_lookup(r.ps, x.id.id)), MM_PS_OUT);
	node_free(&a);
	node_free(&r);
	node_free(&x);
	node_free(&y);
}

/* Changes held and signed as one (mm_gossip_local with out NULL, then
 * mm_gossip_seal): our map has every change at once, one signature covers
 * the burst, the sealed event carries the whole list under a sequence
 * number above every held change's, a receiver gets that list, and the
 * event coming back is a duplicate (or, once the ring forgot it, stale). */
static void
test_seal(void)
{
	struct node a, r, x, y, z;
	node_new(&a, DIFF, 3);
	node_new(&r, DIFF, 3);
	node_new(&x, DIFF, 3);
	node_new(&y, DIFF, 3);
	node_new(&z, DIFF, 3);
	mm_w_event_t e, fwd;
	CHECK_EQ(mm_gossip_seal(a.g, NOW, 1, &e), -ENOENT); /* nothing held */
	CHECK_EQ(mm_gossip_local(a.g, MM_PS_CONNECT, x.id.id, MM_PS_OUT, NOW, 1, &e), 0);
	uint32_t first = e.seq;
	CHECK_EQ(mm_gossip_receive(r.g, &e, NOW, 1, &fwd), MM_G_FORWARD);
	CHECK_EQ(mm_gossip_seal(a.g, NOW, 1, &e), -ENOENT); /* signed already */
	CHECK_EQ(stats(&a).local, 1);
	/* a burst: y in, z out, x gone; none signed */
	CHECK_EQ(mm_gossip_local(a.g, MM_PS_CONNECT, y.id.id, MM_PS_IN, NOW, 1, NULL), 0);
	CHECK_EQ(mm_gossip_local(a.g, MM_PS_CONNECT, z.id.id, MM_PS_OUT, NOW, 1, NULL), 0);
	CHECK_EQ(mm_gossip_local(a.g, MM_PS_DISCONNECT, x.id.id, MM_PS_OUT, NOW, 1, NULL), 0);
	CHECK_EQ(stats(&a).local, 1);
	mm_pidx_t aa = mm_ps_lookup(a.ps, a.id.id);
	CHECK_EQ(mm_ps_claim_dir(a.ps, aa, mm_ps_lookup(a.ps, y.id.id)), MM_PS_IN);
	CHECK_EQ(mm_ps_claim_dir(a.ps, aa, mm_ps_lookup(a.ps, z.id.id)), MM_PS_OUT);
	CHECK_EQ(mm_ps_claim_dir(a.ps, aa, mm_ps_lookup(a.ps, x.id.id)), -1);
	mm_pidx_t ra = mm_ps_lookup(r.ps, a.id.id);
	CHECK_EQ(mm_ps_claim_dir(r.ps, ra, mm_ps_lookup(r.ps, x.id.id)), MM_PS_OUT);
	/* one event for the three: the last change and the whole list */
	mm_w_event_t s;
	CHECK_EQ(mm_gossip_seal(a.g, NOW, 1, &s), 0);
	CHECK_EQ(stats(&a).local, 2);
	CHECK(s.seq > first + 3);
	CHECK_EQ(s.kind, MM_PS_DISCONNECT);
	CHECK(memcmp(s.peer, x.id.id, 32) == 0);
	CHECK(s.has_nb && s.nnb == 2);
	CHECK_EQ(mm_gossip_seal(a.g, NOW, 1, &e), -ENOENT);
	CHECK_EQ(mm_gossip_receive(r.g, &s, NOW, 1, &fwd), MM_G_FORWARD);
	CHECK_EQ(mm_ps_claim_dir(r.ps, ra, mm_ps_lookup(r.ps, y.id.id)), MM_PS_IN);
	CHECK_EQ(mm_ps_claim_dir(r.ps, ra, mm_ps_lookup(r.ps, z.id.id)), MM_PS_OUT);
	CHECK_EQ(mm_ps_claim_dir(r.ps, ra, mm_ps_lookup(r.ps, x.id.id)), -1);
	/* back at a: a duplicate; and with the ring forgotten (a fresh dedup
	 * ring on the same map), stale: our record carries the sealed seq */
	CHECK_EQ(mm_gossip_receive(a.g, &s, NOW, 1, &fwd), MM_G_DUP);
	mm_gossip_t *g2;
	mm_dedup_t *d2;
	mm_gossip_config_t c;
	mm_gossip_config_default(&c);
	c.difficulty = DIFF;
	CHECK_EQ(mm_dedup_create(NULL, &d2), 0);
	CHECK_EQ(mm_gossip_create(&c, &a.id, a.ps, d2, &g2), 0);
	CHECK_EQ(mm_gossip_receive(g2, &s, NOW, 1, &fwd), MM_G_STALE);
	mm_gossip_destroy(g2);
	mm_dedup_destroy(d2);
	node_free(&a);
	node_free(&r);
	node_free(&x);
	node_free(&y);
	node_free(&z);
}

/* A Sybil flood of genuine identities: once the map is at its bound, their
 * events are dropped as MM_G_FULL (not misbehaviour: the relays that pass
 * them on are not at fault), the map never grows past the bound, and an
 * event about peers already known still applies. */
static void
test_map_full(void)
{
	struct node r, a, b;
	node_new(&a, DIFF, 3);
	node_new(&b, DIFF, 3);
	CHECK_EQ(mm_id_generate(&r.id, DIFF, NULL), 0);
	mm_ps_config_t pc;
	mm_ps_config_default(&pc);
	pc.max_peers = 64;
	CHECK_EQ(mm_ps_create(&pc, &r.ps), 0);
	CHECK_EQ(mm_dedup_create(NULL, &r.dd), 0);
	mm_gossip_config_t c;
	mm_gossip_config_default(&c);
	c.difficulty = DIFF;
	CHECK_EQ(mm_gossip_create(&c, &r.id, r.ps, r.dd, &r.g), 0);
	mm_w_event_t e, fwd;
	/* a and b first: known before the flood */
	CHECK_EQ(mm_gossip_local(a.g, MM_PS_CONNECT, b.id.id, MM_PS_OUT, NOW, 1, &e), 0);
	CHECK_EQ(mm_gossip_receive(r.g, &e, NOW, 1, &fwd), MM_G_FORWARD);
	unsigned full = 0;
	for (int i = 0; i < 100; i++) {
		mm_identity_t s, t;
		CHECK_EQ(mm_id_generate(&s, DIFF, NULL), 0);
		CHECK_EQ(mm_id_generate(&t, DIFF, NULL), 0);
		mm_w_event_t se = forge(&s, t.id, MM_PS_CONNECT, 1, NOW);
		int v = mm_gossip_receive(r.g, &se, NOW, 1, &fwd);
		CHECK(v == MM_G_FORWARD || v == MM_G_FULL);
		full += v == MM_G_FULL;
		mm_ps_stats_t st;
		mm_ps_stats(r.ps, &st);
		CHECK(st.records <= 64);
		mm_id_free(&s);
		mm_id_free(&t);
	}
	CHECK_GT(full, 60); /* 200 new ids offered, room for 62 */
	CHECK_EQ(stats(&r).full, full);
	/* a's next event names only known ids: still applied */
	CHECK_EQ(mm_gossip_local(a.g, MM_PS_DISCONNECT, b.id.id, MM_PS_OUT, NOW, 1, &e), 0);
	CHECK_EQ(mm_gossip_receive(r.g, &e, NOW, 1, &fwd), MM_G_FORWARD);
	CHECK_EQ(mm_ps_claim_dir(r.ps, mm_ps_lookup(r.ps, a.id.id), mm_ps_lookup(r.ps, b.id.id)), -1);
	node_free(&r);
	node_free(&a);
	node_free(&b);
}

/* The id of an event's origin (what a caller of mm_gossip_preverify has) */
static const uint8_t *
oid(const mm_w_event_t *e)
{
	static uint8_t id[32];
	mm_id_of(e->pub, id);
	return id;
}

/* The verify done ahead, on a connection's worker: mm_gossip_preverify
 * answers -1 for what mm_gossip_receive would refuse before its verify
 * (short proof of work, a future timestamp, a stale seq), else the
 * signature's verdict; mm_gossip_receive_sig takes that verdict instead
 * of verifying again, and refuses a bad one as a bad signature. */
static void
test_preverify(void)
{
	struct node a, b, m;
	node_new(&a, DIFF, 4);
	node_new(&b, DIFF, 4);
	node_new(&m, 0, 4);
	while (mm_pow_ok(m.id.pub, m.id.nonce, DIFF))
		m.id.nonce++;
	uint8_t x[32];
	memset(x, 0x55, 32);
	mm_w_event_t e1, e2, e3, bad, f;
	CHECK_EQ(mm_gossip_local(a.g, MM_PS_CONNECT, x, MM_PS_OUT, NOW, 100, &e1), 0);
	CHECK_EQ(mm_gossip_local(a.g, MM_PS_DISCONNECT, x, MM_PS_OUT, NOW + 1000, 101,
	    &e2), 0);
	bad = e2;
	bad.peer[0] ^= 1; /* the genuine signature over other bytes */
	int hit;
	CHECK_EQ(mm_gossip_preverify(b.g, &e1, oid(&e1), NOW, &hit), 1);
	CHECK_EQ(hit, 0);
	CHECK_EQ(mm_gossip_preverify(b.g, &bad, oid(&bad), NOW + 1000, &hit), 0);
	CHECK_EQ(mm_gossip_preverify(b.g, &e2, oid(&e2), NOW + 1000, &hit), 1);
	/* with the memo: a second copy takes the first's verdict; the
	 * tampered copy (same dedup key, other bytes) is still verified */
	CHECK_EQ(mm_gossip_preverify_memo(b.g), 0);
	CHECK_EQ(mm_gossip_preverify(b.g, &e2, oid(&e2), NOW + 1000, &hit), 1);
	CHECK_EQ(hit, 0);
	CHECK_EQ(mm_gossip_preverify(b.g, &e2, oid(&e2), NOW + 1000, &hit), 1);
	CHECK_EQ(hit, 1);
	mm_w_event_t e2b = e2;
	e2b.ttl = 1; /* not signed: the same event */
	CHECK_EQ(mm_gossip_preverify(b.g, &e2b, oid(&e2b), NOW + 1000, &hit), 1);
	CHECK_EQ(hit, 1);
	CHECK_EQ(mm_gossip_preverify(b.g, &bad, oid(&bad), NOW + 1000, &hit), 0);
	CHECK_EQ(hit, 0);
	CHECK_EQ(mm_gossip_preverify(b.g, &bad, oid(&bad), NOW + 1000, &hit), 0);
	CHECK_EQ(hit, 0);

	/* the verdicts given: no verify in the engine, the same outcomes */
	uint64_t v = stats(&b).verified;
	CHECK_EQ(mm_gossip_receive_sig(b.g, &bad, NOW + 1000, 101, 0, &f), MM_G_BAD_SIG);
	CHECK_EQ(mm_gossip_receive_sig(b.g, &e2, NOW + 1000, 101, 1, &f), MM_G_FORWARD);
	CHECK_EQ(stats(&b).verified, v);
	CHECK_EQ(stats(&b).bad_sig, 1);
	CHECK_EQ(edge(&b, a.id.id, x), MM_EDGE_NONE); /* e2 is a disconnect */
	/* e1 is older than what b's map holds now: stale, nothing spent */
	CHECK_EQ(mm_gossip_preverify(b.g, &e1, oid(&e1), NOW + 1000, &hit), -1);
	CHECK_EQ(mm_gossip_receive_sig(b.g, &e1, NOW + 1000, 101, 1, &f), MM_G_STALE);
	/* unknown (-1): the engine verifies, as mm_gossip_receive */
	CHECK_EQ(mm_gossip_local(a.g, MM_PS_CONNECT, x, MM_PS_IN, NOW + 2000, 102, &e3), 0);
	CHECK_EQ(mm_gossip_receive_sig(b.g, &e3, NOW + 2000, 102, -1, &f), MM_G_FORWARD);
	CHECK_EQ(stats(&b).verified, v + 1);
	CHECK_EQ(edge(&b, a.id.id, x), MM_EDGE_PHANTOM_A);

	/* refused before the verify: -1 */
	mm_w_event_t me, fut;
	CHECK_EQ(mm_gossip_local(m.g, MM_PS_CONNECT, x, MM_PS_OUT, NOW, 100, &me), 0);
	CHECK_EQ(mm_gossip_preverify(b.g, &me, oid(&me), NOW, &hit), -1);
	CHECK_EQ(mm_gossip_local(a.g, MM_PS_CONNECT, x, MM_PS_OUT, NOW + 3600000, 103,
	    &fut), 0);
	CHECK_EQ(mm_gossip_preverify(b.g, &fut, oid(&fut), NOW + 2000, &hit), -1);
	CHECK_EQ(mm_gossip_receive_sig(b.g, &fut, NOW + 2000, 103, 1, &f), MM_G_BAD_TIME);
	node_free(&a);
	node_free(&b);
	node_free(&m);
}

int
main(void)
{
	RUN(test_basic_flow);
	RUN(test_attacks);
	RUN(test_preverify);
	RUN(test_line);
	RUN(test_out_of_order);
	RUN(test_seal);
	RUN(test_map_full);
	fprintf(stderr, "test_gossip: ok\n");
	return 0;
}
