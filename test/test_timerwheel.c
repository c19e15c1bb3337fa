/* Timer wheel, in virtual time: every timer fires exactly once, never early,
 * never later than the advance that covers its deadline, in deadline order;
 * cancels hold; far deadlines cascade correctly; mm_tw_next never sleeps
 * past a deadline; a million armed timers. */
#include <string.h>

#include "test.h"
#include "timerwheel.h"

static uint64_t rng = 88172645463325252ull;
static uint64_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

struct rec {
	uint64_t now_lo, now_hi; /* the advance window being processed */
	uint64_t last_expires;   /* order within one advance */
	uint64_t fired;
	int *fired_flags;
	mm_timer_t *base;
	mm_tw_t *tw;
	int rearm;               /* re-arm each fired timer once more */
};

static void
on_fire(mm_timer_t *t, void *ctx)
{
	struct rec *r = ctx;
	size_t i = (size_t)(t - r->base);
	CHECK_EQ(r->fired_flags[i], 0);                 /* exactly once */
	CHECK_LE(t->expires, r->now_hi);                 /* never early */
	CHECK_GE(t->expires + 1, r->now_lo + 1);         /* not from the past */
	CHECK_GE(t->expires, r->last_expires);           /* deadline order */
	r->last_expires = t->expires;
	r->fired_flags[i] = 1;
	r->fired++;
}

static void
run_random(unsigned n, uint64_t horizon, uint64_t max_step)
{
	mm_tw_t *tw = malloc(sizeof(*tw));
	mm_timer_t *ts = calloc(n, sizeof(*ts));
	int *flags = calloc(n, sizeof(int));
	int *cancelled = calloc(n, sizeof(int));
	uint64_t now = 1000000; /* not zero: exercises non-aligned starts */
	mm_tw_init(tw, now);
	for (unsigned i = 0; i < n; i++) {
		ts[i].expires = now + rnd() % horizon;
		mm_tw_add(tw, &ts[i]);
	}
	CHECK_EQ(tw->count, n);
	unsigned ncancel = 0;
	for (unsigned i = 0; i < n; i += 7) {
		mm_tw_del(tw, &ts[i]);
		mm_tw_del(tw, &ts[i]); /* idempotent */
		cancelled[i] = 1;
		ncancel++;
	}
	CHECK_EQ(tw->count, n - ncancel);

	struct rec r = {.fired_flags = flags, .base = ts, .tw = tw};
	uint64_t end = now + horizon + 1;
	while (now < end) {
		/* mm_tw_next is a safe sleep: no deadline falls before it. */
		uint64_t d = mm_tw_next(tw, now);
		uint64_t earliest = UINT64_MAX;
		if (rnd() % 64 == 0) { /* sampled: the scan is O(n) */
			for (unsigned i = 0; i < n; i++)
				if (ts[i].pprev != NULL && ts[i].expires < earliest)
					earliest = ts[i].expires;
			if (earliest != UINT64_MAX)
				CHECK_LE(now + d, earliest > now ? earliest : now);
		}
		uint64_t step = 1 + rnd() % max_step;
		r.now_lo = tw->next;
		r.now_hi = now + step;
		r.last_expires = 0;
		mm_tw_advance(tw, now + step, on_fire, &r);
		now += step;
	}
	CHECK_EQ(r.fired, n - ncancel);
	CHECK_EQ(tw->count, 0);
	for (unsigned i = 0; i < n; i++)
		CHECK_EQ(flags[i], !cancelled[i]);
	free(tw);
	free(ts);
	free(flags);
	free(cancelled);
}

static void
test_random_short(void)
{
	run_random(20000, 5000, 3);      /* level 0-2, small steps */
}

static void
test_random_long(void)
{
	run_random(20000, 50000000, 4096); /* up to level 4, big jumps */
}

static void
test_far_future(void)
{
	/* Beyond the wheel's span (64^6 ms): clamped, then re-placed. */
	mm_tw_t *tw = malloc(sizeof(*tw));
	mm_timer_t t;
	memset(&t, 0, sizeof(t));
	int flag = 0;
	mm_tw_init(tw, 5);
	uint64_t span = UINT64_C(1) << 36;
	t.expires = 5 + span * 3 + 12345;
	mm_tw_add(tw, &t);
	struct rec r = {.fired_flags = &flag, .base = &t, .tw = tw};
	uint64_t now = 5;
	unsigned wakes = 0;
	while (now < t.expires - 1) {
		wakes++;
		uint64_t d = mm_tw_next(tw, now);
		CHECK_GT(d, 0);
		uint64_t to = now + d;
		if (to > t.expires - 1)
			to = t.expires - 1;
		r.now_lo = tw->next;
		r.now_hi = to;
		mm_tw_advance(tw, to, on_fire, &r);
		CHECK_EQ(flag, 0); /* not early */
		now = to;
	}
	r.now_hi = t.expires;
	mm_tw_advance(tw, t.expires, on_fire, &r);
	CHECK_EQ(flag, 1);
	/* An idle worker holding one far deadline wakes a handful of times
	 * per level (once per cascade), not once per boundary. */
	CHECK_LE(wakes, 4 * MM_TW_LEVELS);
	free(tw);
}

