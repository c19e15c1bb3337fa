/*
 * Memory accounting and the budget's pressure signal.
 *
 * With jemalloc (MM_HAVE_JEMALLOC): each worker thread is bound to an arena of
 * its own, so its message buffers and actor state come from per-worker size
 * classes behind a thread cache; allocated and resident bytes come from
 * jemalloc's statistics. With libc malloc: mallinfo2() and /proc. Either way
 * the pressure level is computed on the process RSS, because the budget the
 * node promises (50 MB by default) is what the operating system sees.
 */
#include "rt_internal.h"
#include "log.h"

#include <fcntl.h>
#include <malloc.h>
#include <string.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
/* The sanitizers replace malloc: glibc's mallinfo2() then reads zero, and
 * the sanitizer allocator's own count is the true one. */
size_t __sanitizer_get_current_allocated_bytes(void); /* libasan, libtsan */
#define MM_SANITIZER_ALLOCATOR 1
#endif

#ifdef MM_HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>

#define MM_MAX_ARENAS 64
static unsigned arena_of[MM_MAX_ARENAS]; /* worker index -> arena + 1 */
static pthread_mutex_t arena_lock = PTHREAD_MUTEX_INITIALIZER;
#endif

void
mm__mem_bind_arena(unsigned index)
{
#ifdef MM_HAVE_JEMALLOC
	/* Arenas are created once per worker index and reused by later
	 * runtimes in the same process (jemalloc never frees them). */
	if (index >= MM_MAX_ARENAS)
		return; /* shares the automatic arenas: still correct */
	pthread_mutex_lock(&arena_lock);
	if (arena_of[index] == 0) {
		unsigned a;
		size_t sz = sizeof(a);
		if (mallctl("arenas.create", &a, &sz, NULL, 0) == 0)
			arena_of[index] = a + 1;
	}
	unsigned a = arena_of[index];
	pthread_mutex_unlock(&arena_lock);
	if (a != 0) {
		a -= 1;
		(void)mallctl("thread.arena", NULL, NULL, &a, sizeof(a));
	}
#else
	(void)index;
#endif
}

static uint64_t
read_rss(void)
{
	char buf[128];
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	unsigned long size, res;
	if (sscanf(buf, "%lu %lu", &size, &res) != 2)
		return 0;
	return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

int
mm_mem_sample(mm_mem_stats_t *out, size_t budget)
{
	memset(out, 0, sizeof(*out));
	out->budget = budget;
	out->rss = read_rss();
#ifdef MM_HAVE_JEMALLOC
	uint64_t epoch = 1;
	size_t sz = sizeof(epoch), v, vsz = sizeof(v);
	/* Writing "epoch" refreshes jemalloc's cached statistics. */
	if (mallctl("epoch", &epoch, &sz, &epoch, sz) == 0) {
		if (mallctl("stats.allocated", &v, &vsz, NULL, 0) == 0)
			out->allocated = v;
		vsz = sizeof(v);
		if (mallctl("stats.resident", &v, &vsz, NULL, 0) == 0)
			out->resident = v;
		out->jemalloc = 1;
		return 0;
	}
#endif
#ifdef MM_SANITIZER_ALLOCATOR
	out->allocated = __sanitizer_get_current_allocated_bytes();
#else
	struct mallinfo2 mi = mallinfo2();
	out->allocated = mi.uordblks + mi.hblkhd;
#endif
	out->resident = out->rss;
	return 0;
}

void
mm_mem_flush_thread_cache(void)
{
#ifdef MM_HAVE_JEMALLOC
	(void)mallctl("thread.tcache.flush", NULL, NULL, NULL, 0);
#endif
}

enum mm_pressure
mm_mem_level(const mm_mem_stats_t *s, enum mm_pressure prev)
{
	/* Rise at 80% / 95%, fall back only below 75% / 90%: a node hovering
	 * at a threshold does not flap between shedding and not. */
	uint64_t b = s->budget, use = s->rss;
	enum mm_pressure lvl = MM_PRESSURE_OK;
	if (use * 100 >= b * 95 || (prev == MM_PRESSURE_CRITICAL && use * 100 >= b * 90))
		lvl = MM_PRESSURE_CRITICAL;
	else if (use * 100 >= b * 80 || (prev >= MM_PRESSURE_HIGH && use * 100 >= b * 75))
		lvl = MM_PRESSURE_HIGH;
	return lvl;
}

/* Runs on worker 0 every mem_interval_ms. */
void
mm__mem_timer_fire(mm_timer_t *t)
{
	struct mm_worker *w = (struct mm_worker *)((char *)t -
	    offsetof(struct mm_worker, mem_timer));
	mm_rt_t *rt = w->rt;
	mm_mem_stats_t s;

	mm_mem_sample(&s, rt->cfg.mem_budget);
	atomic_store_explicit(&rt->mem_allocated, s.allocated, memory_order_relaxed);
	atomic_store_explicit(&rt->mem_resident, s.resident, memory_order_relaxed);
	atomic_store_explicit(&rt->mem_rss, s.rss, memory_order_relaxed);
	rt->mem_jemalloc = s.jemalloc;
	int forced = atomic_load_explicit(&rt->pressure_forced, memory_order_relaxed);
	int prev = atomic_load_explicit(&rt->pressure, memory_order_relaxed);
	int lvl = forced >= 0 ? forced : (int)mm_mem_level(&s, (enum mm_pressure)prev);
	atomic_store_explicit(&rt->pressure, lvl, memory_order_relaxed);
	if (lvl != prev)
		mm_log(lvl > prev ? MM_LOG_WARN : MM_LOG_INFO, "memory: pressure %s: RSS "
		    "%.1f MB of a %.1f MB budget%s", lvl == MM_PRESSURE_OK ? "ok" :
		    lvl == MM_PRESSURE_HIGH ? "high (>= 80%)" : "critical (>= 95%)",
		    (double)s.rss / 1e6, (double)rt->cfg.mem_budget / 1e6,
		    forced >= 0 ? " (forced)" : "");
	mm_timer_arm(t, rt->cfg.mem_interval_ms);
}

void
mm_rt_mem(mm_rt_t *rt, mm_mem_stats_t *out)
{
	out->allocated = atomic_load_explicit(&rt->mem_allocated, memory_order_relaxed);
	out->resident = atomic_load_explicit(&rt->mem_resident, memory_order_relaxed);
	out->rss = atomic_load_explicit(&rt->mem_rss, memory_order_relaxed);
	out->budget = rt->cfg.mem_budget;
	out->forced = atomic_load_explicit(&rt->pressure_forced, memory_order_relaxed) >= 0;
#ifdef MM_HAVE_JEMALLOC
	out->jemalloc = 1;
#else
	out->jemalloc = 0;
#endif
}

enum mm_pressure
mm_rt_pressure(mm_rt_t *rt)
{
	return (enum mm_pressure)atomic_load_explicit(&rt->pressure,
	    memory_order_relaxed);
}

void
mm_rt_force_pressure(mm_rt_t *rt, int level)
{
	atomic_store_explicit(&rt->pressure_forced, level, memory_order_relaxed);
	if (level >= 0)
		atomic_store_explicit(&rt->pressure, level, memory_order_relaxed);
}
