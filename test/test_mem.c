/* Memory accounting and the budget's pressure signal, measured for real:
 * allocations show in the allocator's numbers and the RSS, the levels have
 * hysteresis, and crossing the budget reaches subscribed actors, which shed
 * load (here: free their ballast). */
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "mm_rt.h"
#include "test.h"


#define MB (1024 * 1024)

static void
test_sample(void)
{
	mm_mem_stats_t a, b, c;
	/* glibc's count can be zero before anything is allocated: hold one
	 * allocation so that every allocator has something to report. */
	char *live = malloc(4096);
	CHECK(live != NULL);
	memset(live, 1, 4096);
	CHECK_EQ(mm_mem_sample(&a, 50 * MB), 0);
	CHECK_GT(a.rss, 0);
	CHECK_GT(a.allocated, 0);
#ifdef MM_HAVE_JEMALLOC
	CHECK_EQ(a.jemalloc, 1);
#else
	CHECK_EQ(a.jemalloc, 0);
#endif
	size_t n = 32 * MB;
	char *p = malloc(n);
	CHECK(p != NULL);
	memset(p, 1, n); /* touch: resident */
	CHECK_EQ(mm_mem_sample(&b, 50 * MB), 0);
	CHECK_GE(b.allocated, a.allocated + n - MB);
	CHECK_GE(b.rss, a.rss + n - 2 * MB);
	free(p);
	CHECK_EQ(mm_mem_sample(&c, 50 * MB), 0);
	CHECK_LE(c.allocated + n - MB, b.allocated);
	free(live);
}

static void
test_levels(void)
{
	mm_mem_stats_t s = {.budget = 1000};
	struct { uint64_t rss; enum mm_pressure prev, want; } cases[] = {
	    {500, MM_PRESSURE_OK, MM_PRESSURE_OK},
	    {799, MM_PRESSURE_OK, MM_PRESSURE_OK},
	    {800, MM_PRESSURE_OK, MM_PRESSURE_HIGH},
	    {949, MM_PRESSURE_OK, MM_PRESSURE_HIGH},
	    {950, MM_PRESSURE_OK, MM_PRESSURE_CRITICAL},
	    {2000, MM_PRESSURE_OK, MM_PRESSURE_CRITICAL},
	    /* hysteresis on the way down */
	    {920, MM_PRESSURE_CRITICAL, MM_PRESSURE_CRITICAL},
	    {899, MM_PRESSURE_CRITICAL, MM_PRESSURE_HIGH},
	    {760, MM_PRESSURE_HIGH, MM_PRESSURE_HIGH},
	    {760, MM_PRESSURE_CRITICAL, MM_PRESSURE_HIGH},
	    {749, MM_PRESSURE_HIGH, MM_PRESSURE_OK},
	    {760, MM_PRESSURE_OK, MM_PRESSURE_OK},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		s.rss = cases[i].rss;
		CHECK_EQ(mm_mem_level(&s, cases[i].prev), cases[i].want);
	}
}

/* An actor that holds ballast and drops it when told memory is critical. */
struct ballast {
	char *mem;
	size_t size;
	atomic_int grabbed, shed_at_level, levels_seen;
};

enum { M_GRAB = MM_MSG_USER };

static void
ballast_fn(mm_actor_t *self, const mm_msg_t *m)
{
	struct ballast *b = mm_actor_state(self);
	if (m->type == M_GRAB) {
		b->mem = malloc(b->size);
		CHECK(b->mem != NULL);
		memset(b->mem, 2, b->size);
		atomic_store(&b->grabbed, 1);
	} else if (m->type == MM_MSG_PRESSURE) {
		atomic_fetch_add(&b->levels_seen, 1);
		if (m->aux == MM_PRESSURE_CRITICAL && b->mem != NULL) {
			free(b->mem); /* shed */
			b->mem = NULL;
			atomic_store(&b->shed_at_level, (int)m->aux);
		}
	} else if (m->type == MM_MSG_STOP) {
		free(b->mem);
		b->mem = NULL;
	}
}

static void
test_budget_signal(void)
{
	mm_mem_stats_t now;
	CHECK_EQ(mm_mem_sample(&now, 0), 0);
	mm_rt_config_t cfg;
	mm_rt_config_default(&cfg);
	cfg.workers = 2;
	cfg.mem_interval_ms = 10;
	/* Budget: what the process uses now plus 16 MB (plus room for the
	 * runtime's own threads), so that 40 MB of ballast crosses 95%. */
	cfg.mem_budget = now.rss + 24 * MB;
	mm_rt_t *rt;
	CHECK_EQ(mm_rt_create(&cfg, &rt), 0);
	struct ballast b;
	memset(&b, 0, sizeof(b));
	b.size = 40 * MB;
	mm_actor_opts_t o = {.flags = MM_ACTOR_F_PRESSURE};
	mm_actor_t *a = mm_actor_spawn(rt, ballast_fn, &b, &o);
	test_sleep_ms(50);
	CHECK_EQ(mm_rt_pressure(rt), MM_PRESSURE_OK);
	mm_msg_t g = {.type = M_GRAB};
	CHECK_EQ(mm_send(a, &g), 0);
	WAIT_FOR(atomic_load(&b.shed_at_level) == MM_PRESSURE_CRITICAL);
	mm_mem_stats_t seen;
	mm_rt_mem(rt, &seen);
	CHECK_EQ(seen.budget, cfg.mem_budget);
	CHECK_GT(seen.rss, 0);
	mm_rt_stop(rt);
	CHECK_GE(atomic_load(&b.levels_seen), 1);
	mm_actor_unref(a);
	mm_rt_destroy(rt);
}

int
main(void)
{
	RUN(test_sample);
	RUN(test_levels);
	RUN(test_budget_signal);
	fprintf(stderr, "test_mem: ok\n");
	return 0;
}