/* fire() may cancel another timer due in the same tick, and re-arm. */
static mm_timer_t pair[3];
static mm_tw_t *pair_tw;
static int pair_fired[3];

static void
pair_fire(mm_timer_t *t, void *ctx)
{
	(void)ctx;
	int i = (int)(t - pair);
	pair_fired[i]++;
	if (i == 0) {
		mm_tw_del(pair_tw, &pair[1]); /* same slot, not yet fired */
		pair[0].expires = 200;        /* re-arm self */
		mm_tw_add(pair_tw, &pair[0]);
	}
}

static void
test_cancel_from_fire(void)
{
	pair_tw = malloc(sizeof(*pair_tw));
	memset(pair, 0, sizeof(pair));
	mm_tw_init(pair_tw, 0);
	/* Due within level 0, so no cascade reorders them: the slot list is
	 * LIFO, so they fire 2, 0, 1. */
	pair[1].expires = 40;
	mm_tw_add(pair_tw, &pair[1]);
	pair[0].expires = 40;
	mm_tw_add(pair_tw, &pair[0]);
	pair[2].expires = 40;
	mm_tw_add(pair_tw, &pair[2]);
	CHECK_EQ(mm_tw_advance(pair_tw, 150, pair_fire, NULL), 2);
	CHECK_EQ(pair_fired[0], 1);
	CHECK_EQ(pair_fired[1], 0);
	CHECK_EQ(pair_fired[2], 1);
	CHECK_EQ(pair_tw->count, 1);
	/* pair[0] now waits in level 1 for 200: the wheel must be advanced
	 * no later than that (at its cascade, 192, or at 200 itself). */
	CHECK_GT(mm_tw_next(pair_tw, 150), 0);
	CHECK_LE(mm_tw_next(pair_tw, 150), 50);
	CHECK_EQ(mm_tw_advance(pair_tw, 200, pair_fire, NULL), 1);
	CHECK_EQ(pair_fired[0], 2);
	CHECK_LE(mm_tw_next(pair_tw, 200), 50); /* re-armed at 200 -> 250 */
	CHECK_GT(mm_tw_next(pair_tw, 200), 0);
	mm_tw_del(pair_tw, &pair[0]);
	CHECK_EQ(mm_tw_next(pair_tw, 200), UINT64_MAX);
	free(pair_tw);
}

static void
test_million(void)
{
	/* A million armed timers (keepalives): arm, re-arm half, cancel all;
	 * only their links cost memory and each operation is O(1). */
	unsigned n = 1000000;
	mm_tw_t *tw = malloc(sizeof(*tw));
	mm_timer_t *ts = calloc(n, sizeof(*ts));
	mm_tw_init(tw, 0);
	for (unsigned i = 0; i < n; i++) {
		ts[i].expires = 30000 + (rnd() % 60000);
		mm_tw_add(tw, &ts[i]);
	}
	for (unsigned i = 0; i < n; i += 2) {
		mm_tw_del(tw, &ts[i]);
		ts[i].expires += 1000;
		mm_tw_add(tw, &ts[i]);
	}
	CHECK_EQ(tw->count, n);
	CHECK_GE(mm_tw_next(tw, 0), 1);
	CHECK_LE(mm_tw_next(tw, 0), 30000);
	for (unsigned i = 0; i < n; i++)
		mm_tw_del(tw, &ts[i]);
	CHECK_EQ(tw->count, 0);
	for (unsigned l = 0; l < MM_TW_LEVELS; l++)
		CHECK_EQ(tw->occ[l], 0);
	free(ts);
	free(tw);
}

int
main(void)
{
	RUN(test_random_short);
	RUN(test_random_long);
	RUN(test_far_future);
	RUN(test_cancel_from_fire);
	RUN(test_million);
	fprintf(stderr, "test_timerwheel: ok\n");
	return 0;
}
