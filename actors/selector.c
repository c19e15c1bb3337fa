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

void
mm_sel_rank(const mm_ps_t *ps, const mm_pidx_t *nb, unsigned nnb,
    unsigned target, const uint8_t *cls, uint32_t ncls, mm_sel_cand_t *c,
    unsigned nc, uint64_t seed)
{
	for (unsigned i = 0; i < nc; i++) {
		mm_sel_cand_t *k = &c[i];
		mm_pidx_t ci = k->idx;
		k->tiebreak = (uint32_t)mm_siphash13(seed, i, &ci, sizeof(ci));
		if (ci == MM_PIDX_NONE || !mm_ps_live(ps, ci)) {
			k->other_comp = k->confirmed = k->across = 0;
			k->room = 1;
			k->overlap = 0;
			k->first_seen = UINT32_MAX;
			continue;
		}
		mm_pidx_t tmp[MM_PS_MAX_NB];
		k->confirmed = mm_ps_confirmed(ps, ci, tmp, 1) > 0;
		k->room = mm_ps_neighbours(ps, ci, tmp, NULL, MM_PS_MAX_NB) < target;
		uint8_t cl = cls != NULL && ci < ncls ? cls[ci] : 0;
		/* another component only if it is part of one (a confirmed
		 * edge): a lone record is unknown, not a partition */
		k->other_comp = cl == 3 && k->confirmed;
		k->across = cl == 2;
		k->overlap = (uint16_t)overlap_of(ps, ci, nb, nnb);
		k->first_seen = mm_ps_first_seen(ps, ci);
	}
	qsort(c, nc, sizeof(*c), cmp);
}

int
mm_sel_worst(const mm_ps_t *ps, const mm_pidx_t *nb, unsigned nnb,
    const uint8_t *eligible, const uint64_t *since, unsigned *overlap)
{
	int worst = -1;
	unsigned wo = 0;
	for (unsigned i = 0; i < nnb; i++) {
		if (!eligible[i])
			continue;
		unsigned o = nb[i] == MM_PIDX_NONE ? 0 : overlap_of(ps, nb[i], nb, nnb);
		if (worst < 0 || o > wo || (o == wo && since[i] > since[worst])) {
			worst = (int)i;
			wo = o;
		}
	}
	if (overlap != NULL)
		*overlap = wo;
	return worst;
}
