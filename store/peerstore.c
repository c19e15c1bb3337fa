/*
 * PeerStore implementation. See peerstore.h for the model and the contract.
 *
 * Layout per peer index: a 64-byte hot record (seqlock, seq, updated, meta,
 * 12 inline neighbours) and a 40-byte cold entry (id, first seen, refs and
 * evidence). Both arrays are chunked (256 entries), chunks allocated on
 * demand under the intern mutex and published with release stores, never
 * moved or freed before mm_ps_destroy, so readers may hold pointers into
 * them. The id index is written here rather than taken from ck_hs because
 * of the memory goal: 32-bit slots at 0.4-0.8 load cost 5-10 bytes per peer
 * where ck_hs's pointer slots at its 0.5 load cost 16. The index grows by
 * doubling with the ids it holds (a node that knows 2,500 peers does not
 * hold a table sized for max_peers). A lock-free lookup may still be
 * probing the table it replaces, and there is no reader registration on
 * the lookup path to say when it is done, so that table is not freed:
 * its pages are handed back (MADV_DONTNEED; the lookup then reads zeros,
 * "unknown") and its address range stays mapped until mm_ps_destroy.
 */
#include "peerstore.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mm_rt.h"
#include "seqlock.h"
#include "siphash.h"

#define CHUNK_BITS 8
#define CHUNK (1u << CHUNK_BITS)
/* When a list outgrows the record, the last inline slot holds the overflow
 * block's index + 1 instead of a neighbour: 11 stay inline, the rest (up to
 * 21) go to the block. Keeping the index here rather than in the cold entry
 * keeps that entry at 40 bytes, which packs 256 of them in exactly 10 KiB. */
#define INLINE_WITH_OVF (MM_PS_INLINE_NB - 1)
#define OVF_NB (MM_PS_MAX_NB - INLINE_WITH_OVF)

/* meta: n (bits 0-7) | inline dirs (8-19) | live (20) | has_addr (21) |
 * overflow (22) | tombstone (23: forgotten as unreachable; not live, but
 * its seq still makes replays of its old events stale, and the id is not
 * freed until ttl_s after its last event) */
#define META_N(m) ((m) & 0xffu)
#define META_DIRS(m) (((m) >> 8) & 0xfffu)
#define META_LIVE (1u << 20)
#define META_ADDR (1u << 21)
#define META_OVF (1u << 22)
#define META_TOMB (1u << 23)

/* cold refs_ev: refs (0-15) | evidence (16-23) | used (31) */
#define REFS_MASK 0xffffu
#define EV_SHIFT 16
#define COLD_USED (1u << 31)

struct rec { /* 64 bytes: one cache line */
	mm_seq_t lock;
	atomic_uint seq;
	atomic_uint updated;
	atomic_uint meta;
	atomic_uint nb[MM_PS_INLINE_NB];
};

struct cold { /* 40 bytes */
	uint8_t id[MM_ID_LEN]; /* written before the index is published */
	atomic_uint first_seen; /* when freed: the time it was freed */
	atomic_uint refs_ev;    /* when freed (no COLD_USED): free-list link */
};

/* The id index: open addressing, linear probing, backward-shift deletion.
 * Slot value idx + 1, 0 = empty. A table is an anonymous mapping of whole
 * pages, its header included (1,020 slots in a 4 KiB page, 2,044 in two...). */
struct idx_tab {
	uint32_t n; /* slots; reads 0 once the table is replaced */
	uint32_t pad[3];
	atomic_uint s[];
};
#define INDEX_TABS 32 /* 1 page doubled up to 2^24 ids takes 15 steps */

struct ovf_block {
	atomic_uint nb[OVF_NB];
	atomic_uint dirs;
	uint32_t next_free; /* block + 1, under the mutex */
};
#define OVF_CHUNK 64

/* 12 bytes: most dialable peers are IPv4, held inline; an IPv6 address
 * lives in a side array and `a` holds its slot. */
struct addr_ent {
	uint32_t key; /* idx + 1; 0 = empty */
	uint16_t port;
	uint16_t is6;
	uint32_t a;   /* IPv4 address bytes, or IPv6 slot + 1 */
};

struct mm_ps {
	mm_ps_config_t cfg;
	pthread_mutex_t mu; /* interning, refs to new claims, frees, addrs */
	uint64_t k0, k1;

	uint32_t nchunks;
	_Atomic(struct rec *) *hot;
	_Atomic(struct cold *) *cold;

	_Atomic(struct idx_tab *) index; /* written under the mutex */
	size_t index_max_len; /* bytes of the table for max_peers */
	struct {
		struct idx_tab *t;
		size_t len;
	} tabs[INDEX_TABS]; /* every table mapped, the current one last */
	unsigned ntabs;

	atomic_uint span;   /* one past the highest index handed out */
	uint32_t free_head, free_tail; /* FIFO of freed indices + 1 (mutex) */
	atomic_uint nids, nrecords;

	/* Overflow blocks (neighbours past 12), in chunks of OVF_CHUNK that are
	 * never moved: readers reach them by index. */
	_Atomic(struct ovf_block *) *ovf_chunks;
	uint32_t novf_chunks, novf, ovf_free; /* mutex */

	struct addr_ent *addrs; /* open addressing, grows (mutex) */
	uint32_t naddr_slots, naddrs;
	uint8_t (*v6)[16];      /* IPv6 addresses; free slots linked (mutex) */
	uint32_t nv6, v6cap, v6free;

	_Atomic uint64_t claims, phantoms_expired, evidence;
};

/* Freed indices are reused only after this many seconds, so that a reader
 * still holding an old index sees "unknown" rather than another peer. */
#define REUSE_GRACE_S 120

/* ---- helpers --------------------------------------------------------------- */

/* Entry i of a chunked array, or NULL past the chunks that exist. */
#define CHUNK_ACCESSOR(name, type, field)                                      \
	static inline type *name(const mm_ps_t *ps, mm_pidx_t i)               \
	{                                                                      \
		if (i >= ps->nchunks * CHUNK)                                  \
			return NULL;                                           \
		/* acquire: pairs with the chunk's publication. */             \
		type *c = atomic_load_explicit(                                \
		    &((mm_ps_t *)ps)->field[i >> CHUNK_BITS],                  \
		    memory_order_acquire);                                     \
		return c != NULL ? &c[i & (CHUNK - 1)] : NULL;                 \
	}
CHUNK_ACCESSOR(rec_of, struct rec, hot)
CHUNK_ACCESSOR(cold_of, struct cold, cold)

/* Block bi, or NULL if bi is out of range (a torn read can produce any
 * value: the seqlock retry discards what was read through it). */
static inline struct ovf_block *
ovf_at(const mm_ps_t *ps, uint32_t bi)
{
	if (bi / OVF_CHUNK >= ps->novf_chunks)
		return NULL;
	struct ovf_block *c = atomic_load_explicit(
	    &((mm_ps_t *)ps)->ovf_chunks[bi / OVF_CHUNK], memory_order_acquire);
	return c != NULL ? &c[bi % OVF_CHUNK] : NULL;
}

static inline uint64_t
hash_id(const mm_ps_t *ps, const uint8_t *id)
{
	return mm_siphash13(ps->k0, ps->k1, id, MM_ID_LEN);
}

static inline uint32_t
home_slot(uint32_t n, uint64_t h)
{
	return (uint32_t)(((h >> 32) * (uint64_t)n) >> 32);
}

