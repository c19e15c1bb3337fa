/*
 * meshmap actor runtime: workers, actors, mailboxes, timers, fd readiness,
 * memory budget, counters.
 *
 * Threads. A runtime owns N worker threads (one per core by default, pinned).
 * Every actor belongs to exactly one worker for its whole life; its behaviour
 * only ever runs on that worker's thread, so an actor's state needs no locks.
 * Functions below say which thread may call them:
 *   "any thread"   - any thread, including non-worker threads;
 *   "owner worker" - only the thread of the worker that owns the actor (in
 *                    practice: from inside the actor's own behaviour).
 *
 * Messages. A message is a 24-byte value (mm_msg_t) copied into the receiver's
 * mailbox; small messages need no allocation. A message may carry a pointer;
 * ownership of what it points to passes to the receiver when mm_send returns
 * 0, and stays with the sender on any error. If MM_MSG_F_BUF is set in type,
 * ptr is an mm_buf_t and the runtime itself releases it when it has to
 * discard the message (drop policy, mailbox closed, shutdown).
 *
 * Errors are negative errno values.
 */
#ifndef MM_RT_H
#define MM_RT_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mm_rt mm_rt_t;
typedef struct mm_actor mm_actor_t;
typedef struct mm_worker mm_worker_t;

/* ---- messages ---------------------------------------------------------- */

typedef struct mm_msg {
	uint32_t type; /* MM_MSG_* below, or an application type >= MM_MSG_USER */
	uint32_t aux;  /* small argument (io: revents; pressure: level) */
	uint64_t arg;  /* argument (timer/io: the arg given when armed) */
	void *ptr;     /* payload, owned by the receiver (see above) */
} mm_msg_t;

/* Runtime-generated message types. START, TIMER, IO, PRESSURE and STOP are
 * dispatched directly on the owner worker, never through the mailbox, so they
 * cannot be lost to a full mailbox. */
enum {
	MM_MSG_START = 1,    /* first message an actor receives, on its worker */
	MM_MSG_TIMER = 2,    /* ptr = the mm_timer_t that fired, arg = its arg */
	MM_MSG_IO = 3,       /* ptr = the mm_io_t, aux = epoll revents, arg */
	MM_MSG_PRESSURE = 4, /* aux = new mm_pressure level (subscribers only) */
	MM_MSG_STOP = 5,     /* runtime shutdown: last message before exit */
	MM_MSG_FLUSH = 6,    /* asked for by mm_actor_flush_later */
	MM_MSG_USER = 64     /* first application type */
};
#define MM_MSG_F_BUF 0x80000000u /* ptr is an mm_buf_t (see header comment) */
#define MM_MSG_TYPE(t) ((t) & ~MM_MSG_F_BUF)

typedef void (*mm_behaviour_fn)(mm_actor_t *self, const mm_msg_t *msg);

/* ---- runtime ----------------------------------------------------------- */

typedef struct mm_rt_config {
	unsigned workers;          /* 0 = one per online core */
	int pin;                   /* pin worker k to core k % ncpu (default 1) */
	unsigned batch;            /* messages per actor turn (default 64) */
	unsigned spin_us;          /* spin before sleeping in epoll (default 20) */
	size_t mem_budget;         /* bytes; 0 = 50 MB (50,000,000) */
	unsigned mem_interval_ms;  /* memory sampling period (default 100) */
	unsigned drain_timeout_ms; /* mm_rt_stop drain bound (default 2000) */
} mm_rt_config_t;

/* Fill cfg with defaults. */
void mm_rt_config_default(mm_rt_config_t *cfg);

/* Create and start the workers. NULL cfg = defaults. Returns 0 or -errno. */
int mm_rt_create(const mm_rt_config_t *cfg, mm_rt_t **out);

/* Clean shutdown, from a non-worker thread: refuse new work from non-worker
 * threads, let mailboxes drain until quiescent (bounded by drain_timeout_ms),
 * deliver MM_MSG_STOP to every live actor, exit them, join the workers. */
void mm_rt_stop(mm_rt_t *rt);

/* Free the runtime after mm_rt_stop. */
void mm_rt_destroy(mm_rt_t *rt);

unsigned mm_rt_workers(const mm_rt_t *rt);

/* The worker index of the calling thread, or -1 for a non-worker thread. */
int mm_rt_current_worker(void);

/* Monotonic milliseconds. On a worker this is the time cached at the start
 * of the current loop iteration (what timers are measured against). */
uint64_t mm_now_ms(void);

/* Wall-clock milliseconds since the Unix epoch (CLOCK_REALTIME_COARSE: as
 * fine as the kernel's tick, 1 to 10 ms): event timestamps, ban expiry,
 * dedup ages. The simulator (mm_sim.h) gives virtual time. */
uint64_t mm_wall_ms(void);

/* Fill buf from the kernel's CSPRNG (getrandom), for keys and seeds.
 * 0 or -errno. Any thread. */
int mm_secure_random(void *buf, size_t n);

