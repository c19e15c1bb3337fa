/*
 * Runtime internals (mm__ prefix). Fields are grouped by the thread that
 * writes them; fields written by several threads sit on their own cache line.
 */
#ifndef MM_RT_INTERNAL_H
#define MM_RT_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>

#include "mailbox.h"
#include "mm_rt.h"
#include "timerwheel.h"

#define MM_CACHELINE 64

/* Abort on a broken internal invariant, in every build type. */
#define MM_INVARIANT(c)                                                        \
	do {                                                                   \
		if (__builtin_expect(!(c), 0)) {                               \
			fprintf(stderr, "meshmap: invariant failed: %s (%s:%d)\n", \
			    #c, __FILE__, __LINE__);                           \
			abort();                                               \
		}                                                              \
	} while (0)

enum mm__rt_state {
	MM__RUNNING = 0,
	MM__DRAINING = 1, /* non-worker sends refused; workers finish work */
	MM__STOPPING = 2  /* workers stop their actors and exit */
};

/*
 * Actor. Lifetime: created by mm_actor_spawn with two references (one "alive"
 * reference dropped when the actor exits, one for the caller). Freed on the
 * last mm_actor_unref, on whatever thread that happens: the mailbox is then
 * unreachable, so whatever it still holds is discarded there.
 */
struct mm_actor {
	/* Shared by producers and the owner: the mailbox (own lines). */
	mm_mbox_t mbox;

	/* Written by any thread holding a reference. */
	_Alignas(MM_CACHELINE) atomic_uint refs;

	/* Read-only after spawn. */
	_Alignas(MM_CACHELINE) mm_rt_t *rt;
	struct mm_worker *worker;
	mm_behaviour_fn fn;
	void *state;
	void (*dtor)(mm_actor_t *);
	void (*drop)(const mm_msg_t *);
	const char *name;
	unsigned flags;

	/* Owner worker only. */
	struct mm_actor *run_next;             /* local run queue link */
	struct mm_actor *all_prev, *all_next;  /* worker's live-actor list */
	bool linked;                           /* in the live-actor list */
	bool exited;
	bool close_pending;  /* exited while scheduled (see mm_actor_exit) */
	unsigned turn_left;  /* messages of this turn after the current one */
	bool flush_asked;    /* in the worker's flush list */
	struct mm_actor *flush_next;
	unsigned timers_armed;
	unsigned ios_active;

	/* Written by the producer that schedules the actor onto a remote
	 * worker's inject stack, read by that worker after it pops it. */
	struct mm_actor *inject_next;
};

/*
 * Worker. One thread; owns an epoll instance, an eventfd for wake-ups, a
 * timer wheel, a local run queue and its actors.
 */
struct mm_worker {
	/* Written by other threads. */
	_Alignas(MM_CACHELINE) _Atomic(struct mm_actor *) inject; /* stack */
	atomic_int sleeping;  /* 1 while (about to be) blocked in epoll_wait */
	_Alignas(MM_CACHELINE) atomic_int idle;       /* for drain detection */
	atomic_uint_fast64_t activity; /* bumped when leaving idle */

	/* Owner thread only (counters are read by others: relaxed atomics). */
	_Alignas(MM_CACHELINE) struct {
		_Atomic uint64_t msgs_run, turns, sends, send_full, send_closed,
		    dropped, wakeups_sent, wakeups_recv, timers_fired,
		    io_events, polls, remote_sched, spin_offs;
	} st;

	_Alignas(MM_CACHELINE) mm_rt_t *rt;
	unsigned index;
	pthread_t thread;
	int epfd;
	int evfd;
	uint64_t now;
	uint64_t rng[4];
	mm_tw_t tw;
	struct mm_actor *runq_head, *runq_tail;
	struct mm_actor *all; /* live actors */
	struct mm_actor *flushq; /* asked for MM_MSG_FLUSH this pass (refs held) */
	struct epoll_event *evs;
	int ev_n, ev_i;       /* current epoll batch (for mm_io_stop) */
	int pressure_seen;
	/* The spin before sleeping (poll_io), on while it pays: off after
	 * SPIN_MISSES spins in a row that found nothing, on again when a
	 * wake-up comes within spin_us of falling asleep. */
	uint8_t spin_off, spin_misses;
	mm_timer_t mem_timer; /* worker 0: memory sampling */
};

struct mm_rt {
	_Alignas(MM_CACHELINE) atomic_int state;
	atomic_int pressure;        /* enum mm_pressure */
	atomic_int pressure_forced; /* -1 = sample */
	atomic_uint next_worker;    /* round robin for MM_WORKER_ANY */

	/* Counters of sends from non-worker threads (atomic adds). */
	_Alignas(MM_CACHELINE) _Atomic uint64_t ext_sends, ext_send_full,
	    ext_send_closed, ext_dropped;

	/* Last memory sample (written by worker 0). */
	_Alignas(MM_CACHELINE) _Atomic uint64_t mem_allocated, mem_resident,
	    mem_rss;
	int mem_jemalloc;

	/* Read-only after create. */
	_Alignas(MM_CACHELINE) mm_rt_config_t cfg;
	unsigned nworkers;
	struct mm_worker *workers;
	pthread_barrier_t stop_barrier;
};

/* Thread-local: the worker running on this thread, or NULL. */
extern _Thread_local struct mm_worker *mm__self;

/* Counter bump by the owner thread: single writer, so a relaxed load and
 * store suffice (no RMW); readers on other threads see a recent value. */
static inline void
mm__stat_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c,
	    atomic_load_explicit(c, memory_order_relaxed) + n,
	    memory_order_relaxed);
}

void mm__actor_free(mm_actor_t *a);
void mm__discard(const mm_msg_t *m, void *actor);
void mm__mem_timer_fire(mm_timer_t *t);
void mm__mem_bind_arena(unsigned index);

#endif