/* A zeroed table of len bytes (whole pages), recorded for destroy. */
static struct idx_tab *
index_alloc(mm_ps_t *ps, size_t len)
{
	if (ps->ntabs == INDEX_TABS)
		return NULL;
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	struct idx_tab *t = p;
	t->n = (uint32_t)((len - sizeof(*t)) / sizeof(atomic_uint));
	ps->tabs[ps->ntabs].t = t;
	ps->tabs[ps->ntabs++].len = len;
	return t;
}

unsigned
mm_ps_shard_of(const mm_ps_t *ps, const uint8_t id[MM_ID_LEN])
{
	return (unsigned)hash_id(ps, id) & (ps->cfg.shards - 1);
}

unsigned
mm_ps_shards(const mm_ps_t *ps)
{
	return ps->cfg.shards;
}

uint32_t
mm_ps_span(const mm_ps_t *ps)
{
	return atomic_load_explicit(&((mm_ps_t *)ps)->span, memory_order_acquire);
}

/* ---- create / destroy ------------------------------------------------------ */

void
mm_ps_config_default(mm_ps_config_t *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->max_peers = 131072;
	cfg->max_neighbours = 12;
	cfg->max_neighbours_temp = 16;
	cfg->shards = 1;
	cfg->confirm_timeout_s = 60;
	cfg->ttl_s = 3600;
}

int
mm_ps_create(const mm_ps_config_t *cfg, mm_ps_t **out)
{
	mm_ps_config_t c;
	if (cfg == NULL)
		mm_ps_config_default(&c);
	else
		c = *cfg;
	if (c.max_peers == 0 || c.max_peers > (1u << 28) ||
	    c.max_neighbours == 0 || c.max_neighbours > c.max_neighbours_temp ||
	    c.max_neighbours_temp > MM_PS_MAX_NB || c.shards == 0 ||
	    (c.shards & (c.shards - 1)) != 0)
		return -EINVAL;

	mm_ps_t *ps = calloc(1, sizeof(*ps));
	if (ps == NULL)
		return -ENOMEM;
	ps->cfg = c;
	pthread_mutex_init(&ps->mu, NULL);
	if (c.hash_key[0] == 0 && c.hash_key[1] == 0) {
		uint64_t k[2];
		if (mm_secure_random(k, sizeof(k)) != 0) {
			free(ps);
			return -EIO;
		}
		ps->k0 = k[0];
		ps->k1 = k[1];
	} else {
		ps->k0 = c.hash_key[0];
		ps->k1 = c.hash_key[1];
	}
	ps->nchunks = (c.max_peers + CHUNK - 1) / CHUNK;
	ps->hot = calloc(ps->nchunks, sizeof(*ps->hot));
	ps->cold = calloc(ps->nchunks, sizeof(*ps->cold));
	/* Load at most 0.8 when full, at least one slot empty; the first
	 * table is a page. */
	long pg = sysconf(_SC_PAGESIZE);
	size_t page = pg > 0 ? (size_t)pg : 4096;
	size_t need = sizeof(struct idx_tab) + ((size_t)c.max_peers +
	    c.max_peers / 4 + 1) * sizeof(atomic_uint);
	ps->index_max_len = (need + page - 1) / page * page;
	struct idx_tab *t = index_alloc(ps, page);
	atomic_store_explicit(&ps->index, t, memory_order_relaxed);
	ps->novf_chunks = (c.max_peers + OVF_CHUNK - 1) / OVF_CHUNK;
	ps->ovf_chunks = calloc(ps->novf_chunks, sizeof(*ps->ovf_chunks));
	if (ps->hot == NULL || ps->cold == NULL || t == NULL ||
	    ps->ovf_chunks == NULL)
		goto fail;
	*out = ps;
	return 0;
fail:
	mm_ps_destroy(ps);
	return -ENOMEM;
}

void
mm_ps_destroy(mm_ps_t *ps)
{
	if (ps == NULL)
		return;
	for (uint32_t i = 0; ps->hot != NULL && i < ps->nchunks; i++) {
		free(atomic_load(&ps->hot[i]));
		free(atomic_load(&ps->cold[i]));
	}
	for (uint32_t i = 0; ps->ovf_chunks != NULL && i < ps->novf_chunks; i++)
		free(atomic_load(&ps->ovf_chunks[i]));
	free(ps->ovf_chunks);
	free(ps->addrs);
	free(ps->v6);
	for (unsigned i = 0; i < ps->ntabs; i++)
		munmap(ps->tabs[i].t, ps->tabs[i].len);
	free(ps->hot);
	free(ps->cold);
	pthread_mutex_destroy(&ps->mu);
	free(ps);
}

/* ---- id index (mutex for writes; lookups lock-free) ------------------------ */

/* id's index given h = hash_id(ps, id) */
static mm_pidx_t
lookup_h(const mm_ps_t *ps, const uint8_t *id, uint64_t h)
{
	/* acquire: pairs with the table's publication (filled, then named). */
	struct idx_tab *t = atomic_load_explicit(&((mm_ps_t *)ps)->index,
	    memory_order_acquire);
	uint32_t n = t->n; /* once: a replaced table reads 0 */
	uint32_t s = home_slot(n, h);
	for (uint32_t probes = 0; probes < n; probes++) {
		/* acquire: pairs with the slot's publication (id written). */
		uint32_t v = atomic_load_explicit(&t->s[s], memory_order_acquire);
		if (v == 0)
			return MM_PIDX_NONE;
		struct cold *c = cold_of(ps, v - 1);
		if (c != NULL && memcmp(c->id, id, MM_ID_LEN) == 0)
			return v - 1;
		if (++s == n)
			s = 0;
	}
	return MM_PIDX_NONE;
}

mm_pidx_t
mm_ps_lookup(const mm_ps_t *ps, const uint8_t id[MM_ID_LEN])
{
	return lookup_h(ps, id, hash_id(ps, id));
}

/* A lookup costs two cache misses when the map is large or cold (the
 * slot, then the record whose id it compares: 85% of mm_ps_lookup's time
 * at 400 simulated nodes, measured with perf annotate), and a neighbour
 * list looks up its ids one after the other. This touches every id's home
 * slot, then the record each names, before the lookups, so that the
 * misses overlap instead of queueing. Hints only: nothing is read that a
 * lookup would not read, and a stale table reads zeros. */
static void
prefetch_ids(const mm_ps_t *ps, const uint8_t *ids, size_t stride, unsigned n,
    uint64_t *h)
{
	struct idx_tab *t = atomic_load_explicit(&((mm_ps_t *)ps)->index,
	    memory_order_acquire);
	uint32_t tn = t->n;
	for (unsigned k = 0; k < n; k++) {
		h[k] = hash_id(ps, ids + k * stride);
		__builtin_prefetch(&t->s[home_slot(tn, h[k])]);
	}
	for (unsigned k = 0; k < n && tn != 0; k++) {
		uint32_t v = atomic_load_explicit(&t->s[home_slot(tn, h[k])],
		    memory_order_acquire);
		const struct cold *c = v != 0 ? cold_of(ps, v - 1) : NULL;
		if (c != NULL)
			__builtin_prefetch(c->id);
	}
}