/* Per-worker xoshiro256** stream seeded at start; any thread (non-workers use
 * a thread-local stream). Not for cryptography. */
uint64_t mm_random(void);

/* ---- actors ------------------------------------------------------------ */

#define MM_WORKER_ANY (~0u)

typedef struct mm_actor_opts {
	unsigned worker;       /* index, or MM_WORKER_ANY for round robin */
	/* Messages the mailbox holds (default 255). Memory: 24 bytes times
	 * cap + 1 rounded up to a power of two, plus 448 bytes of actor: the
	 * default costs 6.5 KB per actor. */
	unsigned mailbox_cap;
	unsigned flags;        /* MM_ACTOR_F_* */
	/* Called on the owner worker once the actor has exited: free state,
	 * cancel timers, stop io. Timers and io must be gone after it. */
	void (*dtor)(mm_actor_t *self);
	/* Called for messages discarded undelivered (mailbox closed or runtime
	 * stopped) whose ptr is not an mm_buf; frees what ptr owns. Any thread. */
	void (*drop)(const mm_msg_t *msg);
	const char *name;      /* static string, for logs */
} mm_actor_opts_t;

#define MM_ACTOR_F_PRESSURE 1u /* receive MM_MSG_PRESSURE on level change */

/* Spawn an actor. Any thread. It receives MM_MSG_START on its worker before
 * any other message. Returns the actor holding one reference for the caller
 * (release it with mm_actor_unref), or NULL with errno set (ESHUTDOWN, ENOMEM,
 * EINVAL). The actor's memory lives until it has exited and every reference
 * is released; after exit, sends to it fail with -EPIPE. */
mm_actor_t *mm_actor_spawn(mm_rt_t *rt, mm_behaviour_fn fn, void *state,
    const mm_actor_opts_t *opts);

void mm_actor_ref(mm_actor_t *a);   /* any thread */
void mm_actor_unref(mm_actor_t *a); /* any thread */

/* Exit the calling actor: its mailbox closes, its dtor runs after the current
 * behaviour call returns, queued messages are discarded. Owner worker. */
void mm_actor_exit(mm_actor_t *self);

void *mm_actor_state(const mm_actor_t *a);
unsigned mm_actor_worker(const mm_actor_t *a);
mm_rt_t *mm_actor_rt(const mm_actor_t *a);

/* Messages waiting in a's mailbox (a snapshot). Any thread. */
unsigned mm_actor_pending(const mm_actor_t *a);
/* Inside a behaviour: how many messages this turn still hands the actor
 * after the current one (0: the last of its batch). An actor that buffers
 * output (a connection's writes) flushes when it reaches 0. */
unsigned mm_actor_turn_left(const mm_actor_t *self);
/* Inside a behaviour: deliver MM_MSG_FLUSH to this actor once its worker has
 * run the current pass of turns (up to 256 turns of its actors) and timers,
 * or the current batch of I/O events, before it polls again or sleeps. Repeated calls within a pass ask once.
 * For actors that buffer output: what every turn of the pass queued for a
 * socket (a node actor's run of sends to a connection, say) leaves in one
 * write, not one per turn. Owner worker. */
void mm_actor_flush_later(mm_actor_t *self);

/* Send with back-pressure. Any thread. Returns 0 if queued (ownership of ptr
 * passed), -EAGAIN if the mailbox is full, -EPIPE if the actor has exited,
 * -ESHUTDOWN if the runtime is stopping and the caller is not a worker. On
 * error the caller still owns ptr and decides: retry later, or drop. */
int mm_send(mm_actor_t *to, const mm_msg_t *msg);

/* Send with the drop-and-count policy: like mm_send, but on any error the
 * message is discarded (ptr released: mm_buf, or opts.drop of the receiver)
 * and counted as dropped. Returns what mm_send returned. Any thread. */
int mm_send_or_drop(mm_actor_t *to, const mm_msg_t *msg);

/* ---- timers ------------------------------------------------------------ */

/* A timer is embedded in actor state and never moved while armed. It fires
 * once, delivering MM_MSG_TIMER {ptr = timer, arg} to its actor on the owner
 * worker. Resolution 1 ms; a timer never fires early, and fires within one
 * tick of its deadline plus the time the worker spends in other work. */
typedef struct mm_timer {
	struct mm_timer *next, **pprev; /* wheel slot list; pprev NULL = idle */
	uint64_t expires;               /* absolute tick (ms) */
	mm_actor_t *actor;
	void (*cb)(struct mm_timer *t); /* runtime-internal timers: actor NULL */
	uint64_t arg;
	uint32_t slack_ms;              /* lazy re-arm window */
} mm_timer_t;

void mm_timer_init(mm_timer_t *t, mm_actor_t *owner, uint64_t arg);
/* Re-arming within slack_ms of the current deadline keeps the old one (cheap
 * keepalive refresh). Default slack 0. */
