/*
 * PeerStore: the global map of who is connected to whom (seed paper §3.1,
 * §4.2, §7.2).
 *
 * Model. Every known peer has a record holding what *that peer* claims: its
 * neighbour list, each neighbour with a direction (in: it accepted, out: it
 * dialled), plus the sequence number of its last applied event. Edge state
 * is derived from the two records of an edge:
 *   confirmed - A claims B and B claims A, with opposite directions;
 *   phantom   - only one side claims it; dropped by the expiry sweep once
 *               the claimer's last event is confirm_timeout_s old (a claim
 *               is never younger than its record's last event; each peer
 *               holds at most max_neighbours_temp claims, so phantoms are
 *               bounded without a queue);
 *   conflict  - both claim it with the same direction (evidence).
 * Storing claims rather than edges keeps a record to one cache line and
 * makes confirmation free: nobody writes another peer's record.
 *
 * Ids are interned to 32-bit indices (MM_PIDX_NONE = none); neighbour lists
 * are index arrays.
 *
 * Threads. The store is sharded by peer id (mm_ps_shard_of). Writes that
 * concern origin O (apply, set_neighbours, set_addr, expire, shed) must come
 * from the one owner of shard_of(O): one active writer per shard. Interning
 * new ids takes a short mutex (new peers are rare next to events). Readers
 * (lookups, neighbour lists, queries) run on any thread without locks; each
 * record is read under its own seqlock, so a reader never sees a torn
 * neighbour list. A lock-free lookup racing with the eviction of another id,
 * or with the index doubling, may miss once (the caller sees "unknown");
 * interning never does.
 *
 * Memory. Records (64 bytes) and cold entries (40 bytes: id, first seen,
 * references, evidence) live in chunks of 256 allocated on demand and never
 * moved; the id index is an open-addressing table of 32-bit slots that
 * doubles as ids come (load at most 0.8), up to the size for max_peers.
 * Nothing grows past max_peers: interning fails with -ENOSPC and the caller
 * sheds (mm_ps_shed).
 */
#ifndef MM_PEERSTORE_H
#define MM_PEERSTORE_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uint32_t mm_pidx_t;
#define MM_PIDX_NONE UINT32_MAX
#define MM_ID_LEN 32

#define MM_PS_INLINE_NB 12 /* neighbours held in the record itself */
#define MM_PS_MAX_NB 32    /* upper bound for max_neighbours_temp */

typedef struct mm_ps mm_ps_t;

typedef struct mm_ps_config {
	uint32_t max_peers;          /* default 131072 */
	unsigned max_neighbours;     /* normal degree, default 12 */
	unsigned max_neighbours_temp;/* temporary maximum, default 16 (<= 32) */
	unsigned shards;             /* power of two, default 1 */
	uint32_t confirm_timeout_s;  /* phantom lifetime, default 60 */
	uint32_t ttl_s;              /* record lifetime without refresh, 3600 */
	uint64_t hash_key[2];        /* SipHash key; 0,0 = random */
} mm_ps_config_t;

void mm_ps_config_default(mm_ps_config_t *cfg);
int mm_ps_create(const mm_ps_config_t *cfg, mm_ps_t **out);
void mm_ps_destroy(mm_ps_t *ps);

unsigned mm_ps_shard_of(const mm_ps_t *ps, const uint8_t id[MM_ID_LEN]);
unsigned mm_ps_shards(const mm_ps_t *ps);

/* ---- writes (owner of the origin's shard) ---- */

enum mm_ps_kind { MM_PS_CONNECT = 1, MM_PS_DISCONNECT = 2 };
enum mm_ps_dir { MM_PS_IN = 0, MM_PS_OUT = 1 };

typedef struct mm_ps_event {
	const uint8_t *origin; /* the peer reporting, 32 bytes */
	const uint8_t *peer;   /* the other end, 32 bytes */
	uint8_t kind;          /* enum mm_ps_kind */
	uint8_t dir;           /* enum mm_ps_dir, as seen by origin */
	uint32_t seq;          /* origin's sequence number, > 0 */
	uint32_t now;          /* store clock, seconds */
} mm_ps_event_t;

/* Results of mm_ps_apply (>= 0) and evidence against the origin (< 0 except
 * -ENOSPC/-EINVAL, which are not the origin's fault). */
enum {
	MM_PS_APPLIED = 0,     /* the map changed */
	MM_PS_STALE = 1,       /* seq <= last applied: nothing changed */
	MM_PS_NOOP = 2,        /* newer seq, but nothing to change */
	MM_PS_EV_SELF = -1001,     /* claims an edge to itself */
	MM_PS_EV_TOO_MANY = -1002, /* over max_neighbours_temp */
	MM_PS_EV_CONFLICT = -1003  /* same direction as the other end's claim */
};
/* A disconnect from a neighbour the store never saw is MM_PS_NOOP, not
 * evidence: on a lossy network the connect may simply have been missed. */

int mm_ps_apply(mm_ps_t *ps, const mm_ps_event_t *ev);

/* Replace origin's whole list (anti-entropy, join): ids[n][32], dirs[n]. */
int mm_ps_set_neighbours(mm_ps_t *ps, const uint8_t *origin, uint32_t seq,
    uint32_t now, const uint8_t (*ids)[MM_ID_LEN], const uint8_t *dirs,
    unsigned n);