void
mm_ps_lookup_many(const mm_ps_t *ps, const uint8_t *ids, size_t stride,
    unsigned n, mm_pidx_t *out)
{
	enum { BATCH = 16 };
	uint64_t h[BATCH];
	for (unsigned i = 0; i < n; i += BATCH) {
		unsigned m = n - i < BATCH ? n - i : BATCH;
		const uint8_t *base = ids + (size_t)i * stride;
		prefetch_ids(ps, base, stride, m, h);
		for (unsigned k = 0; k < m; k++) {
			mm_pidx_t x = lookup_h(ps, base + k * stride, h[k]);
			const struct rec *r = x != MM_PIDX_NONE ? rec_of(ps, x) : NULL;
			if (r != NULL)
				__builtin_prefetch(r); /* its seq is read next */
			out[i + k] = x;
		}
	}
}

/* Mutex held: put idx + 1 in the first empty slot from id's home. */
static void
index_put(mm_ps_t *ps, struct idx_tab *t, const uint8_t *id, uint32_t v)
{
	uint32_t s = home_slot(t->n, hash_id(ps, id));
	while (atomic_load_explicit(&t->s[s], memory_order_relaxed) != 0)
		if (++s == t->n)
			s = 0;
	/* release: the id is written before the slot names it. */
	atomic_store_explicit(&t->s[s], v, memory_order_release);
}

/* Mutex held: room for one more id at load <= 0.8, doubling the table
 * (up to the size for max_peers) when it would go past. A lookup that
 * loaded the old table before the switch reads it whole or, once its
 * pages are handed back, zeros: "unknown", as when it races a removal. */
static int
index_reserve(mm_ps_t *ps, uint32_t nids)
{
	struct idx_tab *t = atomic_load_explicit(&ps->index, memory_order_relaxed);
	size_t len = ps->tabs[ps->ntabs - 1].len;
	if (nids + 1 <= t->n - t->n / 5 || len >= ps->index_max_len)
		return 0;
	struct idx_tab *g = index_alloc(ps,
	    2 * len < ps->index_max_len ? 2 * len : ps->index_max_len);
	if (g == NULL)
		return nids + 1 < t->n ? 0 : -ENOMEM; /* fuller, but correct */
	for (uint32_t i = 0; i < t->n; i++) {
		uint32_t v = atomic_load_explicit(&t->s[i], memory_order_relaxed);
		if (v != 0)
			index_put(ps, g, cold_of(ps, v - 1)->id, v);
	}
	/* release: the filled table before its pointer. */
	atomic_store_explicit(&ps->index, g, memory_order_release);
	madvise(t, len, MADV_DONTNEED);
	return 0;
}

/* Remove idx from the index with backward-shift deletion (no tombstones):
 * entries after the hole that may move back, do. A concurrent lock-free
 * lookup can miss an entry while it moves (documented in peerstore.h). */
static void
index_remove(mm_ps_t *ps, mm_pidx_t idx)
{
	struct cold *c = cold_of(ps, idx);
	struct idx_tab *t = atomic_load_explicit(&ps->index, memory_order_relaxed);
	uint32_t s = home_slot(t->n, hash_id(ps, c->id));
	while (atomic_load_explicit(&t->s[s], memory_order_relaxed) != idx + 1)
		if (++s == t->n)
			s = 0;
	uint32_t hole = s;
	for (;;) {
		if (++s == t->n)
			s = 0;
		uint32_t v = atomic_load_explicit(&t->s[s], memory_order_relaxed);
		if (v == 0)
			break;
		uint32_t home = home_slot(t->n, hash_id(ps, cold_of(ps, v - 1)->id));
		/* v may fill the hole if its home is not in (hole, s]. */
		bool movable = hole <= s ? (home <= hole || home > s) :
		    (home <= hole && home > s);
		if (movable) {
			atomic_store_explicit(&t->s[hole], v, memory_order_release);
			hole = s;
		}
	}
	atomic_store_explicit(&t->s[hole], 0, memory_order_release);
}

static int
ensure_chunk(mm_ps_t *ps, mm_pidx_t idx)
{
	uint32_t k = idx >> CHUNK_BITS;
	if (atomic_load_explicit(&ps->hot[k], memory_order_relaxed) != NULL)
		return 0;
	struct rec *h = aligned_alloc(64, CHUNK * sizeof(struct rec));
	struct cold *c = calloc(CHUNK, sizeof(struct cold));
	if (h == NULL || c == NULL) {
		free(h);
		free(c);
		return -ENOMEM;
	}
	memset(h, 0, CHUNK * sizeof(struct rec));
	/* release: the zeroed chunk is visible before its pointer. */
	atomic_store_explicit(&ps->cold[k], c, memory_order_release);
	atomic_store_explicit(&ps->hot[k], h, memory_order_release);
	return 0;
}

/* Mutex held. Find or create the index of id; NONE with *err on failure. */
static mm_pidx_t
intern_locked_h(mm_ps_t *ps, const uint8_t *id, uint64_t h, uint32_t now,
    int *err)
{
	mm_pidx_t idx = lookup_h(ps, id, h);
	if (idx != MM_PIDX_NONE)
		return idx;
	uint32_t nids = atomic_load_explicit(&ps->nids, memory_order_relaxed);
	if (nids >= ps->cfg.max_peers) {
		*err = -ENOSPC;
		return MM_PIDX_NONE;
	}
	if ((*err = index_reserve(ps, nids)) != 0)
		return MM_PIDX_NONE;
	/* A freed index past its grace period, else a fresh one. */
	if (ps->free_head != 0) {
		struct cold *f = cold_of(ps, ps->free_head - 1);
		if (now - atomic_load_explicit(&f->first_seen, memory_order_relaxed) >=
		        REUSE_GRACE_S ||
		    atomic_load_explicit(&ps->span, memory_order_relaxed) >=
		        ps->cfg.max_peers) {
			idx = ps->free_head - 1;
			ps->free_head = atomic_load_explicit(&f->refs_ev, memory_order_relaxed);
			if (ps->free_head == 0)
				ps->free_tail = 0;
		}
	}
	if (idx == MM_PIDX_NONE) {
		idx = atomic_load_explicit(&ps->span, memory_order_relaxed);
		if (idx >= ps->cfg.max_peers) {
			*err = -ENOSPC;
			return MM_PIDX_NONE;
		}
		if ((*err = ensure_chunk(ps, idx)) != 0)
			return MM_PIDX_NONE;
		atomic_store_explicit(&ps->span, idx + 1, memory_order_release);
	}
	/* Reset the record: nobody else writes it before the slot below
	 * publishes the index (a reused index must not keep the previous
	 * peer's seq). */
	struct rec *r = rec_of(ps, idx);
	unsigned v = mm_seq_write_begin(&r->lock);
	atomic_store_explicit(&r->seq, 0, MM_SEQ_ST);
	atomic_store_explicit(&r->updated, now, MM_SEQ_ST);
	atomic_store_explicit(&r->meta, 0, MM_SEQ_ST);
	mm_seq_write_end(&r->lock, v);
	struct cold *c = cold_of(ps, idx);
	memcpy(c->id, id, MM_ID_LEN);
	atomic_store_explicit(&c->first_seen, now, memory_order_relaxed);
	atomic_store_explicit(&c->refs_ev, COLD_USED, memory_order_relaxed);
	index_put(ps, atomic_load_explicit(&ps->index, memory_order_relaxed), id,
	    idx + 1);
	atomic_fetch_add_explicit(&ps->nids, 1, memory_order_relaxed);
	return idx;
}

static mm_pidx_t
intern_locked(mm_ps_t *ps, const uint8_t *id, uint32_t now, int *err)
{
	return intern_locked_h(ps, id, hash_id(ps, id), now, err);
}

