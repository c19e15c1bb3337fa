/*
 * Neighbour selection (seed paper §3.3, §4.1): which candidate to dial and
 * which neighbour to drop, computed from the map alone (no I/O, no clock:
 * the node and the simulator call it the same way).
 *
 * A candidate is ranked by, in order:
 *   1. other_comp: it sits in another component of the confirmed graph than
 *      ours (a partition to join) - first. The classes come from the
 *      last analysis; a candidate that has a confirmed link into our
 *      component since is not in another one;
 *   1b. thin (when the policy sets thin_below): fewer than thin_below
 *      confirmed neighbours - last. A peer whose only links are to us and
 *      a few others looks like a perfect neighbour to 2-4 (room, no
 *      overlap), and that is the shape of a lone eclipse attacker
 *      (docs/RESULTS-SIM.md, "Eclipse attempts");
 *   2. room: it claims fewer than target neighbours (or is not in our map
 *      yet) - first: linking to a full peer makes it drop someone, which
 *      only moves the missing link elsewhere;
 *   3. across a bridge: it sits in our component but beyond a bridge
 *      (linking to it would make that bridge redundant: seed §4.1,
 *      partition early warning) - first;
 *   4. overlap: |its confirmed neighbours ∩ our neighbours| - lower first;
 *   5. confirmed: it holds at least one confirmed edge (it is known to be
 *      up) - before an unconfirmed or unknown one;
 *   6. first_seen: older in our map first (long-lived peers are worth more
 *      and are costlier for an attacker to fake);
 *   7. a random tiebreak, so that nodes with the same view spread out.
 * RTT does not take part: it is only known for peers we are connected to.
 *
 * The worst neighbour is the one whose confirmed neighbours overlap most
 * with our other neighbours (it adds the least reach); ties go to the
 * youngest link. A replacement is worth it when the best candidate's
 * overlap plus the margin is at most the worst neighbour's overlap.
 */
#ifndef MM_SELECTOR_H
#define MM_SELECTOR_H

#include "peerstore.h"
#include "psquery.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Policies, for comparing them (meshmap sim --policy): ours, uniformly
 * random (a random regular graph, as RIPE Atlas-like overlays build: only
 * room and a random draw; never a replacement), and Kademlia-like XOR
 * buckets (a candidate's "overlap" is how many of our neighbours share its
 * bucket, clz(our id ^ its id); the worst neighbour is one in the most
 * crowded bucket; older peers first, as Kademlia keeps long-lived ones;
 * no partition or bridge awareness). */
enum { MM_SEL_OVERLAP = 0, MM_SEL_RANDOM = 1, MM_SEL_KADEMLIA = 2 };
typedef struct mm_sel_policy {
	int kind;
	const uint8_t *self; /* our id (MM_SEL_KADEMLIA) */
	unsigned thin_below; /* candidates with fewer confirmed neighbours
	                      * rank last, under every policy (0: off) */
} mm_sel_policy_t;

typedef struct mm_sel_cand {
	mm_pidx_t idx;        /* in the map; MM_PIDX_NONE: not in it (yet) */
	uint32_t tag;         /* the caller's, kept */
	const uint8_t *id;    /* the caller's: its id (MM_SEL_KADEMLIA; NULL: from the map) */
	uint8_t known_long;   /* the caller's: its address has been known for a
	                       * while and its peer was never seen well linked
	                       * (the node's full_seen); if the map has no live
	                       * record of it by now, it counts as thin
	                       * (thin_below set) */
	/* set by mm_sel_rank */
	uint8_t other_comp;
	uint8_t thin;
	uint8_t room;
	uint8_t across;
	uint8_t confirmed;
	uint16_t overlap;
	uint32_t first_seen;
	uint32_t tiebreak;
} mm_sel_cand_t;

/* Score every candidate against our neighbour set nb[nnb] and sort them,
 * best first. target: the degree peers aim for. cls[ncls]: the classes
 * of mm_psq_bridge_side from our last analysis of the map (NULL: none yet;
 * an index at or past ncls counts as unknown). seed: for the random
 * tiebreak. */
void mm_sel_rank(const mm_ps_t *ps, const mm_pidx_t *nb, unsigned nnb,
    unsigned target, const uint8_t *cls, uint32_t ncls, mm_sel_cand_t *c,
    unsigned nc, uint64_t seed);
/* The same under another policy (pol NULL: ours). */
void mm_sel_rank_policy(const mm_sel_policy_t *pol, const mm_ps_t *ps,
    const mm_pidx_t *nb, unsigned nnb, unsigned target, const uint8_t *cls,
    uint32_t ncls, mm_sel_cand_t *c, unsigned nc, uint64_t seed);
/* Is a ranked before b? */
int mm_sel_before(const mm_sel_cand_t *a, const mm_sel_cand_t *b);

/* The worst of our neighbours nb[nnb] (its index in nb), considering only
 * those with eligible[i] != 0; since[i] (link age stamps, larger = younger)
 * breaks ties towards the youngest. Returns -1 if none is eligible;
 * *overlap gets its overlap. */
int mm_sel_worst(const mm_ps_t *ps, const mm_pidx_t *nb, unsigned nnb,
    const uint8_t *eligible, const uint64_t *since, unsigned *overlap);
int mm_sel_worst_policy(const mm_sel_policy_t *pol, const mm_ps_t *ps,
    const mm_pidx_t *nb, unsigned nnb, const uint8_t *eligible,
    const uint64_t *since, unsigned *overlap);

#ifdef __cplusplus
}
#endif
#endif
