#include "selector.h"

#include <stdlib.h>

#include "siphash.h"

/* |confirmed(c) ∩ set|, leaving out c itself: a neighbour is never its own
 * neighbour, but a candidate may be in the set when the caller scores a
 * current neighbour against the others. */
static unsigned
overlap_of(const mm_ps_t *ps, mm_pidx_t c, const mm_pidx_t *set, unsigned nset)
{
	mm_pidx_t nb[MM_PS_MAX_NB];
	unsigned n = mm_ps_confirmed(ps, c, nb, MM_PS_MAX_NB), o = 0;
	/* Both sides hold at most 32 entries: a double loop is cheapest. */
	for (unsigned i = 0; i < n; i++)
		for (unsigned j = 0; j < nset; j++)
			if (nb[i] == set[j] && set[j] != c) {
				o++;
				break;
			}
	return o;
}

int
mm_sel_before(const mm_sel_cand_t *a, const mm_sel_cand_t *b)
{
	if (a->other_comp != b->other_comp)
		return a->other_comp > b->other_comp;
	if (a->thin != b->thin)
		return a->thin < b->thin;
	if (a->room != b->room)
		return a->room > b->room;
	if (a->across != b->across)
		return a->across > b->across;
	if (a->overlap != b->overlap)
		return a->overlap < b->overlap;
	if (a->confirmed != b->confirmed)
		return a->confirmed > b->confirmed;
	if (a->first_seen != b->first_seen)
		return a->first_seen < b->first_seen;
	return a->tiebreak < b->tiebreak;
}

static int
cmp(const void *x, const void *y)
{
	const mm_sel_cand_t *a = x, *b = y;
	return mm_sel_before(a, b) ? -1 : mm_sel_before(b, a) ? 1 : 0;
}

/* Kademlia bucket of id seen from self: leading bits in common. */
static unsigned
bucket_of(const uint8_t *self, const uint8_t *id)
{
	for (unsigned i = 0; i < 32; i++) {
		uint8_t x = self[i] ^ id[i];
		if (x != 0)
			return i * 8 + (unsigned)__builtin_clz(x) - 24;
	}
	return 256;
}

/* How many of nb[nnb] (other than skip) share the bucket of id. */
static unsigned
bucket_crowd(const mm_ps_t *ps, const uint8_t *self, const uint8_t *id,
    const mm_pidx_t *nb, unsigned nnb, mm_pidx_t skip)
{
	unsigned b = bucket_of(self, id), k = 0;
	for (unsigned j = 0; j < nnb; j++) {
		const uint8_t *o = nb[j] != MM_PIDX_NONE && nb[j] != skip ? mm_ps_id(ps, nb[j]) : NULL;
		k += o != NULL && bucket_of(self, o) == b;
	}
	return k;
}

void
mm_sel_rank(const mm_ps_t *ps, const mm_pidx_t *nb, unsigned nnb,
    unsigned target, const uint8_t *cls, uint32_t ncls, mm_sel_cand_t *c,
    unsigned nc, uint64_t seed)
{
	mm_sel_rank_policy(NULL, ps, nb, nnb, target, cls, ncls, c, nc, seed);
}