/* Mutex held: free idx if nothing refers to it and it holds no record. */
static bool
maybe_free_locked(mm_ps_t *ps, mm_pidx_t idx, uint32_t now)
{
	struct cold *c = cold_of(ps, idx);
	struct rec *r = rec_of(ps, idx);
	uint32_t re = atomic_load_explicit(&c->refs_ev, memory_order_relaxed);
	if (!(re & COLD_USED) || (re & REFS_MASK) != 0 ||
	    (atomic_load_explicit(&r->meta, memory_order_relaxed) & (META_LIVE | META_TOMB)))
		return false;
	index_remove(ps, idx);
	/* Free-list FIFO linked through refs_ev; first_seen holds the free
	 * time for the reuse grace. */
	atomic_store_explicit(&c->refs_ev, 0, memory_order_relaxed);
	atomic_store_explicit(&c->first_seen, now, memory_order_relaxed);
	if (ps->free_tail != 0)
		atomic_store_explicit(&cold_of(ps, ps->free_tail - 1)->refs_ev, idx + 1,
		    memory_order_relaxed);
	else
		ps->free_head = idx + 1;
	ps->free_tail = idx + 1;
	atomic_fetch_sub_explicit(&ps->nids, 1, memory_order_relaxed);
	return true;
}

static void
ref_add(mm_ps_t *ps, mm_pidx_t idx, int d)
{
	struct cold *c = cold_of(ps, idx);
	if (d > 0)
		atomic_fetch_add_explicit(&c->refs_ev, 1, memory_order_relaxed);
	else
		atomic_fetch_sub_explicit(&c->refs_ev, 1, memory_order_relaxed);
}

static void
evidence_add(mm_ps_t *ps, mm_pidx_t idx)
{
	struct cold *c = cold_of(ps, idx);
	uint32_t v = atomic_load_explicit(&c->refs_ev, memory_order_relaxed);
	/* Saturate at 255. */
	while (((v >> EV_SHIFT) & 0xffu) != 0xffu &&
	    !atomic_compare_exchange_weak_explicit(&c->refs_ev, &v,
	        v + (1u << EV_SHIFT), memory_order_relaxed, memory_order_relaxed))
		;
	atomic_fetch_add_explicit(&ps->evidence, 1, memory_order_relaxed);
}

/* ---- records: consistent read, whole-list write ------------------------------ */

struct list {
	unsigned n;
	mm_pidx_t nb[MM_PS_MAX_NB];
	uint8_t dir[MM_PS_MAX_NB];
};

/* Reader side: returns false for an index without a record chunk. */
static bool
read_list(const mm_ps_t *ps, mm_pidx_t idx, struct list *l, uint32_t *meta_out,
    uint32_t *seq_out)
{
	struct rec *r = rec_of(ps, idx);
	if (r == NULL)
		return false;
	unsigned v;
	do {
		v = mm_seq_read_begin(&r->lock);
		uint32_t meta = atomic_load_explicit(&r->meta, MM_SEQ_LD);
		unsigned n = META_N(meta);
		if (n > MM_PS_MAX_NB)
			n = 0; /* torn read: the retry catches it */
		bool ovf = (meta & META_OVF) && n > MM_PS_INLINE_NB;
		unsigned in = ovf ? INLINE_WITH_OVF : n;
		if (!ovf && n > MM_PS_INLINE_NB)
			in = n = 0; /* torn */
		for (unsigned i = 0; i < in; i++) {
			l->nb[i] = atomic_load_explicit(&r->nb[i], MM_SEQ_LD);
			l->dir[i] = (META_DIRS(meta) >> i) & 1u;
		}
		if (ovf) {
			uint32_t ob = atomic_load_explicit(&r->nb[INLINE_WITH_OVF], MM_SEQ_LD);
			struct ovf_block *b = ob != 0 ? ovf_at(ps, ob - 1) : NULL;
			if (b == NULL) {
				n = in; /* torn */
			} else {
				uint32_t d = atomic_load_explicit(&b->dirs, MM_SEQ_LD);
				for (unsigned i = in; i < n; i++) {
					l->nb[i] = atomic_load_explicit(&b->nb[i - in], MM_SEQ_LD);
					l->dir[i] = (d >> (i - in)) & 1u;
				}
			}
		}
		l->n = n;
		if (meta_out != NULL)
			*meta_out = meta;
		if (seq_out != NULL)
			*seq_out = atomic_load_explicit(&r->seq, MM_SEQ_LD);
	} while (mm_seq_read_retry(&r->lock, v));
	return true;
}

/* Owner side: write idx's list, seq, updated and flags in one seqlock
 * section. Overflow blocks are attached/detached under the mutex. */
static int
write_list(mm_ps_t *ps, mm_pidx_t idx, const struct list *l, uint32_t seq,
    uint32_t now, uint32_t flags)
{
	struct rec *r = rec_of(ps, idx);
	/* The owner is the only writer: its own fields need no seqlock read. */
	uint32_t cur = atomic_load_explicit(&r->meta, memory_order_relaxed);
	uint32_t ob = (cur & META_OVF) ?
	    atomic_load_explicit(&r->nb[INLINE_WITH_OVF], memory_order_relaxed) : 0;
	uint32_t release = 0;

	if (l->n > MM_PS_INLINE_NB && ob == 0) {
		pthread_mutex_lock(&ps->mu);
		if (ps->ovf_free != 0) {
			ob = ps->ovf_free;
			ps->ovf_free = ovf_at(ps, ob - 1)->next_free;
		} else {
			uint32_t k = ps->novf / OVF_CHUNK;
			if (k >= ps->novf_chunks) {
				pthread_mutex_unlock(&ps->mu);
				return -ENOSPC;
			}
			if (atomic_load_explicit(&ps->ovf_chunks[k],
			        memory_order_relaxed) == NULL) {
				struct ovf_block *nc = calloc(OVF_CHUNK, sizeof(*nc));
				if (nc == NULL) {
					pthread_mutex_unlock(&ps->mu);
					return -ENOMEM;
				}
				atomic_store_explicit(&ps->ovf_chunks[k], nc,
				    memory_order_release);
			}
			ob = ++ps->novf;
		}
		pthread_mutex_unlock(&ps->mu);
	} else if (l->n <= MM_PS_INLINE_NB && ob != 0) {
		release = ob;
		ob = 0;
	}

	unsigned in = ob != 0 ? INLINE_WITH_OVF : l->n;
	uint32_t dirs = 0, odirs = 0;
	unsigned v = mm_seq_write_begin(&r->lock);
	for (unsigned i = 0; i < in; i++) {
		atomic_store_explicit(&r->nb[i], l->nb[i], MM_SEQ_ST);
		dirs |= (uint32_t)l->dir[i] << i;
	}
	if (ob != 0) {
		struct ovf_block *b = ovf_at(ps, ob - 1);
		for (unsigned i = in; i < l->n; i++) {
			atomic_store_explicit(&b->nb[i - in], l->nb[i], MM_SEQ_ST);
			odirs |= (uint32_t)l->dir[i] << (i - in);
		}
		atomic_store_explicit(&b->dirs, odirs, MM_SEQ_ST);
		atomic_store_explicit(&r->nb[INLINE_WITH_OVF], ob, MM_SEQ_ST);
	}
	atomic_store_explicit(&r->seq, seq, MM_SEQ_ST);
	atomic_store_explicit(&r->updated, now, MM_SEQ_ST);
	atomic_store_explicit(&r->meta, (uint32_t)l->n | (dirs << 8) | flags |
	    (ob != 0 ? META_OVF : 0), MM_SEQ_ST);
	mm_seq_write_end(&r->lock, v);

	if (release != 0) { /* readers that saw it retry: the version moved */
		pthread_mutex_lock(&ps->mu);
		ovf_at(ps, release - 1)->next_free = ps->ovf_free;
		ps->ovf_free = release;
		pthread_mutex_unlock(&ps->mu);
	}
	return 0;
}

