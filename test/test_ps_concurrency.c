/* PeerStore under concurrency: two shard writers (each owns the origins of
 * its shard) apply random events and run expiry, while two readers look up
 * ids, copy neighbour lists and run paths and whole-map analyses without
 * locks. Readers check what a torn read would break: no duplicate or self
 * entries, no list longer than the maximum, indices within the span. Run
 * under TSan in CI. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "peerstore.h"
#include "psquery.h"
#include "test.h"

#define NIDS 3000
#define EVENTS_PER_WRITER 150000

static mm_ps_t *ps;
static uint8_t ids[NIDS][32];
static atomic_int writers_done;
static atomic_uint_fast64_t reads, paths;

struct writer {
	unsigned shard;
	uint32_t *mine;  /* ids whose shard is ours */
	unsigned nmine;
	uint32_t seq[NIDS];
	uint64_t rng;
};

static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void *
writer_main(void *p)
{
	struct writer *w = p;
	uint32_t now = 1;
	for (unsigned k = 0; k < EVENTS_PER_WRITER; k++) {
		uint32_t o = w->mine[rnd(&w->rng) % w->nmine];
		uint32_t t = (uint32_t)(rnd(&w->rng) % NIDS);
		mm_ps_event_t e = {.origin = ids[o], .peer = ids[t],
		    .kind = rnd(&w->rng) % 3 ? MM_PS_CONNECT : MM_PS_DISCONNECT,
		    .dir = (uint8_t)(rnd(&w->rng) % 2), .seq = ++w->seq[o],
		    .now = now};
		int rc = mm_ps_apply(ps, &e);
		CHECK(rc >= 0 || rc == MM_PS_EV_SELF || rc == MM_PS_EV_TOO_MANY ||
		    rc == MM_PS_EV_CONFLICT);
		if (k % 5000 == 0) {
			now += 7;
			mm_ps_gc_t gc;
			mm_ps_expire(ps, w->shard, now, &gc);
		}
	}
	atomic_fetch_add(&writers_done, 1);
	return NULL;
}

static void *
reader_main(void *p)
{
	uint64_t r = (uint64_t)(uintptr_t)p * 7919 + 1;
	mm_psq_t *q = mm_psq_new();
	mm_pidx_t nb[MM_PS_MAX_NB], path[NIDS];
	unsigned k = 0;
	while (atomic_load(&writers_done) < 2) {
		mm_pidx_t i = mm_ps_lookup(ps, ids[rnd(&r) % NIDS]);
		if (i == MM_PIDX_NONE)
			continue;
		unsigned n = mm_ps_neighbours(ps, i, nb, NULL, MM_PS_MAX_NB);
		/* After the list: an index is published only after the span
		 * has grown past it, and the span never shrinks. */
		uint32_t span = mm_ps_span(ps);
		CHECK_LE(n, 16);
		for (unsigned a = 0; a < n; a++) {
			CHECK_LT(nb[a], span);
			CHECK_NE(nb[a], i);
			for (unsigned b = a + 1; b < n; b++)
				CHECK_NE(nb[a], nb[b]);
		}
		atomic_fetch_add_explicit(&reads, 1, memory_order_relaxed);
		mm_pidx_t j = mm_ps_lookup(ps, ids[rnd(&r) % NIDS]);
		if (j != MM_PIDX_NONE) {
			int len = mm_ps_path(ps, q, i, j, path, NIDS);
			CHECK(len > 0 || len == -ENOENT);
			for (int h = 0; h + 1 < len; h++)
				CHECK_NE(path[h], path[h + 1]);
			atomic_fetch_add_explicit(&paths, 1, memory_order_relaxed);
		}
		if (++k % 2000 == 0) {
			mm_ps_graph_t g;
			CHECK_EQ(mm_ps_analyse(ps, q, 1, &g), 0);
			CHECK_LE(g.largest, g.nodes);
		}
	}
	mm_psq_free(q);
	return NULL;
}

int
main(void)
{
	mm_ps_config_t c;
	mm_ps_config_default(&c);
	c.shards = 2;
	c.max_peers = 4096;
	CHECK_EQ(mm_ps_create(&c, &ps), 0);
	for (uint32_t i = 0; i < NIDS; i++) {
		for (int b = 0; b < 32; b++)
			ids[i][b] = (uint8_t)((i * 131u + (uint32_t)b * 17u) >> (b % 3));
		memcpy(ids[i], &i, sizeof(i));
	}
	static struct writer w[2];
	for (unsigned s = 0; s < 2; s++) {
		w[s].shard = s;
		w[s].rng = 99 + s;
		w[s].mine = calloc(NIDS, sizeof(uint32_t));
		for (uint32_t i = 0; i < NIDS; i++)
			if (mm_ps_shard_of(ps, ids[i]) == s)
				w[s].mine[w[s].nmine++] = i;
		CHECK_GT(w[s].nmine, NIDS / 4);
	}
	pthread_t t[4];
	for (int i = 0; i < 2; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, writer_main, &w[i]), 0);
	for (int i = 2; i < 4; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, reader_main, (void *)(uintptr_t)i), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);

	/* Quiescent now: the claim counter equals the lists. */
	mm_ps_stats_t st;
	mm_ps_stats(ps, &st);
	uint64_t claims = 0;
	mm_pidx_t nb[MM_PS_MAX_NB];
	for (mm_pidx_t i = 0; i < mm_ps_span(ps); i++)
		claims += mm_ps_neighbours(ps, i, nb, NULL, MM_PS_MAX_NB);
	CHECK_EQ(st.claims, claims);
	CHECK_GT(atomic_load(&reads), 0);
	fprintf(stderr, "test_ps_concurrency: %u events, %" PRIu64 " list reads, %"
	    PRIu64 " paths, %u records, %" PRIu64 " claims, %" PRIu64
	    " phantoms expired: ok\n", 2 * EVENTS_PER_WRITER,
	    (uint64_t)atomic_load(&reads), (uint64_t)atomic_load(&paths),
	    st.records, st.claims, st.phantoms_expired);
	for (int s = 0; s < 2; s++)
		free(w[s].mine);
	mm_ps_destroy(ps);
	return 0;
}
