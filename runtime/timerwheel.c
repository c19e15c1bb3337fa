#include "timerwheel.h"

#include <string.h>

#define MASK (MM_TW_SLOTS - 1)
#define SPAN(l) (UINT64_C(1) << (MM_TW_BITS * (l)))

void
mm_tw_init(mm_tw_t *tw, uint64_t now)
{
	memset(tw, 0, sizeof(*tw));
	tw->next = now;
}

static void
link_slot(mm_tw_t *tw, unsigned l, unsigned s, mm_timer_t *t)
{
	mm_timer_t **head = &tw->slot[l][s];
	t->next = *head;
	if (t->next != NULL)
		t->next->pprev = &t->next;
	t->pprev = head;
	*head = t;
	tw->occ[l] |= UINT64_C(1) << s;
}

static void
place(mm_tw_t *tw, mm_timer_t *t)
{
	uint64_t e = t->expires < tw->next ? tw->next : t->expires;
	uint64_t idx = e - tw->next;
	unsigned l = 0;

	while (l < MM_TW_LEVELS - 1 && idx >= SPAN(l + 1))
		l++;
	if (idx >= SPAN(MM_TW_LEVELS))
		e = tw->next + SPAN(MM_TW_LEVELS) - 1; /* re-placed on cascade */
	link_slot(tw, l, (unsigned)(e >> (MM_TW_BITS * l)) & MASK, t);
}

void
mm_tw_add(mm_tw_t *tw, mm_timer_t *t)
{
	place(tw, t);
	tw->count++;
}

void
mm_tw_del(mm_tw_t *tw, mm_timer_t *t)
{
	if (t->pprev == NULL)
		return;
	mm_timer_t **pp = t->pprev;
	*pp = t->next;
	if (t->next != NULL)
		t->next->pprev = pp;
	/* If t headed a wheel slot that is now empty, clear its bit. (A timer
	 * in a list being fired has pprev outside the wheel.) */
	mm_timer_t **base = &tw->slot[0][0];
	if (*pp == NULL && pp >= base && pp < base + MM_TW_LEVELS * MM_TW_SLOTS) {
		size_t i = (size_t)(pp - base);
		tw->occ[i / MM_TW_SLOTS] &= ~(UINT64_C(1) << (i % MM_TW_SLOTS));
	}
	t->next = NULL;
	t->pprev = NULL;
	tw->count--;
}

/* Move slot (l, s) down: each timer is re-placed relative to tw->next. */
static void
cascade(mm_tw_t *tw, unsigned l, unsigned s)
{
	mm_timer_t *t = tw->slot[l][s];
	tw->slot[l][s] = NULL;
	tw->occ[l] &= ~(UINT64_C(1) << s);
	while (t != NULL) {
		mm_timer_t *n = t->next;
		place(tw, t);
		t = n;
	}
}

static uint64_t
rotr64(uint64_t x, unsigned r)
{
	r &= 63;
	return r == 0 ? x : (x >> r) | (x << (64 - r));
}

/*
 * The first tick >= tw->next at which advancing does anything: a level-0
 * slot that is due, or a boundary where a non-empty slot of a higher level
 * cascades (at a multiple of 64^l, levels 1..l cascade their current slot).
 * Ticks in between can be skipped wholesale.
 */
static uint64_t
next_tick(const mm_tw_t *tw)
{
	if (tw->count == 0)
		return UINT64_MAX;
	uint64_t tick = tw->next, best = UINT64_MAX;
	unsigned s0 = (unsigned)tick & MASK;

	if (tw->occ[0] != 0) {
		uint64_t ahead = tw->occ[0] >> s0;
		/* Slots below s0 hold deadlines of the next rotation. */
		best = ahead != 0 ? tick + (uint64_t)__builtin_ctzll(ahead) :
		    (tick | MASK) + 1 + (uint64_t)__builtin_ctzll(tw->occ[0]);
	}
	for (unsigned l = 1; l < MM_TW_LEVELS; l++) {
		if (tw->occ[l] == 0)
			continue;
		unsigned sh = MM_TW_BITS * l;
		uint64_t blk = tick >> sh;
		/* k = 0 when tick itself is a boundary of this level. */
		unsigned k0 = (tick & (SPAN(l) - 1)) == 0 ? 0 : 1;
		uint64_t rot = rotr64(tw->occ[l], (unsigned)(blk + k0));
		uint64_t at = (blk + k0 + (uint64_t)__builtin_ctzll(rot)) << sh;
		if (at < best)
			best = at;
	}
	return best;
}

uint64_t
mm_tw_advance(mm_tw_t *tw, uint64_t now, void (*fire)(mm_timer_t *, void *),
    void *ctx)
{
	uint64_t fired = 0;

	while (tw->next <= now) {
		uint64_t tick = tw->next;
		unsigned s0 = (unsigned)tick & MASK;

		if (s0 == 0) {
			for (unsigned l = 1; l < MM_TW_LEVELS; l++) {
				unsigned s = (unsigned)(tick >> (MM_TW_BITS * l)) & MASK;
				cascade(tw, l, s);
				if (s != 0)
					break;
			}
		}
		if ((tw->occ[0] & (UINT64_C(1) << s0)) == 0) {
			/* Nothing due now: skip to the next tick with work. */
			tw->next = tick + 1;
			uint64_t nt = next_tick(tw);
			tw->next = nt > now ? now + 1 : nt;
			continue;
		}

		tw->next = tick + 1;
		/* Detach the slot; keep it a valid list so that fire() may
		 * cancel timers still waiting in it. */
		mm_timer_t *pending = tw->slot[0][s0];
		tw->slot[0][s0] = NULL;
		tw->occ[0] &= ~(UINT64_C(1) << s0);
		pending->pprev = &pending;
		while (pending != NULL) {
			mm_timer_t *t = pending;
			pending = t->next;
			if (pending != NULL)
				pending->pprev = &pending;
			t->next = NULL;
			t->pprev = NULL;
			tw->count--;
			fired++;
			fire(t, ctx);
		}
	}
	return fired;
}

uint64_t
mm_tw_next(const mm_tw_t *tw, uint64_t now)
{
	uint64_t at = next_tick(tw);
	if (at == UINT64_MAX)
		return UINT64_MAX;
	return at <= now ? 0 : at - now;
}