static int
find(const struct list *l, mm_pidx_t p)
{
	for (unsigned i = 0; i < l->n; i++)
		if (l->nb[i] == p)
			return (int)i;
	return -1;
}

/* b's claim of a: -1 if none, else b's direction. The hot path of every
 * confirmation check: scans b's record in place, stopping at the match,
 * instead of copying the list. */
static int
reverse_dir(const mm_ps_t *ps, mm_pidx_t a, mm_pidx_t b)
{
	struct rec *r = rec_of(ps, b);
	if (r == NULL)
		return -1;
	int res;
	unsigned v;
	do {
		v = mm_seq_read_begin(&r->lock);
		uint32_t meta = atomic_load_explicit(&r->meta, MM_SEQ_LD);
		unsigned n = META_N(meta);
		bool ovf = (meta & META_OVF) != 0;
		unsigned in = ovf ? INLINE_WITH_OVF : n;
		if (in > MM_PS_INLINE_NB)
			in = 0; /* torn */
		res = -1;
		for (unsigned i = 0; i < in; i++)
			if (atomic_load_explicit(&r->nb[i], MM_SEQ_LD) == a) {
				res = (int)((META_DIRS(meta) >> i) & 1u);
				break;
			}
		if (res < 0 && ovf && n > in && n <= MM_PS_MAX_NB) {
			uint32_t ob = atomic_load_explicit(&r->nb[INLINE_WITH_OVF], MM_SEQ_LD);
			struct ovf_block *blk = ob != 0 ? ovf_at(ps, ob - 1) : NULL;
			for (unsigned i = 0; blk != NULL && i < n - in; i++)
				if (atomic_load_explicit(&blk->nb[i], MM_SEQ_LD) == a) {
					res = (int)((atomic_load_explicit(&blk->dirs,
					    MM_SEQ_LD) >> i) & 1u);
					break;
				}
		}
	} while (mm_seq_read_retry(&r->lock, v));
	return res;
}

static uint32_t
rec_meta(const mm_ps_t *ps, mm_pidx_t idx)
{
	struct rec *r = rec_of(ps, idx);
	return r != NULL ? atomic_load_explicit(&r->meta, memory_order_relaxed) : 0;
}

/* ---- writes ------------------------------------------------------------------ */

int
mm_ps_apply(mm_ps_t *ps, const mm_ps_event_t *ev)
{
	if (ev->seq == 0 || (ev->kind != MM_PS_CONNECT && ev->kind != MM_PS_DISCONNECT) ||
	    ev->dir > MM_PS_OUT)
		return -EINVAL;
	int err = 0;
	mm_pidx_t o, p = MM_PIDX_NONE;
	bool self = memcmp(ev->origin, ev->peer, MM_ID_LEN) == 0;

	pthread_mutex_lock(&ps->mu);
	o = intern_locked(ps, ev->origin, ev->now, &err);
	if (o == MM_PIDX_NONE) {
		pthread_mutex_unlock(&ps->mu);
		return err;
	}
	struct list l;
	uint32_t meta, seq;
	read_list(ps, o, &l, &meta, &seq);
	if (ev->seq <= seq && (meta & (META_LIVE | META_TOMB))) {
		pthread_mutex_unlock(&ps->mu);
		return MM_PS_STALE;
	}
	if (self) {
		pthread_mutex_unlock(&ps->mu);
		evidence_add(ps, o);
		return MM_PS_EV_SELF;
	}
	bool new_claim = false;
	if (ev->kind == MM_PS_CONNECT) {
		p = mm_ps_lookup(ps, ev->peer);
		if (p == MM_PIDX_NONE || find(&l, p) < 0) {
			if (l.n >= ps->cfg.max_neighbours_temp) {
				pthread_mutex_unlock(&ps->mu);
				evidence_add(ps, o);
				return MM_PS_EV_TOO_MANY;
			}
			p = intern_locked(ps, ev->peer, ev->now, &err);
			if (p == MM_PIDX_NONE) {
				pthread_mutex_unlock(&ps->mu);
				return err;
			}
			ref_add(ps, p, +1); /* under the mutex: see maybe_free */
			new_claim = true;
		}
	} else {
		p = mm_ps_lookup(ps, ev->peer);
	}
	/* The origin is now a live record (set under the mutex, so that
	 * maybe_free never frees it from another shard's sweep). */
	if (!(meta & META_LIVE)) {
		atomic_fetch_or_explicit(&rec_of(ps, o)->meta, META_LIVE,
		    memory_order_relaxed);
		meta |= META_LIVE;
		atomic_fetch_add_explicit(&ps->nrecords, 1, memory_order_relaxed);
	}
	pthread_mutex_unlock(&ps->mu);

	uint32_t flags = meta & (META_LIVE | META_ADDR);
	int rc = MM_PS_APPLIED;
	int i = p == MM_PIDX_NONE ? -1 : find(&l, p);
	if (ev->kind == MM_PS_CONNECT) {
		if (new_claim) {
			l.nb[l.n] = p;
			l.dir[l.n] = ev->dir;
			l.n++;
			atomic_fetch_add_explicit(&ps->claims, 1, memory_order_relaxed);
		} else if (l.dir[i] == ev->dir) {
			rc = MM_PS_NOOP;
		} else {
			l.dir[i] = ev->dir; /* reconnected the other way round */
		}
	} else if (i < 0) {
		rc = MM_PS_NOOP; /* a connect we never saw: not the origin's fault */
	} else {
		l.nb[i] = l.nb[l.n - 1];
		l.dir[i] = l.dir[l.n - 1];
		l.n--;
		ref_add(ps, p, -1);
		atomic_fetch_sub_explicit(&ps->claims, 1, memory_order_relaxed);
	}
	if ((err = write_list(ps, o, &l, ev->seq, ev->now, flags)) != 0)
		return err;
	if (ev->kind == MM_PS_CONNECT && rc == MM_PS_APPLIED) {
		int rd = reverse_dir(ps, o, p);
		if (rd >= 0 && rd == ev->dir) {
			evidence_add(ps, o);
			rc = MM_PS_EV_CONFLICT;
		}
	}
	return rc;
}