void
mm_sel_rank_policy(const mm_sel_policy_t *pol, const mm_ps_t *ps,
    const mm_pidx_t *nb, unsigned nnb, unsigned target, const uint8_t *cls,
    uint32_t ncls, mm_sel_cand_t *c, unsigned nc, uint64_t seed)
{
	int kind = pol != NULL ? pol->kind : MM_SEL_OVERLAP;
	for (unsigned i = 0; i < nc; i++) {
		mm_sel_cand_t *k = &c[i];
		mm_pidx_t ci = k->idx;
		k->tiebreak = (uint32_t)mm_siphash13(seed, i, &ci, sizeof(ci));
		if (ci == MM_PIDX_NONE || !mm_ps_live(ps, ci)) {
			/* an address only: a newcomer, or a peer that has had
			 * no confirmed link long enough to be swept from the map
			 * (a lone attacker we dropped) */
			k->other_comp = k->confirmed = k->across = 0;
			k->thin = pol != NULL && pol->thin_below != 0 && k->known_long;
			k->room = 1;
			k->overlap = 0;
			k->first_seen = UINT32_MAX;
			continue;
		}
		mm_pidx_t tmp[MM_PS_MAX_NB];
		unsigned nconf = mm_ps_confirmed(ps, ci, tmp, MM_PS_MAX_NB);
		k->confirmed = nconf > 0;
		k->thin = pol != NULL && nconf < pol->thin_below;
		uint8_t cl = cls != NULL && ci < ncls ? cls[ci] : 0;
		/* another component only if it is part of one (a confirmed
		 * edge): a lone record is unknown, not a partition. The
		 * classes are from the last analysis (analyse_ms): a peer that
		 * was alone then (it had left) and has since linked to one of
		 * ours is back in our component, not across a partition.
		 * Without this check, under churn every node at its target
		 * dialled each returning node for up to analyse_ms, and each
		 * such link made the dialler drop a neighbour: 1,744 of those
		 * links in 300 s of 100 nodes (meshmap sim --churn 300). */
		k->other_comp = cl == 3 && k->confirmed;
		for (unsigned j = 0; j < nconf && k->other_comp; j++)
			k->other_comp = !(tmp[j] < ncls && (cls[tmp[j]] == 1 || cls[tmp[j]] == 2));
		k->room = mm_ps_neighbours(ps, ci, tmp, NULL, MM_PS_MAX_NB) < target;
		k->across = cl == 2;
		k->overlap = (uint16_t)overlap_of(ps, ci, nb, nnb);
		k->first_seen = mm_ps_first_seen(ps, ci);
	}
	for (unsigned i = 0; i < nc && kind != MM_SEL_OVERLAP; i++) {
		mm_sel_cand_t *k = &c[i];
		/* neither knows the map's components or bridges */
		k->other_comp = k->across = 0;
		if (kind == MM_SEL_RANDOM) {
			k->overlap = 0;
			k->confirmed = 0;
			k->first_seen = 0;
			continue;
		}
		const uint8_t *id = k->id != NULL ? k->id :
		    k->idx != MM_PIDX_NONE ? mm_ps_id(ps, k->idx) : NULL;
		k->overlap = id != NULL && pol->self != NULL ?
		    (uint16_t)bucket_crowd(ps, pol->self, id, nb, nnb, MM_PIDX_NONE) : 0;
	}
	qsort(c, nc, sizeof(*c), cmp);
}

int
mm_sel_worst(const mm_ps_t *ps, const mm_pidx_t *nb, unsigned nnb,
    const uint8_t *eligible, const uint64_t *since, unsigned *overlap)
{
	return mm_sel_worst_policy(NULL, ps, nb, nnb, eligible, since, overlap);
}

int
mm_sel_worst_policy(const mm_sel_policy_t *pol, const mm_ps_t *ps,
    const mm_pidx_t *nb, unsigned nnb, const uint8_t *eligible,
    const uint64_t *since, unsigned *overlap)
{
	int kind = pol != NULL ? pol->kind : MM_SEL_OVERLAP;
	int worst = -1;
	unsigned wo = 0;
	for (unsigned i = 0; i < nnb; i++) {
		if (!eligible[i])
			continue;
		const uint8_t *id = nb[i] != MM_PIDX_NONE ? mm_ps_id(ps, nb[i]) : NULL;
		/* random: all equal (the youngest goes); kademlia: the others
		 * in its bucket */
		unsigned o = nb[i] == MM_PIDX_NONE || kind == MM_SEL_RANDOM ? 0 :
		    kind == MM_SEL_KADEMLIA ? (id != NULL && pol->self != NULL ?
		    bucket_crowd(ps, pol->self, id, nb, nnb, nb[i]) : 0) :
		    overlap_of(ps, nb[i], nb, nnb);
		if (worst < 0 || o > wo || (o == wo && since[i] > since[worst])) {
			worst = (int)i;
			wo = o;
		}
	}
	if (overlap != NULL)
		*overlap = wo;
	return worst;
}
