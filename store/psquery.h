/*
 * Read-only queries over the PeerStore (any thread, no locks). They run on
 * the live map: each record is read consistently, the map as a whole may
 * change underneath (gossip is eventually consistent anyway).
 *
 * A query context holds the scratch memory of one thread's queries; it grows
 * to the store's span and is reused, so a query allocates nothing once warm.
 */
#ifndef MM_PSQUERY_H
#define MM_PSQUERY_H

#include "peerstore.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mm_psq mm_psq_t;
mm_psq_t *mm_psq_new(void);
void mm_psq_free(mm_psq_t *q);

/* |confirmed neighbours of cand  ∩  set| (seed §3.3). */
unsigned mm_ps_overlap(const mm_ps_t *ps, mm_psq_t *q, mm_pidx_t cand,
    const mm_pidx_t *set, unsigned nset);

/* The k candidates with the least overlap with set, best first (ties: the
 * lower index). Returns how many were written to out (and overlaps[] if not
 * NULL). Candidates in set themselves are skipped. */
unsigned mm_ps_topk_least_overlap(const mm_ps_t *ps, mm_psq_t *q,
    const mm_pidx_t *cands, unsigned ncand, const mm_pidx_t *set,
    unsigned nset, unsigned k, mm_pidx_t *out, unsigned *overlaps);

/* Shortest path src -> dst over confirmed edges (BFS). Writes the path,
 * src first, dst last, and returns its number of nodes; -ENOENT if dst is
 * unreachable, -ENOSPC if cap is too small, -ENOMEM. */
int mm_ps_path(const mm_ps_t *ps, mm_psq_t *q, mm_pidx_t src, mm_pidx_t dst,
    mm_pidx_t *path, unsigned cap);

/* Mark every index reachable from src over confirmed edges (src's
 * component). Returns how many (src included), 0 for an unknown src, or
 * -ENOMEM. mm_psq_reached answers for that set until the next query on q. */
int mm_ps_reach(const mm_ps_t *ps, mm_psq_t *q, mm_pidx_t src);
int mm_psq_reached(const mm_psq_t *q, mm_pidx_t idx);

/* A digest of the confirmed graph that two nodes (or a test that knows
 * the true links) can compare: the sum, modulo 2^64, of mm_ps_edge_hash
 * over every confirmed edge. mm_ps_edge_hash is SipHash-1-3 under the zero
 * key of (lower id || higher id). *nedges (optional) gets the edge count. */
uint64_t mm_ps_edge_hash(const uint8_t a[MM_ID_LEN], const uint8_t b[MM_ID_LEN]);
uint64_t mm_ps_edges_digest(const mm_ps_t *ps, uint64_t *nedges);

/* Whole-map analysis over a snapshot of the confirmed graph: components
 * (every live record counts, isolated ones as components of one), largest
 * component, and optionally bridges and articulation points (seed §4.1,
 * partition warnings). Each edge is checked once; components use
 * union-find (8 bytes per index of scratch); bridges and articulation
 * points need the confirmed graph as adjacency arrays (about 24 bytes per
 * index plus 16 per confirmed edge, held in the context). */
typedef struct mm_ps_graph {
	uint32_t nodes;        /* live records */
	uint64_t edges;        /* confirmed edges */
	uint32_t components;
	uint32_t isolated;     /* components of one record: a peer that left
	                        * (its links retracted) or one not linked yet */
	uint32_t largest;
	uint32_t bridges;
	uint32_t articulation;
} mm_ps_graph_t;
int mm_ps_analyse(const mm_ps_t *ps, mm_psq_t *q, int want_cuts,
    mm_ps_graph_t *out);

/* Right after mm_ps_analyse(want_cuts = 1) on the same q (no other query
 * in between): classify every index below ncls (and below the span the
 * analysis saw) against src.
 * cls[i] = 1: in src's 2-edge-connected part (reachable without crossing a
 * bridge); 2: in src's component, across at least one bridge; 3: a live
 * record in another component; 0: neither (not live). A link from src to a
 * class-2 peer would stop at least one bridge being a bridge; to a class-3
 * peer, join two components. Returns the size of class 1. */
int mm_psq_bridge_side(const mm_ps_t *ps, mm_psq_t *q, mm_pidx_t src, uint8_t *cls,
    uint32_t ncls);
/* Right after mm_ps_analyse(want_cuts = 1) on the same q: is the
 * confirmed edge u-v a bridge of that analysis? (0 for any other pair.) */
int mm_psq_is_bridge(const mm_psq_t *q, mm_pidx_t u, mm_pidx_t v);

#ifdef __cplusplus
}
#endif
#endif