int
mm_ps_set_neighbours(mm_ps_t *ps, const uint8_t *origin, uint32_t seq,
    uint32_t now, const uint8_t (*ids)[MM_ID_LEN], const uint8_t *dirs,
    unsigned n)
{
	if (seq == 0)
		return -EINVAL;
	int err = 0;
	struct list old, nl;
	uint32_t meta, oseq;
	uint64_t h[MM_PS_MAX_NB];
	unsigned nh = n < MM_PS_MAX_NB ? n : MM_PS_MAX_NB;
	prefetch_ids(ps, (const uint8_t *)ids, MM_ID_LEN, nh, h);

	pthread_mutex_lock(&ps->mu);
	mm_pidx_t o = intern_locked(ps, origin, now, &err);
	if (o == MM_PIDX_NONE) {
		pthread_mutex_unlock(&ps->mu);
		return err;
	}
	read_list(ps, o, &old, &meta, &oseq);
	if (seq <= oseq && (meta & (META_LIVE | META_TOMB))) {
		pthread_mutex_unlock(&ps->mu);
		return MM_PS_STALE;
	}
	if (n > ps->cfg.max_neighbours_temp) {
		pthread_mutex_unlock(&ps->mu);
		evidence_add(ps, o);
		return MM_PS_EV_TOO_MANY;
	}
	nl.n = 0;
	for (unsigned k = 0; k < n; k++) {
		if (memcmp(ids[k], origin, MM_ID_LEN) == 0 || dirs[k] > MM_PS_OUT) {
			pthread_mutex_unlock(&ps->mu);
			evidence_add(ps, o);
			return MM_PS_EV_SELF;
		}
		mm_pidx_t p = intern_locked_h(ps, ids[k],
		    k < nh ? h[k] : hash_id(ps, ids[k]), now, &err);
		if (p == MM_PIDX_NONE)
			break;
		if (find(&nl, p) >= 0)
			continue; /* duplicate entry: keep one */
		ref_add(ps, p, +1);
		nl.nb[nl.n] = p;
		nl.dir[nl.n] = dirs[k];
		nl.n++;
	}
	if (!(meta & META_LIVE)) {
		atomic_fetch_or_explicit(&rec_of(ps, o)->meta, META_LIVE,
		    memory_order_relaxed);
		meta |= META_LIVE;
		atomic_fetch_add_explicit(&ps->nrecords, 1, memory_order_relaxed);
	}
	pthread_mutex_unlock(&ps->mu);
	if (err != 0) { /* ran out of room: undo the references taken */
		for (unsigned k = 0; k < nl.n; k++)
			ref_add(ps, nl.nb[k], -1);
		return err;
	}
	for (unsigned k = 0; k < old.n; k++)
		ref_add(ps, old.nb[k], -1);
	atomic_fetch_add_explicit(&ps->claims, (uint64_t)nl.n - old.n,
	    memory_order_relaxed);
	if ((err = write_list(ps, o, &nl, seq, now, meta & (META_LIVE | META_ADDR))) != 0)
		return err;
	return MM_PS_APPLIED;
}

/* ---- addresses (mutex) -------------------------------------------------------- */

static struct addr_ent *
addr_slot(struct addr_ent *tab, uint32_t n, uint32_t key, bool for_insert)
{
	uint32_t s = (uint32_t)(((uint64_t)(key * 2654435761u) * n) >> 32);
	for (uint32_t k = 0; k < n; k++) {
		if (tab[s].key == key || (tab[s].key == 0 && for_insert))
			return &tab[s];
		if (tab[s].key == 0)
			return NULL;
		if (++s == n)
			s = 0;
	}
	return NULL;
}

static int
addr_grow(mm_ps_t *ps)
{
	/* x1.5: the table is part of the map's memory budget. */
	uint32_t nn = ps->naddr_slots ? ps->naddr_slots + ps->naddr_slots / 2 : 256;
	struct addr_ent *nt = calloc(nn, sizeof(*nt));
	if (nt == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < ps->naddr_slots; i++)
		if (ps->addrs[i].key != 0)
			*addr_slot(nt, nn, ps->addrs[i].key, true) = ps->addrs[i];
	free(ps->addrs);
	ps->addrs = nt;
	ps->naddr_slots = nn;
	return 0;
}

