/*
 * mm_rt.h on a virtual clock, one thread (mm_sim.h). Linked instead of rt.c
 * and mem.c in the meshmap_sim library.
 *
 * Mailboxes here are plain growable rings (one thread: no ck_ring, no
 * atomics) that enforce the same capacity as the real ones, so a full
 * mailbox refuses a send exactly where the server's would; they start at 8
 * slots and grow, because thousands of simulated nodes cannot each
 * preallocate the server's 300 KB node mailbox.
 */
#include "mm_sim.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rng.h"
#include "timerwheel.h"

#define SIM_INVARIANT(c)                                                       \
	do {                                                                   \
		if (__builtin_expect(!(c), 0)) {                               \
			fprintf(stderr, "meshmap sim: invariant failed: %s "    \
			    "(%s:%d)\n", #c, __FILE__, __LINE__);              \
			abort();                                               \
		}                                                              \
	} while (0)

/* Lifetime: two references at spawn (alive + caller); the run queue and
 * the flush list each hold one while the actor is on them. */
struct mm_actor {
	mm_rt_t *rt;
	mm_behaviour_fn fn;
	void *state;
	void (*dtor)(mm_actor_t *);
	void (*drop)(const mm_msg_t *);
	const char *name;
	unsigned flags;
	uint32_t group;
	unsigned refs;
	/* mailbox: ring of qalloc (a power of two) slots, at most cap used */
	mm_msg_t *q;
	unsigned qhead, qlen, qalloc, cap;
	bool exited, finished, scheduled, flush_asked;
	unsigned turn_left;
	mm_actor_t *run_next, *flush_next;
	mm_actor_t *all_prev, *all_next; /* live actors */
};

struct mm_rt {
	uint64_t now, wall0;
	unsigned batch;
	uint64_t rng[4], srng[4];
	mm_tw_t tw;
	mm_actor_t *runq_head, *runq_tail;
	mm_actor_t *flushq;
	mm_actor_t *all;
	mm_actor_t *cur; /* the actor whose behaviour runs now */
	uint32_t group;
	bool stopped;
	mm_sim_stats_t st;
};

static mm_rt_t *g_sim; /* the one simulation (mm_now_ms has no argument) */

/* ---- clock and randomness ------------------------------------------------ */

uint64_t
mm_now_ms(void)
{
	return g_sim != NULL ? g_sim->now : 0;
}

uint64_t
mm_wall_ms(void)
{
	return g_sim != NULL ? g_sim->wall0 + g_sim->now : 0;
}

uint64_t mm_sim_now(const mm_rt_t *rt) { return rt->now; }

int mm_rt_current_worker(void) { return g_sim != NULL ? 0 : -1; }

#define xoshiro mm__xoshiro
#define seed_stream mm__splitmix_seed

uint64_t
mm_random(void)
{
	static uint64_t fallback[4] = {1, 2, 3, 4};
	return xoshiro(g_sim != NULL ? g_sim->rng : fallback);
}

int
mm_secure_random(void *buf, size_t n)
{
	/* deterministic on purpose: see mm_sim.h */
	static uint64_t fallback[4] = {5, 6, 7, 8};
	uint64_t *s = g_sim != NULL ? g_sim->srng : fallback;
	unsigned char *p = buf;
	while (n > 0) {
		uint64_t r = xoshiro(s);
		size_t k = n < 8 ? n : 8;
		memcpy(p, &r, k);
		p += k;
		n -= k;
	}
	return 0;
}

/* ---- runtime ------------------------------------------------------------- */

void
mm_rt_config_default(mm_rt_config_t *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->workers = 1;
	cfg->batch = 64;
}

int
mm_sim_create(const mm_sim_config_t *cfg, mm_rt_t **out)
{
	if (g_sim != NULL)
		return -EBUSY;
	mm_rt_t *rt = calloc(1, sizeof(*rt));
	if (rt == NULL)
		return -ENOMEM;
	rt->wall0 = cfg != NULL && cfg->wall_start_ms ? cfg->wall_start_ms :
	    1800000000000ull;
	rt->batch = cfg != NULL && cfg->batch ? cfg->batch : 64;
	uint64_t seed = cfg != NULL ? cfg->seed : 1;
	seed_stream(rt->rng, seed);
	seed_stream(rt->srng, seed ^ 0x5eed5eed5eed5eedull);
	mm_tw_init(&rt->tw, 0);
	g_sim = rt;
	*out = rt;
	return 0;
}

/* The server's entry point also works here: a simulation with seed 1. */
int
mm_rt_create(const mm_rt_config_t *cfg, mm_rt_t **out)
{
	mm_sim_config_t sc = {.seed = 1, .batch = cfg != NULL ? cfg->batch : 0};
	return mm_sim_create(&sc, out);
}

unsigned mm_rt_workers(const mm_rt_t *rt) { (void)rt; return 1; }

void mm_sim_set_group(mm_rt_t *rt, uint32_t g) { rt->group = g; }
uint32_t mm_sim_group_of(const mm_actor_t *a) { return a->group; }
uint32_t mm_sim_group(const mm_rt_t *rt) { return rt->cur != NULL ? rt->cur->group : rt->group; }

void
mm_sim_stats(const mm_rt_t *rt, mm_sim_stats_t *out)
{
	*out = rt->st;
}

void
mm_rt_stats(mm_rt_t *rt, unsigned k, mm_worker_stats_t *out)
{
	(void)k;
	memset(out, 0, sizeof(*out));
	out->msgs_run = rt->st.msgs;
	out->turns = rt->st.turns;
	out->sends = rt->st.sends;
	out->send_full = rt->st.send_full;
	out->send_closed = rt->st.send_closed;
	out->dropped = rt->st.dropped;
	out->timers_fired = rt->st.timers;
}

/* ---- memory: the simulator has no budget of its own ---------------------- */

void
mm_rt_mem(mm_rt_t *rt, mm_mem_stats_t *out)
{
	(void)rt;
	memset(out, 0, sizeof(*out));
	out->budget = 50000000;
}

enum mm_pressure mm_rt_pressure(mm_rt_t *rt) { (void)rt; return MM_PRESSURE_OK; }
void mm_rt_force_pressure(mm_rt_t *rt, int level) { (void)rt; (void)level; }
void mm_mem_flush_thread_cache(void) {}

/* ---- actors -------------------------------------------------------------- */

static void
discard(mm_actor_t *a, const mm_msg_t *m)
{
	if (m->type & MM_MSG_F_BUF)
		mm_buf_release(m->ptr);
	else if (a->drop != NULL)
		a->drop(m);
}

static void
mbox_discard_all(mm_actor_t *a)
{
	while (a->qlen > 0) {
		mm_msg_t m = a->q[a->qhead];
		a->qhead = (a->qhead + 1) & (a->qalloc - 1);
		a->qlen--;
		a->rt->st.dropped++;
		discard(a, &m);
	}
}

static void
actor_free(mm_actor_t *a)
{
	mbox_discard_all(a);
	free(a->q);
	free(a);
}

void mm_actor_ref(mm_actor_t *a) { a->refs++; }

void
mm_actor_unref(mm_actor_t *a)
{
	SIM_INVARIANT(a->refs > 0);
	if (--a->refs == 0)
		actor_free(a);
}

static void
schedule(mm_actor_t *a)
{
	if (a->scheduled)
		return;
	a->scheduled = true;
	a->refs++; /* the run queue's */
	a->run_next = NULL;
	if (a->rt->runq_tail != NULL)
		a->rt->runq_tail->run_next = a;
	else
		a->rt->runq_head = a;
	a->rt->runq_tail = a;
}

static int
mbox_push(mm_actor_t *a, const mm_msg_t *m)
{
	if (a->qlen == a->cap)
		return -EAGAIN;
	if (a->qlen == a->qalloc) {
		unsigned na = a->qalloc ? a->qalloc * 2 : 8;
		mm_msg_t *nq = malloc(na * sizeof(*nq));
		if (nq == NULL)
			return -EAGAIN; /* the sender handles it as a full mailbox */
		for (unsigned i = 0; i < a->qlen; i++)
			nq[i] = a->q[(a->qhead + i) & (a->qalloc - 1)];
		free(a->q);
		a->q = nq;
		a->qalloc = na;
		a->qhead = 0;
	}
	a->q[(a->qhead + a->qlen) & (a->qalloc - 1)] = *m;
	a->qlen++;
	return 0;
}

mm_actor_t *
mm_actor_spawn(mm_rt_t *rt, mm_behaviour_fn fn, void *state,
    const mm_actor_opts_t *opts)
{
	if (fn == NULL) {
		errno = EINVAL;
		return NULL;
	}
	if (rt->stopped) {
		errno = ESHUTDOWN;
		return NULL;
	}
	mm_actor_t *a = calloc(1, sizeof(*a));
	if (a == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	a->rt = rt;
	a->fn = fn;
	a->state = state;
	a->cap = opts != NULL && opts->mailbox_cap ? opts->mailbox_cap : 255;
	if (opts != NULL) {
		a->dtor = opts->dtor;
		a->drop = opts->drop;
		a->name = opts->name;
		a->flags = opts->flags;
	}
	if (a->name == NULL)
		a->name = "actor";
	a->group = rt->cur != NULL ? rt->cur->group : rt->group;
	a->refs = 2; /* alive + caller */
	a->all_next = rt->all;
	if (rt->all != NULL)
		rt->all->all_prev = a;
	rt->all = a;
	rt->st.actors_live++;
	mm_msg_t start = {.type = MM_MSG_START};
	if (mbox_push(a, &start) != 0) {
		free(a);
		errno = ENOMEM;
		return NULL;
	}
	schedule(a);
	return a;
}

void *mm_actor_state(const mm_actor_t *a) { return a->state; }
unsigned mm_actor_worker(const mm_actor_t *a) { (void)a; return 0; }
mm_rt_t *mm_actor_rt(const mm_actor_t *a) { return a->rt; }
unsigned mm_actor_pending(const mm_actor_t *a) { return a->qlen; }
unsigned mm_actor_turn_left(const mm_actor_t *self) { return self->turn_left; }

/* The actor has exited and is not running: dtor, mailbox, alive ref. */
static void
finish_exit(mm_actor_t *a)
{
	if (a->finished)
		return;
	a->finished = true;
	if (a->all_prev != NULL)
		a->all_prev->all_next = a->all_next;
	else
		a->rt->all = a->all_next;
	if (a->all_next != NULL)
		a->all_next->all_prev = a->all_prev;
	a->rt->st.actors_live--;
	if (a->dtor != NULL)
		a->dtor(a);
	mbox_discard_all(a);
	mm_actor_unref(a); /* alive */
}

void
mm_actor_exit(mm_actor_t *self)
{
	if (self->exited)
		return;
	self->exited = true;
	/* an actor that exits from its own behaviour finishes when that call
	 * returns; one closed from outside (a simulated link failing in a
	 * timer callback) at once */
	if (self->rt->cur != self)
		finish_exit(self);
}

void
mm_actor_flush_later(mm_actor_t *self)
{
	if (self->flush_asked || self->exited)
		return;
	self->flush_asked = true;
	self->refs++;
	self->flush_next = self->rt->flushq;
	self->rt->flushq = self;
}

static void
deliver(mm_actor_t *a, const mm_msg_t *m)
{
	if (a->exited)
		return;
	mm_actor_t *prev = a->rt->cur;
	a->rt->cur = a;
	a->fn(a, m);
	a->rt->cur = prev;
	if (a->exited)
		finish_exit(a);
}

static int
send_common(mm_actor_t *to, const mm_msg_t *m)
{
	mm_rt_t *rt = to->rt;
	if (to->exited) {
		rt->st.send_closed++;
		return -EPIPE;
	}
	int r = mbox_push(to, m);
	if (r != 0) {
		rt->st.send_full++;
		return r;
	}
	rt->st.sends++;
	schedule(to);
	return 0;
}

int mm_send(mm_actor_t *to, const mm_msg_t *msg) { return send_common(to, msg); }

int
mm_send_or_drop(mm_actor_t *to, const mm_msg_t *msg)
{
	int r = send_common(to, msg);
	if (r < 0) {
		discard(to, msg);
		to->rt->st.dropped++;
	}
	return r;
}

static void
actor_turn(mm_rt_t *rt, mm_actor_t *a)
{
	unsigned n = a->qlen < rt->batch ? a->qlen : rt->batch, i;
	rt->cur = a;
	for (i = 0; i < n && !a->exited; i++) {
		mm_msg_t m = a->q[a->qhead];
		a->qhead = (a->qhead + 1) & (a->qalloc - 1);
		a->qlen--;
		a->turn_left = n - i - 1;
		a->fn(a, &m);
	}
	rt->cur = NULL;
	a->turn_left = 0;
	rt->st.msgs += i;
	rt->st.turns++;
	if (a->exited)
		finish_exit(a);
}

/* Turns until nothing is runnable, flushes after each pass. */
void
mm_sim_settle(mm_rt_t *rt)
{
	for (;;) {
		mm_actor_t *a;
		while ((a = rt->runq_head) != NULL) {
			rt->runq_head = a->run_next;
			if (rt->runq_head == NULL)
				rt->runq_tail = NULL;
			/* Thousands of nodes' actors do not fit in the cache, and
			 * each turn began with misses on the actor, its next
			 * message and its state (13% of the time at 900 nodes,
			 * perf). The next actor's struct was asked for at the
			 * previous pop; ask for what its turn reads first, and
			 * for the one after it. Hints only. */
			mm_actor_t *b = rt->runq_head;
			if (b != NULL) {
				if (b->q != NULL)
					__builtin_prefetch(&b->q[b->qhead]);
				__builtin_prefetch(b->state);
				__builtin_prefetch(b->run_next);
			}
			a->scheduled = false;
			if (!a->exited)
				actor_turn(rt, a);
			if (!a->exited && a->qlen > 0)
				schedule(a);
			mm_actor_unref(a); /* the run queue's */
		}
		if ((a = rt->flushq) == NULL)
			return;
		rt->flushq = NULL;
		/* reversed asks: deliver in the order they were asked */
		mm_actor_t *rev = NULL;
		while (a != NULL) {
			mm_actor_t *nx = a->flush_next;
			a->flush_next = rev;
			rev = a;
			a = nx;
		}
		mm_msg_t fm = {.type = MM_MSG_FLUSH};
		while (rev != NULL) {
			mm_actor_t *nx = rev->flush_next;
			rev->flush_asked = false;
			rev->flush_next = NULL;
			deliver(rev, &fm);
			mm_actor_unref(rev);
			rev = nx;
		}
	}
}

/* ---- timers -------------------------------------------------------------- */

void
mm_timer_init(mm_timer_t *t, mm_actor_t *owner, uint64_t arg)
{
	memset(t, 0, sizeof(*t));
	t->actor = owner;
	t->arg = arg;
}

void mm_timer_set_slack(mm_timer_t *t, uint32_t slack_ms) { t->slack_ms = slack_ms; }

void
mm_timer_arm(mm_timer_t *t, uint64_t delay_ms)
{
	mm_rt_t *rt = g_sim;
	SIM_INVARIANT(rt != NULL);
	uint64_t e = rt->now + delay_ms;
	if (t->pprev != NULL) {
		uint64_t d = e > t->expires ? e - t->expires : t->expires - e;
		if (d <= t->slack_ms)
			return;
		mm_tw_del(&rt->tw, t);
	}
	t->expires = e;
	mm_tw_add(&rt->tw, t);
}

void
mm_timer_cancel(mm_timer_t *t)
{
	if (t->pprev != NULL && g_sim != NULL)
		mm_tw_del(&g_sim->tw, t);
}

static void
fire(mm_timer_t *t, void *ctx)
{
	mm_rt_t *rt = ctx;
	rt->st.timers++;
	if (t->actor == NULL) {
		t->cb(t);
		return;
	}
	mm_msg_t m = {.type = MM_MSG_TIMER, .arg = t->arg, .ptr = t};
	deliver(t->actor, &m);
}

/* How far the clock moves to the wheel's next work (UINT64_MAX: none). A
 * timer armed with delay 0 after the wheel passed the current tick fires
 * at the next one. */
static uint64_t
next_step(const mm_rt_t *rt)
{
	uint64_t d = mm_tw_next(&rt->tw, rt->now);
	return d == 0 && rt->tw.next > rt->now ? 1 : d;
}

uint64_t
mm_sim_run_until(mm_rt_t *rt, uint64_t until)
{
	uint64_t before = rt->st.timers;
	mm_sim_settle(rt);
	for (;;) {
		uint64_t d = next_step(rt);
		if (d == UINT64_MAX || rt->now + d > until)
			break;
		rt->now += d;
		mm_tw_advance(&rt->tw, rt->now, fire, rt);
		mm_sim_settle(rt);
	}
	if (rt->now < until) {
		rt->now = until;
		mm_tw_advance(&rt->tw, rt->now, fire, rt);
		mm_sim_settle(rt);
	}
	return rt->st.timers - before;
}

/* ---- crashes ------------------------------------------------------------- */

static int
in_groups(uint32_t g, const uint32_t *gs, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (gs[i] == g)
			return 1;
	return 0;
}

/* Live actors (of groups gs[n]; gs NULL: all), each with a reference. */
static mm_actor_t **
collect(mm_rt_t *rt, const uint32_t *gs, unsigned n, size_t *count)
{
	size_t k = 0;
	mm_actor_t **v = malloc((rt->st.actors_live + 1) * sizeof(*v));
	SIM_INVARIANT(v != NULL);
	for (mm_actor_t *a = rt->all; a != NULL; a = a->all_next)
		if (gs == NULL || in_groups(a->group, gs, n)) {
			a->refs++;
			v[k++] = a;
		}
	*count = k;
	return v;
}

/* Exit every actor of v[k] that has not exited yet, drop the collection's
 * references, free v. */
static void
exit_all(mm_actor_t **v, size_t k)
{
	for (size_t i = 0; i < k; i++) {
		if (!v[i]->exited) {
			v[i]->exited = true;
			finish_exit(v[i]);
		}
		mm_actor_unref(v[i]);
	}
	free(v);
}

void
mm_sim_kill_groups(mm_rt_t *rt, const uint32_t *gs, unsigned n)
{
	/* the dead actors' timers leave the wheel first: their state may be
	 * freed right after (the caller destroys the crashed node) */
	for (unsigned l = 0; l < MM_TW_LEVELS; l++)
		for (unsigned s = 0; s < MM_TW_SLOTS; s++) {
			mm_timer_t *t = rt->tw.slot[l][s];
			while (t != NULL) {
				mm_timer_t *nx = t->next;
				if (t->actor != NULL && in_groups(t->actor->group, gs, n))
					mm_tw_del(&rt->tw, t);
				t = nx;
			}
		}
	/* collected first: a dtor may exit other actors of the list */
	size_t k;
	mm_actor_t **v = collect(rt, gs, n, &k);
	exit_all(v, k);
}

void
mm_rt_stop(mm_rt_t *rt)
{
	mm_sim_settle(rt);
	rt->stopped = true;
	mm_msg_t stop = {.type = MM_MSG_STOP};
	size_t k;
	mm_actor_t **v = collect(rt, NULL, 0, &k);
	for (size_t i = 0; i < k; i++)
		deliver(v[i], &stop);
	mm_sim_settle(rt);
	exit_all(v, k);
	/* what the run queue and flush list still hold */
	mm_sim_settle(rt);
	/* runtime-internal timers (segments in flight on simulated links)
	 * run out: they only free what they hold now */
	uint64_t d;
	while ((d = next_step(rt)) != UINT64_MAX) {
		rt->now += d;
		mm_tw_advance(&rt->tw, rt->now, fire, rt);
	}
}

void
mm_rt_destroy(mm_rt_t *rt)
{
	if (rt == NULL)
		return;
	if (g_sim == rt)
		g_sim = NULL;
	free(rt);
}

/* ---- file descriptors: not simulated -------------------------------------- */

int
mm_io_start(mm_io_t *io, mm_actor_t *self, int fd, uint32_t events, uint64_t arg)
{
	(void)io; (void)self; (void)fd; (void)events; (void)arg;
	return -ENOTSUP;
}

int mm_io_modify(mm_io_t *io, uint32_t events) { (void)io; (void)events; return -ENOTSUP; }
void mm_io_stop(mm_io_t *io) { io->actor = NULL; }
