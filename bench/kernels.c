#include "kernels.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "mailbox.h"
#include "mm_rt.h"

static void
die(const char *what)
{
	fprintf(stderr, "bench: %s\n", what);
	abort();
}

void
bk_mbox_pushpop(uint64_t n, unsigned batch)
{
	static mm_mbox_t mb;
	static int init;
	if (!init) {
		if (mm_mbox_init(&mb, 1024) != 0)
			die("mbox init");
		init = 1;
	}
	mm_msg_t m = {.type = 1}, out;
	for (uint64_t i = 0; i < n; i += batch) {
		for (unsigned k = 0; k < batch; k++) {
			m.arg = i + k;
			if (mm_mbox_push(&mb, &m) < 0)
				die("push");
		}
		uint64_t p = mm_mbox_pending(&mb);
		for (uint64_t k = 0; k < p; k++)
			if (!mm_mbox_pop(&mb, &out))
				die("pop");
		mm_mbox_done(&mb, p);
	}
}

struct mpsc_arg {
	mm_mbox_t *mb;
	uint64_t n;
};

static void *
mpsc_producer(void *p)
{
	struct mpsc_arg *a = p;
	mm_msg_t m = {.type = 1};
	for (uint64_t i = 0; i < a->n; i++) {
		m.arg = i;
		while (mm_mbox_push(a->mb, &m) == -EAGAIN)
			sched_yield();
	}
	return NULL;
}

void
bk_mbox_mpsc(uint64_t n, unsigned producers)
{
	mm_mbox_t mb;
	pthread_t t[16];
	struct mpsc_arg a = {&mb, n};
	if (producers > 16 || mm_mbox_init(&mb, 4096) != 0)
		die("mpsc init");
	for (unsigned i = 0; i < producers; i++)
		pthread_create(&t[i], NULL, mpsc_producer, &a);
	uint64_t want = n * producers, got = 0;
	mm_msg_t out;
	while (got < want) {
		uint64_t p = mm_mbox_pending(&mb);
		if (p == 0) {
			sched_yield();
			continue;
		}
		for (uint64_t k = 0; k < p; k++)
			if (!mm_mbox_pop(&mb, &out))
				die("mpsc pop");
		mm_mbox_done(&mb, p);
		got += p;
	}
	for (unsigned i = 0; i < producers; i++)
		pthread_join(t[i], NULL);
	mm_mbox_destroy(&mb, NULL, NULL);
}

/* ---- actor worlds --------------------------------------------------------- */

enum { B_PEER = MM_MSG_USER, B_BALL };

struct bk_world {
	mm_rt_t *rt;
	unsigned n;          /* actors */
	unsigned starters;   /* actors that get balls/tokens */
	unsigned balls;      /* per starter */
	mm_actor_t **a;
	atomic_uint done;
	unsigned want;
	int efd;
};

struct node {
	bk_world_t *w;
	mm_actor_t *peer;
};

static void
node_fn(mm_actor_t *self, const mm_msg_t *m)
{
	struct node *s = mm_actor_state(self);
	if (m->type == B_PEER) {
		s->peer = m->ptr;
	} else if (m->type == B_BALL) {
		if (m->arg == 0) {
			if (atomic_fetch_add(&s->w->done, 1) + 1 == s->w->want) {
				uint64_t one = 1;
				if (write(s->w->efd, &one, sizeof(one)) != sizeof(one))
					die("eventfd");
			}
			return;
		}
		mm_msg_t b = {.type = B_BALL, .arg = m->arg - 1};
		if (mm_send(s->peer, &b) != 0)
			die("send"); /* mailboxes hold every ball: cannot happen */
	}
}

static void
node_dtor(mm_actor_t *self)
{
	free(mm_actor_state(self));
}

static bk_world_t *
world_new(unsigned workers, unsigned n)
{
	bk_world_t *w = calloc(1, sizeof(*w));
	mm_rt_config_t cfg;
	mm_rt_config_default(&cfg);
	cfg.workers = workers;
	if (mm_rt_create(&cfg, &w->rt) != 0)
		die("runtime");
	w->n = n;
	w->a = calloc(n, sizeof(*w->a));
	w->efd = eventfd(0, EFD_CLOEXEC);
	return w;
}

static void
world_spawn(bk_world_t *w, unsigned i, unsigned worker, unsigned cap)
{
	struct node *s = calloc(1, sizeof(*s));
	s->w = w;
	mm_actor_opts_t o = {.worker = worker, .mailbox_cap = cap,
	    .dtor = node_dtor};
	w->a[i] = mm_actor_spawn(w->rt, node_fn, s, &o);
	if (w->a[i] == NULL)
		die("spawn");
}

static void
world_link(bk_world_t *w, unsigned i, unsigned peer)
{
	mm_msg_t p = {.type = B_PEER, .ptr = w->a[peer]};
	if (mm_send(w->a[i], &p) != 0)
		die("link");
}

bk_world_t *
bk_pairs_new(unsigned workers, unsigned pairs, int cross, unsigned balls)
{
	bk_world_t *w = world_new(workers, 2 * pairs);
	for (unsigned p = 0; p < pairs; p++) {
		unsigned wa = cross ? 0 : p % workers;
		unsigned wb = cross ? 1 % workers : p % workers;
		world_spawn(w, 2 * p, wa, 2 * balls + 2);
		world_spawn(w, 2 * p + 1, wb, 2 * balls + 2);
	}
	for (unsigned p = 0; p < pairs; p++) {
		world_link(w, 2 * p, 2 * p + 1);
		world_link(w, 2 * p + 1, 2 * p);
	}
	w->starters = pairs;
	w->balls = balls;
	return w;
}

bk_world_t *
bk_ring_new(unsigned workers, unsigned n, unsigned tokens, int spread)
{
	bk_world_t *w = world_new(workers, n);
	for (unsigned i = 0; i < n; i++)
		world_spawn(w, i, spread ? i % workers : 0, tokens + 2);
	for (unsigned i = 0; i < n; i++)
		world_link(w, i, (i + 1) % n);
	w->starters = tokens;
	w->balls = 1;
	return w;
}

uint64_t
bk_run(bk_world_t *w, uint64_t hops)
{
	atomic_store(&w->done, 0);
	w->want = w->starters * w->balls;
	for (unsigned s = 0; s < w->starters; s++) {
		/* pairs: starter s is actor 2s; ring: spaced evenly */
		unsigned i = w->starters * 2 == w->n ? 2 * s :
		    (unsigned)((uint64_t)s * w->n / w->starters);
		for (unsigned b = 0; b < w->balls; b++) {
			mm_msg_t m = {.type = B_BALL, .arg = hops};
			if (mm_send(w->a[i], &m) != 0)
				die("kick");
		}
	}
	uint64_t v;
	if (read(w->efd, &v, sizeof(v)) != sizeof(v)) /* blocks until done */
		die("wait");
	return (uint64_t)w->want * (hops + 1);
}

void
bk_free(bk_world_t *w)
{
	for (unsigned i = 0; i < w->n; i++)
		mm_actor_unref(w->a[i]);
	mm_rt_stop(w->rt);
	mm_rt_destroy(w->rt);
	close(w->efd);
	free(w->a);
	free(w);
}