static bool
is_v4(const uint8_t ip[16])
{
	static const uint8_t pre[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	return memcmp(ip, pre, 12) == 0;
}

static void
v6_release(mm_ps_t *ps, uint32_t slot1)
{
	uint32_t link = ps->v6free;
	memcpy(ps->v6[slot1 - 1], &link, sizeof(link));
	ps->v6free = slot1;
}

static void
addr_remove_locked(mm_ps_t *ps, uint32_t key)
{
	struct addr_ent *e = ps->naddr_slots ?
	    addr_slot(ps->addrs, ps->naddr_slots, key, false) : NULL;
	if (e == NULL)
		return;
	if (e->is6)
		v6_release(ps, e->a);
	/* Backward-shift deletion, as in the id index. */
	uint32_t n = ps->naddr_slots, hole = (uint32_t)(e - ps->addrs), s = hole;
	for (;;) {
		if (++s == n)
			s = 0;
		if (ps->addrs[s].key == 0)
			break;
		uint32_t home = (uint32_t)(((uint64_t)(ps->addrs[s].key * 2654435761u) * n) >> 32);
		bool movable = hole <= s ? (home <= hole || home > s) :
		    (home <= hole && home > s);
		if (movable) {
			ps->addrs[hole] = ps->addrs[s];
			hole = s;
		}
	}
	ps->addrs[hole].key = 0;
	ps->naddrs--;
}

int
mm_ps_set_addr(mm_ps_t *ps, const uint8_t *id, const mm_ps_addr_t *a,
    uint32_t now)
{
	int err = 0;
	pthread_mutex_lock(&ps->mu);
	mm_pidx_t idx = a->port == 0 ? mm_ps_lookup(ps, id) :
	    intern_locked(ps, id, now, &err);
	if (idx == MM_PIDX_NONE) {
		pthread_mutex_unlock(&ps->mu);
		return a->port == 0 ? 0 : err;
	}
	struct rec *r = rec_of(ps, idx);
	if (a->port == 0) {
		addr_remove_locked(ps, idx + 1);
		atomic_fetch_and_explicit(&r->meta, ~META_ADDR, memory_order_relaxed);
		pthread_mutex_unlock(&ps->mu);
		return 0;
	}
	if ((ps->naddrs + 1) * 20 > ps->naddr_slots * 17 && (err = addr_grow(ps)) != 0) {
		pthread_mutex_unlock(&ps->mu);
		return err;
	}
	struct addr_ent *e = addr_slot(ps->addrs, ps->naddr_slots, idx + 1, true);
	if (e->key == 0) {
		ps->naddrs++;
		e->is6 = 0;
	}
	if (is_v4(a->ip)) {
		if (e->is6)
			v6_release(ps, e->a);
		e->is6 = 0;
		memcpy(&e->a, a->ip + 12, 4);
	} else {
		if (!e->is6) {
			uint32_t slot;
			if (ps->v6free != 0) {
				slot = ps->v6free;
				memcpy(&ps->v6free, ps->v6[slot - 1], sizeof(uint32_t));
			} else {
				if (ps->nv6 == ps->v6cap) {
					uint32_t nc = ps->v6cap ? ps->v6cap + ps->v6cap / 2 : 64;
					void *nv = realloc(ps->v6, (size_t)nc * 16);
					if (nv == NULL) {
						if (e->key == 0)
							ps->naddrs--;
						pthread_mutex_unlock(&ps->mu);
						return -ENOMEM;
					}
					ps->v6 = nv;
					ps->v6cap = nc;
				}
				slot = ++ps->nv6;
			}
			e->is6 = 1;
			e->a = slot;
		}
		memcpy(ps->v6[e->a - 1], a->ip, 16);
	}
	e->key = idx + 1;
	e->port = a->port;
	uint32_t meta = atomic_load_explicit(&r->meta, memory_order_relaxed);
	if (!(meta & META_LIVE))
		atomic_fetch_add_explicit(&ps->nrecords, 1, memory_order_relaxed);
	/* An address makes the peer a live record (refreshed now). */
	atomic_fetch_or_explicit(&r->meta, META_ADDR | META_LIVE, memory_order_relaxed);
	if (!(meta & META_LIVE))
		atomic_store_explicit(&r->updated, now, memory_order_relaxed);
	pthread_mutex_unlock(&ps->mu);
	return 0;
}

int
mm_ps_get_addr(const mm_ps_t *ps, mm_pidx_t idx, mm_ps_addr_t *out)
{
	mm_ps_t *w = (mm_ps_t *)ps;
	int rc = -ENOENT;
	pthread_mutex_lock(&w->mu);
	struct addr_ent *e = w->naddr_slots ?
	    addr_slot(w->addrs, w->naddr_slots, idx + 1, false) : NULL;
	if (e != NULL) {
		if (e->is6) {
			memcpy(out->ip, w->v6[e->a - 1], 16);
		} else {
			memset(out->ip, 0, 10);
			out->ip[10] = out->ip[11] = 0xff;
			memcpy(out->ip + 12, &e->a, 4);
		}
		out->port = e->port;
		rc = 0;
	}
	pthread_mutex_unlock(&w->mu);
	return rc;
}

/* ---- garbage collection ------------------------------------------------------- */

/* Owner: drop idx's one-sided claims (phantoms). Called only for records
 * whose last event is older than the confirmation timeout: a claim cannot
 * be younger than its record's last event. Returns claims dropped. */
static unsigned
expire_phantoms(mm_ps_t *ps, mm_pidx_t idx)
{
	struct list l;
	uint32_t meta, seq;
	read_list(ps, idx, &l, &meta, &seq);
	unsigned dropped = 0;
	mm_pidx_t gone[MM_PS_MAX_NB];
	for (unsigned i = 0; i < l.n;) {
		if (reverse_dir(ps, idx, l.nb[i]) >= 0) {
			i++;
			continue;
		}
		gone[dropped++] = l.nb[i];
		l.nb[i] = l.nb[l.n - 1];
		l.dir[i] = l.dir[l.n - 1];
		l.n--;
	}
	if (dropped == 0)
		return 0;
	/* updated stays: expiring a phantom is not news from the peer. */
	if (write_list(ps, idx, &l, seq, mm_ps_updated(ps, idx),
	        meta & (META_LIVE | META_ADDR)) != 0)
		return 0;
	for (unsigned k = 0; k < dropped; k++)
		ref_add(ps, gone[k], -1);
	atomic_fetch_sub_explicit(&ps->claims, dropped, memory_order_relaxed);
	atomic_fetch_add_explicit(&ps->phantoms_expired, dropped,
	    memory_order_relaxed);
	return dropped;
}

/* Owner: empty idx's record (claims released), drop its address; tomb:
 * keep it as a tombstone (META_TOMB). */
static void
clear_record(mm_ps_t *ps, mm_pidx_t idx, uint32_t now, uint32_t tomb)
{
	struct list l, empty = {.n = 0};
	uint32_t meta, seq;
	read_list(ps, idx, &l, &meta, &seq);
	/* seq stays readable (mm_ps_seq), but a record that is not live
	 * takes any seq: its origin's next event restores it. */
	write_list(ps, idx, &empty, seq, mm_ps_updated(ps, idx), tomb);
	for (unsigned k = 0; k < l.n; k++)
		ref_add(ps, l.nb[k], -1);
	atomic_fetch_sub_explicit(&ps->claims, l.n, memory_order_relaxed);
	pthread_mutex_lock(&ps->mu);
	if (meta & META_ADDR)
		addr_remove_locked(ps, idx + 1);
	if (meta & META_LIVE)
		atomic_fetch_sub_explicit(&ps->nrecords, 1, memory_order_relaxed);
	maybe_free_locked(ps, idx, now);
	pthread_mutex_unlock(&ps->mu);
}

void
mm_ps_expire(mm_ps_t *ps, unsigned shard, uint32_t now, mm_ps_gc_t *out)
{
	mm_ps_gc_t gc = {0};
	uint32_t span = mm_ps_span(ps);
	for (mm_pidx_t i = 0; i < span; i++) {
		struct cold *c = cold_of(ps, i);
		uint32_t re = atomic_load_explicit(&c->refs_ev, memory_order_relaxed);
		if (!(re & COLD_USED) || mm_ps_shard_of(ps, c->id) != shard)
			continue;
		uint32_t meta = rec_meta(ps, i), age = now - mm_ps_updated(ps, i);
		if ((meta & META_TOMB) && age > ps->cfg.ttl_s) { /* the replays are over */
			atomic_fetch_and_explicit(&rec_of(ps, i)->meta, ~META_TOMB,
			    memory_order_relaxed);
			meta &= ~META_TOMB;
		}
		if ((meta & META_LIVE) && age > ps->cfg.ttl_s) {
			clear_record(ps, i, now, 0);
			gc.records++;
			continue;
		}
		if ((meta & META_LIVE) && META_N(meta) > 0 &&
		    age >= ps->cfg.confirm_timeout_s) {
			gc.phantoms += expire_phantoms(ps, i);
			meta = rec_meta(ps, i);
		}
		re = atomic_load_explicit(&c->refs_ev, memory_order_relaxed);
		/* Isolated: no claims, nobody claims it, no address, quiet for
		 * the confirmation timeout. A peer that died leaves exactly this
		 * once its neighbours' disconnects and its own phantoms are gone;
		 * keeping it until ttl_s would show it as a component of its own
		 * (a partition that is not there) for an hour. */
		if ((meta & META_LIVE) && META_N(meta) == 0 && !(meta & META_ADDR) &&
		    (re & REFS_MASK) == 0 && age >= ps->cfg.confirm_timeout_s) {
			/* A tombstone: other nodes' join-sync logs still hold its
			 * last event, and without its seq each replay brought it
			 * back (meshmap sim: one dead peer returned every ~70 s
			 * and every map reported a split). */
			clear_record(ps, i, now, META_TOMB);
			gc.records++;
			continue;
		}
		if (!(meta & META_LIVE) && (re & REFS_MASK) == 0) {
			pthread_mutex_lock(&ps->mu);
			gc.ids += maybe_free_locked(ps, i, now);
			pthread_mutex_unlock(&ps->mu);
		}
	}
	if (out != NULL)
		*out = gc;
}

unsigned
mm_ps_forget(mm_ps_t *ps, unsigned shard, const mm_pidx_t *idx, unsigned n,
    uint32_t now, uint32_t min_age_s)
{
	uint32_t span = mm_ps_span(ps);
	unsigned cleared = 0;
	for (unsigned k = 0; k < n; k++) {
		mm_pidx_t i = idx[k];
		if (i >= span)
			continue;
		struct cold *c = cold_of(ps, i);
		uint32_t re = atomic_load_explicit(&c->refs_ev, memory_order_relaxed);
		if (!(re & COLD_USED) || mm_ps_shard_of(ps, c->id) != shard ||
		    !(rec_meta(ps, i) & META_LIVE) || now - mm_ps_updated(ps, i) < min_age_s)
			continue;
		clear_record(ps, i, now, META_TOMB);
		cleared++;
	}
	return cleared;
}

/* Hop distances from self over confirmed edges (BFS), 255 = far/unknown. */
static uint8_t *
distances(const mm_ps_t *ps, mm_pidx_t self, uint32_t span)
{
	uint8_t *d = malloc(span ? span : 1);
	uint32_t *q = malloc(sizeof(uint32_t) * (span ? span : 1));
	if (d == NULL || q == NULL) {
		free(d);
		free(q);
		return NULL;
	}
	memset(d, 255, span);
	uint32_t h = 0, t = 0;
	if (self < span) {
		d[self] = 0;
		q[t++] = self;
	}
	mm_pidx_t nb[MM_PS_MAX_NB];
	while (h < t) {
		uint32_t u = q[h++];
		unsigned n = mm_ps_confirmed(ps, u, nb, MM_PS_MAX_NB);
		for (unsigned k = 0; k < n; k++)
			if (nb[k] < span && d[nb[k]] == 255) {
				d[nb[k]] = d[u] < 254 ? d[u] + 1 : 254;
				q[t++] = nb[k];
			}
	}
	free(q);
	return d;
}

unsigned
mm_ps_shed(mm_ps_t *ps, unsigned shard, mm_pidx_t self, unsigned n,
    uint32_t now)
{
	uint32_t span = mm_ps_span(ps);
	if (n == 0 || span == 0)
		return 0;
	uint8_t *dist = self != MM_PIDX_NONE ? distances(ps, self, span) : NULL;
	/* Keep the n victims in a max-heap on (updated asc, distance desc):
	 * memory O(n), not O(peers), since we run when memory is short. */
	struct victim {
		uint64_t key;
		mm_pidx_t idx;
	} *heap = malloc(sizeof(*heap) * n);
	if (heap == NULL) {
		free(dist);
		return 0;
	}
	unsigned hn = 0;
	for (mm_pidx_t i = 0; i < span; i++) {
		if (i == self || !(rec_meta(ps, i) & META_LIVE) ||
		    mm_ps_shard_of(ps, cold_of(ps, i)->id) != shard)
			continue;
		uint32_t upd = mm_ps_updated(ps, i);
		uint64_t key = ((uint64_t)upd << 8) | (uint64_t)(255 - (dist ? dist[i] : 255));
		if (hn < n) {
			unsigned c = hn++;
			while (c > 0 && heap[(c - 1) / 2].key < key) {
				heap[c] = heap[(c - 1) / 2];
				c = (c - 1) / 2;
			}
			heap[c] = (struct victim){key, i};
		} else if (key < heap[0].key) {
			unsigned c = 0;
			for (;;) {
				unsigned l = 2 * c + 1, r = l + 1, m = c;
				uint64_t mk = key;
				if (l < hn && heap[l].key > mk) { m = l; mk = heap[l].key; }
				if (r < hn && heap[r].key > mk) m = r;
				if (m == c)
					break;
				heap[c] = heap[m];
				c = m;
			}
			heap[c] = (struct victim){key, i};
		}
	}
	for (unsigned k = 0; k < hn; k++)
		clear_record(ps, heap[k].idx, now, 0);
	free(heap);
	free(dist);
	return hn;
}

/* ---- reads -------------------------------------------------------------------- */

const uint8_t *
mm_ps_id(const mm_ps_t *ps, mm_pidx_t idx)
{
	struct cold *c = cold_of(ps, idx);
	return c != NULL ? c->id : NULL;
}

unsigned
mm_ps_neighbours(const mm_ps_t *ps, mm_pidx_t idx, mm_pidx_t *out,
    uint8_t *dirs, unsigned cap)
{
	struct list l;
	if (!read_list(ps, idx, &l, NULL, NULL))
		return 0;
	unsigned n = l.n < cap ? l.n : cap;
	memcpy(out, l.nb, n * sizeof(mm_pidx_t));
	if (dirs != NULL)
		memcpy(dirs, l.dir, n);
	return n;
}

unsigned
mm_ps_confirmed(const mm_ps_t *ps, mm_pidx_t idx, mm_pidx_t *out, unsigned cap)
{
	struct list l;
	if (!read_list(ps, idx, &l, NULL, NULL))
		return 0;
	unsigned n = 0;
	for (unsigned i = 0; i < l.n && n < cap; i++) {
		int rd = reverse_dir(ps, idx, l.nb[i]);
		if (rd >= 0 && rd != l.dir[i])
			out[n++] = l.nb[i];
	}
	return n;
}

enum mm_ps_edge
mm_ps_edge_state(const mm_ps_t *ps, mm_pidx_t a, mm_pidx_t b)
{
	int ab = reverse_dir(ps, b, a); /* a's claim of b */
	int ba = reverse_dir(ps, a, b); /* b's claim of a */
	if (ab < 0 && ba < 0)
		return MM_EDGE_NONE;
	if (ba < 0)
		return MM_EDGE_PHANTOM_A;
	if (ab < 0)
		return MM_EDGE_PHANTOM_B;
	return ab != ba ? MM_EDGE_CONFIRMED : MM_EDGE_CONFLICT;
}

int
mm_ps_claim_dir(const mm_ps_t *ps, mm_pidx_t claimer, mm_pidx_t peer)
{
	return reverse_dir(ps, peer, claimer);
}

uint32_t
mm_ps_seq(const mm_ps_t *ps, mm_pidx_t idx)
{
	struct rec *r = rec_of(ps, idx);
	return r ? atomic_load_explicit(&r->seq, memory_order_relaxed) : 0;
}

uint32_t
mm_ps_updated(const mm_ps_t *ps, mm_pidx_t idx)
{
	struct rec *r = rec_of(ps, idx);
	return r ? atomic_load_explicit(&r->updated, memory_order_relaxed) : 0;
}

uint32_t
mm_ps_first_seen(const mm_ps_t *ps, mm_pidx_t idx)
{
	struct cold *c = cold_of(ps, idx);
	return c ? atomic_load_explicit(&c->first_seen, memory_order_relaxed) : 0;
}

unsigned
mm_ps_evidence(const mm_ps_t *ps, mm_pidx_t idx)
{
	struct cold *c = cold_of(ps, idx);
	return c ? (atomic_load_explicit(&c->refs_ev, memory_order_relaxed) >>
	    EV_SHIFT) & 0xffu : 0;
}

int
mm_ps_live(const mm_ps_t *ps, mm_pidx_t idx)
{
	return (rec_meta(ps, idx) & META_LIVE) != 0;
}

int
mm_ps_seq_binds(const mm_ps_t *ps, mm_pidx_t idx)
{
	return (rec_meta(ps, idx) & (META_LIVE | META_TOMB)) != 0;
}

void
mm_ps_stats(const mm_ps_t *ps, mm_ps_stats_t *out)
{
	mm_ps_t *w = (mm_ps_t *)ps;
	memset(out, 0, sizeof(*out));
	out->ids = atomic_load(&w->nids);
	out->records = atomic_load(&w->nrecords);
	out->claims = atomic_load(&w->claims);
	out->phantoms_expired = atomic_load(&w->phantoms_expired);
	out->evidence = atomic_load(&w->evidence);
	pthread_mutex_lock(&w->mu);
	out->addresses = w->naddrs;
	uint32_t chunks = 0;
	for (uint32_t k = 0; k < w->nchunks; k++)
		chunks += atomic_load_explicit(&w->hot[k], memory_order_relaxed) != NULL;
	out->bytes = sizeof(*w) + (size_t)chunks * CHUNK *
	    (sizeof(struct rec) + sizeof(struct cold)) +
	    (size_t)w->nchunks * 2 * sizeof(void *) +
	    w->tabs[w->ntabs - 1].len +
	    (size_t)w->naddr_slots * sizeof(struct addr_ent) +
	    (size_t)w->v6cap * 16 +
	    (size_t)w->novf_chunks * sizeof(void *) +
	    (size_t)((w->novf + OVF_CHUNK - 1) / OVF_CHUNK) * OVF_CHUNK *
	        sizeof(struct ovf_block);
	out->index_bytes = w->tabs[w->ntabs - 1].len;
	pthread_mutex_unlock(&w->mu);
}