void mm_timer_set_slack(mm_timer_t *t, uint32_t slack_ms);
/* Arm (or re-arm) to fire delay_ms from mm_now_ms(). Owner worker. */
void mm_timer_arm(mm_timer_t *t, uint64_t delay_ms);
void mm_timer_cancel(mm_timer_t *t); /* owner worker; idempotent */
static inline int mm_timer_armed(const mm_timer_t *t) { return t->pprev != 0; }

/* ---- file descriptors -------------------------------------------------- */

/* Readiness of fd on the owner worker's epoll, delivered as MM_MSG_IO. The
 * handle is embedded in actor state; mm_io_stop before freeing it. Events are
 * EPOLL* flags; add EPOLLET for edge-triggered. Owner worker. */
typedef struct mm_io {
	int fd;
	uint32_t events;
	mm_actor_t *actor;
	uint64_t arg;
} mm_io_t;

int mm_io_start(mm_io_t *io, mm_actor_t *self, int fd, uint32_t events,
    uint64_t arg);
int mm_io_modify(mm_io_t *io, uint32_t events);
void mm_io_stop(mm_io_t *io); /* does not close fd; idempotent */

/* ---- refcounted buffers ------------------------------------------------ */

/* One encoded frame shared by many receivers: each holder has a reference.
 * Allocated from the calling worker's jemalloc arena (size classes and a
 * thread cache come from jemalloc; with libc malloc, glibc's per-thread
 * arenas). */
typedef struct mm_buf {
	uint32_t refs; /* only through __atomic builtins (header is C++-safe) */
	uint32_t len;
	uint32_t cap;
	uint32_t reserved;
	unsigned char data[];
} mm_buf_t;

mm_buf_t *mm_buf_alloc(uint32_t cap); /* refs = 1, len = 0; NULL on ENOMEM */
/* A buffer holding a copy of data[len], never to be written after: the
 * simulator hands out one shared buffer for identical bytes (thousands of
 * simulated nodes log the same frames); the server, a fresh one. */
mm_buf_t *mm_buf_copy(const void *data, uint32_t len);
void mm_buf_ref(mm_buf_t *b);
void mm_buf_release(mm_buf_t *b);     /* frees at zero; NULL is a no-op */

/* ---- memory budget ----------------------------------------------------- */

enum mm_pressure {
	MM_PRESSURE_OK = 0,       /* below 80% of budget */
	MM_PRESSURE_HIGH = 1,     /* >= 80%: shed optional work */
	MM_PRESSURE_CRITICAL = 2  /* >= 95%: refuse new work, evict */
};

typedef struct mm_mem_stats {
	uint64_t allocated; /* bytes in live allocations (allocator's view) */
	uint64_t resident;  /* allocator's resident bytes (jemalloc); else = rss */
	uint64_t rss;       /* process resident set (/proc/self/statm) */
	uint64_t budget;
	int jemalloc;       /* 1 if the numbers come from jemalloc */
	int forced;         /* mm_rt_mem: the level is forced (test hook), not
	                     * sampled: decide by the level, not the numbers */
} mm_mem_stats_t;

/* Sample now. Any thread. */
int mm_mem_sample(mm_mem_stats_t *out, size_t budget);
/* Return the calling thread's cached free blocks to jemalloc (no-op with
 * libc malloc). jemalloc counts them as allocated: measure a structure's
 * own size with a flush before each sample. */
void mm_mem_flush_thread_cache(void);
/* Level for a sample, with hysteresis against the previous level. */
enum mm_pressure mm_mem_level(const mm_mem_stats_t *s, enum mm_pressure prev);
/* The runtime's last sample and level (updated every mem_interval_ms). */
void mm_rt_mem(mm_rt_t *rt, mm_mem_stats_t *out);
enum mm_pressure mm_rt_pressure(mm_rt_t *rt);
/* Test hook: force a level (as if sampled); -1 returns to sampling. */
void mm_rt_force_pressure(mm_rt_t *rt, int level);

/* ---- counters ---------------------------------------------------------- */

typedef struct mm_worker_stats {
	uint64_t msgs_run;      /* mailbox messages delivered to behaviours */
	uint64_t turns;         /* actor turns (batches) */
	uint64_t sends;         /* sends accepted, counted at the sender */
	uint64_t send_full;     /* sends refused: mailbox full */
	uint64_t send_closed;   /* sends refused: actor exited */
	uint64_t dropped;       /* messages discarded (drop policy, shutdown) */
	uint64_t wakeups_sent;  /* eventfd writes to other workers */
	uint64_t wakeups_recv;  /* eventfd reads */
	uint64_t timers_fired;
	uint64_t io_events;
	uint64_t polls;         /* epoll_wait calls */
	uint64_t remote_sched;  /* actors handed to another worker's queue */
	uint64_t spin_offs;     /* the spin before sleeping turned off: it
	                         * found nothing SPIN_MISSES (16) times in a row */
} mm_worker_stats_t;

/* Counters of worker k, or of all workers plus non-worker senders when
 * k == MM_WORKER_ANY. Lock-free snapshot; any thread. */
void mm_rt_stats(mm_rt_t *rt, unsigned k, mm_worker_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif
