/*
 * Hierarchical timer wheel (one per worker, one thread: no locking).
 *
 * Six levels of 64 slots, 1 tick = 1 ms: level l holds timers due 64^l to
 * 64^(l+1) ticks ahead and is cascaded into the level below each time the
 * lower levels wrap (the classic scheme of BSD and older Linux kernels).
 * Arm and cancel are O(1) (intrusive lists, pprev unlink); advancing costs
 * one step per occupied level-0 slot plus cascades, thanks to per-level
 * occupancy bitmaps, so millions of armed timers cost only their list links
 * and an idle worker can sleep until the next slot that matters.
 * Timers beyond 64^6 ms (2.2 years) are clamped into the top level and
 * re-placed when it cascades.
 */
#ifndef MM_TIMERWHEEL_H
#define MM_TIMERWHEEL_H

#include "mm_rt.h"

#define MM_TW_BITS 6
#define MM_TW_SLOTS (1u << MM_TW_BITS)
#define MM_TW_LEVELS 6

typedef struct mm_tw {
	uint64_t next;  /* next tick to process: every tick < next is done */
	uint64_t count; /* armed timers */
	uint64_t occ[MM_TW_LEVELS];
	mm_timer_t *slot[MM_TW_LEVELS][MM_TW_SLOTS];
} mm_tw_t;

void mm_tw_init(mm_tw_t *tw, uint64_t now);
/* Link t (t->expires set, t not linked). A deadline in the past fires at the
 * next advance. */
void mm_tw_add(mm_tw_t *tw, mm_timer_t *t);
/* Unlink t if linked. */
void mm_tw_del(mm_tw_t *tw, mm_timer_t *t);
/* Process every tick up to and including now: each due timer is unlinked and
 * passed to fire(), which may arm or cancel any timer. Returns timers fired.
 */
uint64_t mm_tw_advance(mm_tw_t *tw, uint64_t now,
    void (*fire)(mm_timer_t *, void *), void *ctx);
/* Milliseconds from now until the wheel next needs advancing (a due timer or
 * a cascade); never later than the earliest deadline. UINT64_MAX if empty. */
uint64_t mm_tw_next(const mm_tw_t *tw, uint64_t now);

#endif