/* A dialable address (IPv4 as ::ffff:a.b.c.d). port 0 removes it. */
typedef struct mm_ps_addr {
	uint8_t ip[16];
	uint16_t port;
} mm_ps_addr_t;
int mm_ps_set_addr(mm_ps_t *ps, const uint8_t *id, const mm_ps_addr_t *a,
    uint32_t now);

/* For one shard: drop phantoms of records whose last event is
 * confirm_timeout_s old, evict records not refreshed within ttl_s and
 * isolated records (no claims, claimed by nobody, no address, no event for
 * confirm_timeout_s: a dead peer), free ids nothing refers to any more. Costs one pass over the shard (run it every
 * few seconds). Returns what was removed. */
typedef struct mm_ps_gc {
	uint32_t phantoms, records, ids;
} mm_ps_gc_t;
void mm_ps_expire(mm_ps_t *ps, unsigned shard, uint32_t now, mm_ps_gc_t *out);

/* For one shard: clear the records among idx[n] that it owns, that are
 * live and that had no event of their own for min_age_s (the caller found
 * them unreachable from us over confirmed edges: a crashed region, or the
 * far side of a long partition). Each is kept as a tombstone: replays of their old events (from other nodes'
 * logs) are stale, while the origin's next event restores the record.
 * The id is freed ttl_s after its last event. Returns how many were
 * cleared. */
unsigned mm_ps_forget(mm_ps_t *ps, unsigned shard, const mm_pidx_t *idx, unsigned n,
    uint32_t now, uint32_t min_age_s);

/* Memory pressure: evict up to n records of the shard, stalest first and,
 * among equally stale ones, the farthest from `self` (hops over confirmed
 * edges; self = MM_PIDX_NONE: staleness only). Returns records evicted. */
unsigned mm_ps_shed(mm_ps_t *ps, unsigned shard, mm_pidx_t self, unsigned n,
    uint32_t now);

/* ---- reads (any thread) ---- */

mm_pidx_t mm_ps_lookup(const mm_ps_t *ps, const uint8_t id[MM_ID_LEN]);
/* out[i] = mm_ps_lookup of the id at ids + i * stride, for i < n: the
 * same answers, with the cache misses of a batch overlapped (for the
 * entries of ihave and digest frames). */
void mm_ps_lookup_many(const mm_ps_t *ps, const uint8_t *ids, size_t stride,
    unsigned n, mm_pidx_t *out);
/* The id of idx (stable while idx is live). */
const uint8_t *mm_ps_id(const mm_ps_t *ps, mm_pidx_t idx);
/* Consistent copy of idx's claimed neighbours (out[cap], dirs optional).
 * Returns the count, or 0 for an unknown index. */
unsigned mm_ps_neighbours(const mm_ps_t *ps, mm_pidx_t idx, mm_pidx_t *out,
    uint8_t *dirs, unsigned cap);
/* Confirmed neighbours only. */
unsigned mm_ps_confirmed(const mm_ps_t *ps, mm_pidx_t idx, mm_pidx_t *out,
    unsigned cap);

enum mm_ps_edge {
	MM_EDGE_NONE = 0,
	MM_EDGE_PHANTOM_A = 1, /* only a claims it */
	MM_EDGE_PHANTOM_B = 2, /* only b claims it */
	MM_EDGE_CONFIRMED = 3,
	MM_EDGE_CONFLICT = 4
};
enum mm_ps_edge mm_ps_edge_state(const mm_ps_t *ps, mm_pidx_t a, mm_pidx_t b);

/* claimer's claim of peer: -1 if none, else its direction (one record
 * read, no copy: the building block of confirmation checks). */
int mm_ps_claim_dir(const mm_ps_t *ps, mm_pidx_t claimer, mm_pidx_t peer);

int mm_ps_get_addr(const mm_ps_t *ps, mm_pidx_t idx, mm_ps_addr_t *out);
uint32_t mm_ps_seq(const mm_ps_t *ps, mm_pidx_t idx);
uint32_t mm_ps_updated(const mm_ps_t *ps, mm_pidx_t idx);
uint32_t mm_ps_first_seen(const mm_ps_t *ps, mm_pidx_t idx);
unsigned mm_ps_evidence(const mm_ps_t *ps, mm_pidx_t idx);
/* One past the highest index ever used: iterate [0, mm_ps_span). */
uint32_t mm_ps_span(const mm_ps_t *ps);
/* Is idx a live record (a peer that reported or has an address)? */
int mm_ps_live(const mm_ps_t *ps, mm_pidx_t idx);
/* Does idx's seq make older events of its origin stale? Yes while it is
 * live, and while it is a tombstone (mm_ps_forget) until ttl_s after its
 * last event: replays of a forgotten origin's old events do not bring it
 * back. */
int mm_ps_seq_binds(const mm_ps_t *ps, mm_pidx_t idx);

typedef struct mm_ps_stats {
	uint32_t ids;        /* interned ids (records + ids only referenced) */
	uint32_t records;    /* live records */
	uint32_t addresses;
	uint64_t claims;     /* neighbour-list entries */
	uint64_t phantoms_expired;
	uint64_t evidence;   /* evidence events recorded */
	size_t bytes;        /* memory held by the store */
	size_t index_bytes;  /* of which the id index: mapped pages, apart
	                      * from the allocator (not in jemalloc's stats) */
} mm_ps_stats_t;
void mm_ps_stats(const mm_ps_t *ps, mm_ps_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif
