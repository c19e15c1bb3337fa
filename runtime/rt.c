/*
 * Workers, scheduling, actors, timers and fd readiness.
 *
 * Scheduling. An actor is "scheduled" exactly while its mailbox count is > 0
 * (see mailbox.h). The sender whose push finds the mailbox empty puts the
 * actor on its worker's queue: directly on the local run queue when the
 * sender runs on that worker, otherwise on the worker's inject stack, waking
 * the worker with its eventfd only if it is asleep. A worker runs an actor
 * for at most cfg.batch messages per turn, then puts it at the back of the
 * run queue if mail remains, so a flooded actor cannot starve the others.
 *
 * Wake-ups are batched by construction: a worker announces `sleeping = 1`
 * before blocking in epoll_wait, and only the producer that swaps it back to
 * 0 writes the eventfd. However many messages other threads push while the
 * worker runs, it is woken at most once per sleep.
 */
#include "rt_internal.h"
#include "rng.h"

#include <ck_pr.h>

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define MM_EVCAP 256
#define MM_TURNS_PER_POLL 256
/* spins in a row that found no message before the spin is turned off */
#define SPIN_MISSES 16

_Thread_local struct mm_worker *mm__self;

static uint64_t
clock_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t
clock_ms(void)
{
	return clock_ns() / 1000000u;
}

uint64_t
mm_now_ms(void)
{
	return mm__self != NULL ? mm__self->now : clock_ms();
}

uint64_t
mm_wall_ms(void)
{
	/* The coarse clock (the kernel's tick, 1 to 10 ms): every use of wall
	 * time here is in whole ms or s, and the node reads it once per
	 * received event (the dedup probe), where the precise clock's
	 * counter read was 2.4% of the time under a flood of duplicates. */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int
mm_rt_current_worker(void)
{
	return mm__self != NULL ? (int)mm__self->index : -1;
}

/* ---- random: xoshiro256** (rng.h) --------------------------------------- */

#define xoshiro mm__xoshiro

int
mm_secure_random(void *buf, size_t n)
{
	uint8_t *p = buf;
	while (n > 0) {
		ssize_t r = getrandom(p, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static void
rng_seed(uint64_t s[4])
{
	uint64_t x;
	if (mm_secure_random(&x, sizeof(x)) != 0)
		x = clock_ns() ^ ((uint64_t)getpid() << 32);
	mm__splitmix_seed(s, x);
}

uint64_t
mm_random(void)
{
	static _Thread_local uint64_t ext[4];
	static _Thread_local int ext_seeded;

	if (mm__self != NULL)
		return xoshiro(mm__self->rng);
	if (!ext_seeded) {
		rng_seed(ext);
		ext_seeded = 1;
	}
	return xoshiro(ext);
}

/* ---- run queue and inject stack ---------------------------------------- */

static void
runq_push(struct mm_worker *w, mm_actor_t *a)
{
	a->run_next = NULL;
	if (w->runq_tail != NULL)
		w->runq_tail->run_next = a;
	else
		w->runq_head = a;
	w->runq_tail = a;
}

static mm_actor_t *
runq_pop(struct mm_worker *w)
{
	mm_actor_t *a = w->runq_head;
	if (a != NULL) {
		w->runq_head = a->run_next;
		if (w->runq_head == NULL)
			w->runq_tail = NULL;
	}
	return a;
}

/*
 * Inject stack: the algorithm of ck_stack_push_upmc / ck_stack_batch_pop_upmc
 * (Treiber push, exchange-all pop, no ABA since nobody pops single entries),
 * written with C11 atomics so that ThreadSanitizer checks the hand-over of
 * the actor between threads and so that the push's seq_cst CAS takes part in
 * the sleeping-flag protocol below.
 */
static void
inject_push(struct mm_worker *w, mm_actor_t *a)
{
	mm_actor_t *head = atomic_load_explicit(&w->inject,
	    memory_order_relaxed);
	do {
		a->inject_next = head;
		/* seq_cst on success: releases a->inject_next to the popper
		 * and orders this push before the load of w->sleeping in
		 * schedule() (Dekker with the worker's store to sleeping). */
	} while (!atomic_compare_exchange_weak_explicit(&w->inject, &head, a,
	    memory_order_seq_cst, memory_order_relaxed));
}

static void
inject_drain(struct mm_worker *w)
{
	if (atomic_load_explicit(&w->inject, memory_order_relaxed) == NULL)
		return;
	/* acquire: pairs with the pushers' CAS, making inject_next visible. */
	mm_actor_t *s = atomic_exchange_explicit(&w->inject, NULL,
	    memory_order_acquire);
	mm_actor_t *fifo = NULL;
	while (s != NULL) { /* the stack is LIFO: reverse to push order */
		mm_actor_t *n = s->inject_next;
		s->inject_next = fifo;
		fifo = s;
		s = n;
	}
	while (fifo != NULL) {
		mm_actor_t *n = fifo->inject_next;
		runq_push(w, fifo);
		fifo = n;
	}
}

static void
wake(struct mm_worker *w)
{
	uint64_t one = 1;
	ssize_t r;
	do
		r = write(w->evfd, &one, sizeof(one));
	while (r < 0 && errno == EINTR);
	/* EAGAIN means the counter is saturated: the worker is awake anyway. */
}

static void
schedule(mm_actor_t *a)
{
	struct mm_worker *w = a->worker, *self = mm__self;

	if (self == w) {
		runq_push(w, a);
		return;
	}
	inject_push(w, a);
	if (self != NULL)
		mm__stat_add(&self->st.remote_sched, 1);
	/* seq_cst load after the seq_cst CAS: if the worker stored
	 * sleeping = 1 before our push was visible, we see it here; if not,
	 * the worker's own seq_cst re-check of the inject stack sees our push.
	 * The exchange makes exactly one producer per sleep write the
	 * eventfd. */
	if (atomic_load_explicit(&w->sleeping, memory_order_seq_cst) &&
	    atomic_exchange_explicit(&w->sleeping, 0, memory_order_seq_cst)) {
		wake(w);
		if (self != NULL)
			mm__stat_add(&self->st.wakeups_sent, 1);
	}
}

/* ---- sending ------------------------------------------------------------ */

static int
send_common(mm_actor_t *to, const mm_msg_t *m)
{
	struct mm_worker *self = mm__self;
	mm_rt_t *rt = to->rt;
	int r;

	if (self == NULL &&
	    atomic_load_explicit(&rt->state, memory_order_acquire) !=
	        MM__RUNNING) {
		atomic_fetch_add_explicit(&rt->ext_send_closed, 1,
		    memory_order_relaxed);
		return -ESHUTDOWN;
	}
	r = mm_mbox_push(&to->mbox, m);
	if (r == 1)
		schedule(to);
	if (self != NULL) {
		_Atomic uint64_t *c = r >= 0 ? &self->st.sends :
		    r == -EAGAIN ? &self->st.send_full : &self->st.send_closed;
		mm__stat_add(c, 1);
	} else {
		_Atomic uint64_t *c = r >= 0 ? &rt->ext_sends :
		    r == -EAGAIN ? &rt->ext_send_full : &rt->ext_send_closed;
		atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
	}
	return r < 0 ? r : 0;
}

int
mm_send(mm_actor_t *to, const mm_msg_t *msg)
{
	return send_common(to, msg);
}

void
mm__discard(const mm_msg_t *m, void *actor)
{
	mm_actor_t *a = actor;
	if (m->type & MM_MSG_F_BUF)
		mm_buf_release(m->ptr);
	else if (a->drop != NULL)
		a->drop(m);
}

int
mm_send_or_drop(mm_actor_t *to, const mm_msg_t *msg)
{
	int r = send_common(to, msg);
	if (r < 0) {
		mm__discard(msg, to);
		if (mm__self != NULL)
			mm__stat_add(&mm__self->st.dropped, 1);
		else
			atomic_fetch_add_explicit(&to->rt->ext_dropped, 1,
			    memory_order_relaxed);
	}
	return r;
}

/* ---- actors ------------------------------------------------------------- */

mm_actor_t *
mm_actor_spawn(mm_rt_t *rt, mm_behaviour_fn fn, void *state,
    const mm_actor_opts_t *opts)
{
	mm_actor_opts_t o = {.worker = MM_WORKER_ANY, .mailbox_cap = 255};
	mm_actor_t *a;

	if (opts != NULL) {
		o = *opts;
		if (o.mailbox_cap == 0)
			o.mailbox_cap = 255;
	}
	if (fn == NULL || (o.worker != MM_WORKER_ANY && o.worker >= rt->nworkers)) {
		errno = EINVAL;
		return NULL;
	}
	if (atomic_load_explicit(&rt->state, memory_order_acquire) ==
	    MM__STOPPING || (mm__self == NULL &&
	    atomic_load_explicit(&rt->state, memory_order_acquire) != MM__RUNNING)) {
		errno = ESHUTDOWN;
		return NULL;
	}
	a = aligned_alloc(MM_CACHELINE, sizeof(*a));
	if (a == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	memset(a, 0, sizeof(*a));
	if (mm_mbox_init(&a->mbox, o.mailbox_cap) != 0) {
		free(a);
		errno = ENOMEM;
		return NULL;
	}
	if (o.worker == MM_WORKER_ANY)
		o.worker = atomic_fetch_add_explicit(&rt->next_worker, 1,
		    memory_order_relaxed) % rt->nworkers;
	atomic_init(&a->refs, 2); /* alive + caller */
	a->rt = rt;
	a->worker = &rt->workers[o.worker];
	a->fn = fn;
	a->state = state;
	a->dtor = o.dtor;
	a->drop = o.drop;
	a->name = o.name != NULL ? o.name : "actor";
	a->flags = o.flags;

	/* START is the first mailbox message: the mailbox is empty and nobody
	 * else has the pointer yet, so this push returns 1 and schedules. */
	mm_msg_t start = {.type = MM_MSG_START};
	int r = mm_mbox_push(&a->mbox, &start);
	MM_INVARIANT(r == 1);
	schedule(a);
	return a;
}

void
mm_actor_ref(mm_actor_t *a)
{
	atomic_fetch_add_explicit(&a->refs, 1, memory_order_relaxed);
}

void
mm__actor_free(mm_actor_t *a)
{
	unsigned n = mm_mbox_destroy(&a->mbox, mm__discard, a);
	if (n > 0) {
		if (mm__self != NULL)
			mm__stat_add(&mm__self->st.dropped, n);
		else
			atomic_fetch_add_explicit(&a->rt->ext_dropped, n,
			    memory_order_relaxed);
	}
	free(a);
}

void
mm_actor_unref(mm_actor_t *a)
{
	/* acq_rel: every holder's use of the actor happens before the free. */
	if (atomic_fetch_sub_explicit(&a->refs, 1, memory_order_acq_rel) == 1)
		mm__actor_free(a);
}

void *
mm_actor_state(const mm_actor_t *a)
{
	return a->state;
}

unsigned
mm_actor_worker(const mm_actor_t *a)
{
	return a->worker->index;
}

mm_rt_t *
mm_actor_rt(const mm_actor_t *a)
{
	return a->rt;
}

unsigned
mm_actor_turn_left(const mm_actor_t *self)
{
	return self->turn_left;
}

void
mm_actor_flush_later(mm_actor_t *self)
{
	MM_INVARIANT(mm__self == self->worker);
	if (self->flush_asked || self->exited)
		return;
	self->flush_asked = true;
	mm_actor_ref(self); /* the list's: the state lives until delivered */
	self->flush_next = self->worker->flushq;
	self->worker->flushq = self;
}

static void deliver_direct(struct mm_worker *w, mm_actor_t *a, const mm_msg_t *m);

/* End of a pass: MM_MSG_FLUSH to every actor that asked (deliver=false at
 * shutdown: only the references go). Asks made during delivery land in the
 * next pass's list. */
static void
run_flushes(struct mm_worker *w, bool deliver)
{
	mm_actor_t *a = w->flushq;
	w->flushq = NULL;
	mm_msg_t m = {.type = MM_MSG_FLUSH};
	while (a != NULL) {
		mm_actor_t *next = a->flush_next;
		a->flush_asked = false;
		a->flush_next = NULL;
		if (deliver)
			deliver_direct(w, a, &m);
		mm_actor_unref(a);
		a = next;
	}
}

unsigned
mm_actor_pending(const mm_actor_t *a)
{
	return mm_mbox_size(&a->mbox);
}

void
mm_actor_exit(mm_actor_t *self)
{
	MM_INVARIANT(mm__self == self->worker);
	if (self->exited)
		return;
	self->exited = true;
	/* Non-zero: the actor is scheduled (queued, being pushed to a queue,
	 * or running now); whoever pops it next drops the alive reference. */
	self->close_pending = mm_mbox_close(&self->mbox) > 0;
}

static void
link_actor(struct mm_worker *w, mm_actor_t *a)
{
	a->all_prev = NULL;
	a->all_next = w->all;
	if (w->all != NULL)
		w->all->all_prev = a;
	w->all = a;
	a->linked = true;
}

static void
unlink_actor(struct mm_worker *w, mm_actor_t *a)
{
	if (!a->linked)
		return;
	if (a->all_prev != NULL)
		a->all_prev->all_next = a->all_next;
	else
		w->all = a->all_next;
	if (a->all_next != NULL)
		a->all_next->all_prev = a->all_prev;
	a->linked = false;
}

/* After a behaviour call in which the actor exited. `running` is true when
 * called from the actor's own turn (it is in no queue then). */
static void
finish_exit(struct mm_worker *w, mm_actor_t *a, bool running)
{
	unlink_actor(w, a);
	if (a->dtor != NULL)
		a->dtor(a);
	MM_INVARIANT(a->timers_armed == 0);
	MM_INVARIANT(a->ios_active == 0);
	if (running || !a->close_pending)
		mm_actor_unref(a); /* the alive reference */
}

/* Deliver a runtime event (timer, io, pressure, stop) on the owner worker. */
static void
deliver_direct(struct mm_worker *w, mm_actor_t *a, const mm_msg_t *m)
{
	if (a->exited)
		return;
	a->fn(a, m);
	if (a->exited)
		finish_exit(w, a, false);
}

static void
actor_run(struct mm_worker *w, mm_actor_t *a)
{
	if (a->exited) {
		/* Exited outside its turn while scheduled (see
		 * mm_actor_exit): this queue entry held the last claim. */
		mm_actor_unref(a);
		return;
	}
	if (!a->linked)
		link_actor(w, a);

	uint64_t n = mm_mbox_pending(&a->mbox), i;
	if (n > w->rt->cfg.batch)
		n = w->rt->cfg.batch;
	for (i = 0; i < n && !a->exited; i++) {
		mm_msg_t m;
		MM_INVARIANT(mm_mbox_pop(&a->mbox, &m));
		a->turn_left = (unsigned)(n - i - 1);
		a->fn(a, &m);
	}
	a->turn_left = 0;
	mm__stat_add(&w->st.msgs_run, i);
	mm__stat_add(&w->st.turns, 1);
	if (a->exited) {
		finish_exit(w, a, true);
		return;
	}
	if (mm_mbox_done(&a->mbox, i) > 0)
		runq_push(w, a);
}

/* ---- timers ------------------------------------------------------------- */

void
mm_timer_init(mm_timer_t *t, mm_actor_t *owner, uint64_t arg)
{
	memset(t, 0, sizeof(*t));
	t->actor = owner;
	t->arg = arg;
}

void
mm_timer_set_slack(mm_timer_t *t, uint32_t slack_ms)
{
	t->slack_ms = slack_ms;
}

void
mm_timer_arm(mm_timer_t *t, uint64_t delay_ms)
{
	struct mm_worker *w = mm__self;
	MM_INVARIANT(w != NULL && (t->actor == NULL || t->actor->worker == w));
	uint64_t e = w->now + delay_ms;

	if (t->pprev != NULL) {
		uint64_t d = e > t->expires ? e - t->expires : t->expires - e;
		if (d <= t->slack_ms)
			return; /* lazy: keep the armed deadline */
		mm_tw_del(&w->tw, t);
	} else if (t->actor != NULL) {
		t->actor->timers_armed++;
	}
	t->expires = e;
	mm_tw_add(&w->tw, t);
}

void
mm_timer_cancel(mm_timer_t *t)
{
	if (t->pprev == NULL)
		return;
	struct mm_worker *w = mm__self;
	MM_INVARIANT(w != NULL && (t->actor == NULL || t->actor->worker == w));
	mm_tw_del(&w->tw, t);
	if (t->actor != NULL)
		t->actor->timers_armed--;
}

static void
fire_timer(mm_timer_t *t, void *ctx)
{
	struct mm_worker *w = ctx;
	if (t->actor == NULL) {
		t->cb(t);
		return;
	}
	t->actor->timers_armed--;
	mm_msg_t m = {.type = MM_MSG_TIMER, .arg = t->arg, .ptr = t};
	deliver_direct(w, t->actor, &m);
}

/* ---- file descriptors --------------------------------------------------- */

int
mm_io_start(mm_io_t *io, mm_actor_t *self, int fd, uint32_t events,
    uint64_t arg)
{
	struct mm_worker *w = self->worker;
	MM_INVARIANT(mm__self == w);
	struct epoll_event ev = {.events = events, .data.ptr = io};

	io->fd = fd;
	io->events = events;
	io->actor = self;
	io->arg = arg;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		io->actor = NULL;
		return -errno;
	}
	self->ios_active++;
	return 0;
}

int
mm_io_modify(mm_io_t *io, uint32_t events)
{
	MM_INVARIANT(io->actor != NULL && mm__self == io->actor->worker);
	struct epoll_event ev = {.events = events, .data.ptr = io};
	if (epoll_ctl(io->actor->worker->epfd, EPOLL_CTL_MOD, io->fd, &ev) != 0)
		return -errno;
	io->events = events;
	return 0;
}

void
mm_io_stop(mm_io_t *io)
{
	if (io->actor == NULL)
		return;
	struct mm_worker *w = io->actor->worker;
	MM_INVARIANT(mm__self == w);
	/* ENOENT/EBADF if the fd was already closed: nothing to remove. */
	(void)epoll_ctl(w->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	/* The current epoll batch may still name this handle. */
	for (int i = w->ev_i + 1; i < w->ev_n; i++)
		if (w->evs[i].data.ptr == io)
			w->evs[i].data.ptr = NULL;
	io->actor->ios_active--;
	io->actor = NULL;
}

/* ---- the worker loop ---------------------------------------------------- */

static void
mark_busy(struct mm_worker *w)
{
	if (atomic_load_explicit(&w->idle, memory_order_relaxed)) {
		/* seq_cst, and before the inject stack is drained: mm_rt_stop
		 * reads inject, idle, activity in that order (see there). */
		atomic_store_explicit(&w->idle, 0, memory_order_seq_cst);
		atomic_fetch_add_explicit(&w->activity, 1,
		    memory_order_seq_cst);
	}
}

static void
check_pressure(struct mm_worker *w)
{
	int lvl = atomic_load_explicit(&w->rt->pressure, memory_order_relaxed);
	if (lvl == w->pressure_seen)
		return;
	w->pressure_seen = lvl;
	mm_msg_t m = {.type = MM_MSG_PRESSURE, .aux = (uint32_t)lvl};
	for (mm_actor_t *a = w->all, *n; a != NULL; a = n) {
		n = a->all_next;
		if (a->flags & MM_ACTOR_F_PRESSURE)
			deliver_direct(w, a, &m);
	}
}

static void
poll_io(struct mm_worker *w, int block, int state)
{
	int timeout = 0;

	uint64_t spin_ns = (uint64_t)w->rt->cfg.spin_us * 1000u, slept = 0;
	if (block) {
		atomic_store_explicit(&w->idle, 1, memory_order_seq_cst);
		/* The spin catches a message another worker sends within
		 * spin_us without the eventfd and the sleep; it watches only
		 * the inject stack. A worker that waits on its sockets (a
		 * relay with one worker) would burn its spins for nothing
		 * (about a fifth of such a node's CPU) and see its I/O up to
		 * spin_us late, so the spin stays off while it does not pay. */
		if (!w->spin_off && spin_ns != 0) {
			uint64_t until = clock_ns() + spin_ns;
			for (unsigned i = 1;; i++) {
				if (atomic_load_explicit(&w->inject,
				        memory_order_relaxed) != NULL ||
				    atomic_load_explicit(&w->rt->state,
				        memory_order_relaxed) != state) {
					w->spin_misses = 0;
					return;
				}
				ck_pr_stall();
				if (i % 16 == 0 && clock_ns() >= until)
					break;
			}
			if (++w->spin_misses >= SPIN_MISSES) {
				w->spin_off = 1;
				mm__stat_add(&w->st.spin_offs, 1);
			}
		}
		uint64_t next = state == MM__RUNNING ?
		    mm_tw_next(&w->tw, clock_ms()) : UINT64_MAX;
		/* The cap only bounds how stale w->now can get while idle. */
		timeout = next > 1000 ? 1000 : (int)next;
		/* Dekker with schedule(): announce sleep, then re-check. */
		atomic_store_explicit(&w->sleeping, 1, memory_order_seq_cst);
		if (atomic_load_explicit(&w->inject, memory_order_seq_cst) !=
		        NULL ||
		    atomic_load_explicit(&w->rt->state, memory_order_seq_cst) !=
		        state)
			timeout = 0;
	}
	if (block && w->spin_off && spin_ns != 0)
		slept = clock_ns();
	int n = epoll_wait(w->epfd, w->evs, MM_EVCAP, timeout);
	if (block)
		atomic_store_explicit(&w->sleeping, 0, memory_order_relaxed);
	if (slept != 0 && n > 0 && clock_ns() - slept < spin_ns) {
		/* woken by another thread's message within a spin's time:
		 * spinning would have caught it */
		for (int i = 0; i < n; i++)
			if (w->evs[i].data.ptr == &w->evfd) {
				w->spin_off = 0;
				w->spin_misses = 0;
				break;
			}
	}
	mm__stat_add(&w->st.polls, 1);
	if (n <= 0)
		return;
	w->now = clock_ms();
	w->ev_n = n;
	for (w->ev_i = 0; w->ev_i < n; w->ev_i++) {
		void *p = w->evs[w->ev_i].data.ptr;
		if (p == NULL)
			continue; /* stopped during this batch */
		if (p == &w->evfd) {
			uint64_t v;
			if (read(w->evfd, &v, sizeof(v)) == (ssize_t)sizeof(v))
				mm__stat_add(&w->st.wakeups_recv, 1);
			continue;
		}
		mm_io_t *io = p;
		mark_busy(w);
		mm_msg_t m = {.type = MM_MSG_IO,
		    .aux = w->evs[w->ev_i].events, .arg = io->arg, .ptr = io};
		mm__stat_add(&w->st.io_events, 1);
		deliver_direct(w, io->actor, &m);
	}
	w->ev_n = 0;
}

/* Shutdown on this worker: STOP to every live actor, exit them; then, once
 * every worker has done so (no behaviour runs anywhere any more), release
 * the queue entries of actors that exited while scheduled. */
static void
stop_actors(struct mm_worker *w)
{
	mm_msg_t stop = {.type = MM_MSG_STOP};

	while (w->all != NULL) {
		mm_actor_t *a = w->all;
		a->fn(a, &stop);
		mm_actor_exit(a);
		finish_exit(w, a, false);
	}
	pthread_barrier_wait(&w->rt->stop_barrier);
	inject_drain(w);
	mm_actor_t *a;
	while ((a = runq_pop(w)) != NULL) {
		if (a->exited) {
			mm_actor_unref(a);
			continue;
		}
		/* Spawned but never started: exit it unstarted. */
		mm_actor_exit(a);
		finish_exit(w, a, false);
		if (a->close_pending)
			mm_actor_unref(a);
	}
}

static void
pin_thread(struct mm_worker *w)
{
	cpu_set_t allowed, one;
	if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0)
		return;
	int n = CPU_COUNT(&allowed), k = (int)(w->index % (unsigned)n);
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, &allowed) || k-- > 0)
			continue;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		/* Best effort: a container may forbid it; we still run. */
		(void)pthread_setaffinity_np(pthread_self(), sizeof(one), &one);
		return;
	}
}

static void *
worker_main(void *arg)
{
	struct mm_worker *w = arg;
	mm_rt_t *rt = w->rt;

	mm__self = w;
	if (rt->cfg.pin)
		pin_thread(w);
	mm__mem_bind_arena(w->index);
	rng_seed(w->rng);
	w->now = clock_ms();
	if (w->index == 0) {
		mm__mem_timer_fire(&w->mem_timer); /* first sample, arms it */
	}
	for (;;) {
		w->now = clock_ms();
		int state = atomic_load_explicit(&rt->state,
		    memory_order_acquire);
		if (state == MM__STOPPING)
			break;
		if (w->runq_head != NULL ||
		    atomic_load_explicit(&w->inject, memory_order_relaxed) != NULL)
			mark_busy(w);
		inject_drain(w);
		check_pressure(w);
		mm_actor_t *a;
		for (int k = 0; k < MM_TURNS_PER_POLL &&
		    (a = runq_pop(w)) != NULL; k++)
			actor_run(w, a);
		if (state == MM__RUNNING) {
			uint64_t f = mm_tw_advance(&w->tw, w->now, fire_timer, w);
			if (f != 0)
				mm__stat_add(&w->st.timers_fired, f);
		}
		/* Flushes asked by the pass's turns and timers, then by the
		 * I/O batch's handlers: none may wait through a sleep. */
		if (w->flushq != NULL)
			run_flushes(w, true);
		/* not to sleep while a flush waits: one asked during the
		 * flushes just run (a connection going on with its reads
		 * after its turn's share, say) */
		poll_io(w, w->runq_head == NULL && w->flushq == NULL, state);
		if (w->flushq != NULL)
			run_flushes(w, true);
	}
	if (w->index == 0)
		mm_timer_cancel(&w->mem_timer);
	run_flushes(w, false);
	stop_actors(w);
	run_flushes(w, false); /* asked while handling STOP */
	mm__self = NULL;
	return NULL;
}

/* ---- runtime ------------------------------------------------------------ */

void
mm_rt_config_default(mm_rt_config_t *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->pin = 1;
	cfg->batch = 64;
	cfg->spin_us = 20;
	cfg->mem_budget = 50u * 1000 * 1000; /* 50 MB, the node's promise */
	cfg->mem_interval_ms = 100;
	cfg->drain_timeout_ms = 2000;
}

static void
wake_all(mm_rt_t *rt)
{
	for (unsigned i = 0; i < rt->nworkers; i++)
		wake(&rt->workers[i]);
}

static void
free_workers(mm_rt_t *rt, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		struct mm_worker *w = &rt->workers[i];
		if (w->epfd >= 0)
			close(w->epfd);
		if (w->evfd >= 0)
			close(w->evfd);
		free(w->evs);
	}
	free(rt->workers);
}

int
mm_rt_create(const mm_rt_config_t *cfg, mm_rt_t **out)
{
	mm_rt_t *rt;
	int err = 0;
	unsigned started = 0;

	rt = aligned_alloc(MM_CACHELINE, sizeof(*rt));
	if (rt == NULL)
		return -ENOMEM;
	memset(rt, 0, sizeof(*rt));
	mm_rt_config_default(&rt->cfg);
	if (cfg != NULL) {
		rt->cfg = *cfg;
		if (rt->cfg.batch == 0)
			rt->cfg.batch = 64;
		if (rt->cfg.mem_budget == 0)
			rt->cfg.mem_budget = 50u * 1000 * 1000;
		if (rt->cfg.mem_interval_ms == 0)
			rt->cfg.mem_interval_ms = 100;
	}

	rt->nworkers = rt->cfg.workers;
	if (rt->nworkers == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		rt->nworkers = n > 0 ? (unsigned)n : 1;
	}
	if (rt->nworkers > 1024) {
		free(rt);
		return -EINVAL;
	}
	atomic_init(&rt->state, MM__RUNNING);
	atomic_init(&rt->pressure, MM_PRESSURE_OK);
	atomic_init(&rt->pressure_forced, -1);

	size_t wsz = sizeof(struct mm_worker) * rt->nworkers;
	rt->workers = aligned_alloc(MM_CACHELINE,
	    (wsz + MM_CACHELINE - 1) / MM_CACHELINE * MM_CACHELINE);
	if (rt->workers == NULL) {
		free(rt);
		return -ENOMEM;
	}
	memset(rt->workers, 0, wsz);
	for (unsigned i = 0; i < rt->nworkers; i++) {
		struct mm_worker *w = &rt->workers[i];
		w->rt = rt;
		w->index = i;
		w->epfd = w->evfd = -1;
		atomic_init(&w->inject, NULL);
		atomic_init(&w->sleeping, 0);
		atomic_init(&w->idle, 0);
		atomic_init(&w->activity, 0);
		w->pressure_seen = MM_PRESSURE_OK;
		mm_tw_init(&w->tw, clock_ms());
		mm_timer_init(&w->mem_timer, NULL, 0);
		w->mem_timer.cb = mm__mem_timer_fire;
		w->evs = calloc(MM_EVCAP, sizeof(*w->evs));
		w->epfd = epoll_create1(EPOLL_CLOEXEC);
		w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (w->evs == NULL || w->epfd < 0 || w->evfd < 0) {
			err = w->evs == NULL ? -ENOMEM : -errno;
			free_workers(rt, i + 1);
			free(rt);
			return err;
		}
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &w->evfd};
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->evfd, &ev) != 0) {
			err = -errno;
			free_workers(rt, i + 1);
			free(rt);
			return err;
		}
	}
	pthread_barrier_init(&rt->stop_barrier, NULL, rt->nworkers);

	/* Workers take no signals: the embedding program handles them. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (; started < rt->nworkers; started++) {
		err = -pthread_create(&rt->workers[started].thread, NULL,
		    worker_main, &rt->workers[started]);
		if (err != 0)
			break;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err != 0) {
		/* Threads that started wait at the barrier for all nworkers:
		 * nothing sane can undo that, and it only happens when the
		 * system is out of threads at start-up. */
		MM_INVARIANT(started == 0);
		pthread_barrier_destroy(&rt->stop_barrier);
		free_workers(rt, rt->nworkers);
		free(rt);
		return err;
	}
	*out = rt;
	return 0;
}

/*
 * Drain detection. A message waiting anywhere keeps its actor scheduled: on
 * a run queue (its worker is not idle), on an inject stack (seen non-empty),
 * or about to be pushed by a running worker (not idle). A worker sets idle
 * only when its run queue is empty, and clears it (bumping activity) before
 * it drains its inject stack. Two passes that each see every worker idle
 * with an empty inject stack, and the same activity sum, prove that no work
 * moved in between.
 */
static bool
drain_pass(mm_rt_t *rt, uint64_t *activity)
{
	bool quiet = true;
	uint64_t sum = 0;
	for (unsigned i = 0; i < rt->nworkers; i++) {
		struct mm_worker *w = &rt->workers[i];
		if (atomic_load_explicit(&w->inject, memory_order_seq_cst) != NULL ||
		    !atomic_load_explicit(&w->idle, memory_order_seq_cst))
			quiet = false;
		sum += atomic_load_explicit(&w->activity, memory_order_seq_cst);
	}
	*activity = sum;
	return quiet;
}

void
mm_rt_stop(mm_rt_t *rt)
{
	int expect = MM__RUNNING;
	if (!atomic_compare_exchange_strong(&rt->state, &expect, MM__DRAINING))
		return;
	wake_all(rt);

	uint64_t deadline = clock_ms() + rt->cfg.drain_timeout_ms;
	uint64_t prev = UINT64_MAX, act;
	int calm = 0;
	while (clock_ms() < deadline) {
		bool quiet = drain_pass(rt, &act);
		calm = quiet && act == prev ? calm + 1 : 0;
		if (calm >= 2)
			break;
		prev = act;
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	atomic_store_explicit(&rt->state, MM__STOPPING, memory_order_seq_cst);
	wake_all(rt);
	for (unsigned i = 0; i < rt->nworkers; i++)
		pthread_join(rt->workers[i].thread, NULL);
	pthread_barrier_destroy(&rt->stop_barrier);
}

void
mm_rt_destroy(mm_rt_t *rt)
{
	if (rt == NULL)
		return;
	MM_INVARIANT(atomic_load(&rt->state) == MM__STOPPING);
	free_workers(rt, rt->nworkers);
	free(rt);
}

unsigned
mm_rt_workers(const mm_rt_t *rt)
{
	return rt->nworkers;
}

void
mm_rt_stats(mm_rt_t *rt, unsigned k, mm_worker_stats_t *out)
{
	memset(out, 0, sizeof(*out));
	unsigned lo = k == MM_WORKER_ANY ? 0 : k;
	unsigned hi = k == MM_WORKER_ANY ? rt->nworkers : k + 1;
	if (lo >= rt->nworkers)
		return;
#define LD(x) atomic_load_explicit(&(x), memory_order_relaxed)
	for (unsigned i = lo; i < hi; i++) {
		struct mm_worker *w = &rt->workers[i];
		out->msgs_run += LD(w->st.msgs_run);
		out->turns += LD(w->st.turns);
		out->sends += LD(w->st.sends);
		out->send_full += LD(w->st.send_full);
		out->send_closed += LD(w->st.send_closed);
		out->dropped += LD(w->st.dropped);
		out->wakeups_sent += LD(w->st.wakeups_sent);
		out->wakeups_recv += LD(w->st.wakeups_recv);
		out->timers_fired += LD(w->st.timers_fired);
		out->io_events += LD(w->st.io_events);
		out->polls += LD(w->st.polls);
		out->remote_sched += LD(w->st.remote_sched);
		out->spin_offs += LD(w->st.spin_offs);
	}
	if (k == MM_WORKER_ANY) {
		out->sends += LD(rt->ext_sends);
		out->send_full += LD(rt->ext_send_full);
		out->send_closed += LD(rt->ext_send_closed);
		out->dropped += LD(rt->ext_dropped);
	}
#undef LD
}
