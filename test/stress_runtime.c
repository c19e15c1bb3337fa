/*
 * Runtime stress, in the style of ck's regressions:
 *
 *   stress_runtime <workers> <affinity 0|1> <mailbox size> <messages>
 *
 * 4 actors per worker plus 2 non-worker threads each send <messages>
 * messages to random actors (often across workers), retrying on
 * back-pressure (actors from a 1 ms timer, threads by yielding); every 64th
 * message carries a shared refcounted buffer. Every receiver checks FIFO
 * order per sender; at the end every message must have arrived exactly once,
 * every buffer reference must be back, and the counters must add up.
 * Run under TSan in CI.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "mm_rt.h"
#include "test.h"

enum { M_GO = MM_MSG_USER, M_CONT, M_DATA };

#define THREADS 2
#define MAX_ACTORS 1024

static unsigned nactors, nsenders;
static uint64_t quota;
static mm_actor_t *actors[MAX_ACTORS];
static mm_buf_t *shared_buf;

struct node {
	unsigned id;
	/* sender side */
	uint64_t sent, next_seq[MAX_ACTORS];
	mm_timer_t retry;
	uint64_t retries;
	/* receiver side: expected seq per sender */
	uint64_t *expect;
	atomic_uint_fast64_t received; /* published for the main thread */
	atomic_int bad;
};

static struct node *nodes;

static uint64_t
pick(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* One message from sender `from` (actor id, or nactors + thread index). */
static int
send_one(unsigned from, uint64_t *next_seq, uint64_t *rng, uint64_t n)
{
	unsigned to = (unsigned)(pick(rng) % nactors);
	mm_msg_t m = {.type = M_DATA, .aux = from,
	    .arg = next_seq[to]};
	if (n % 64 == 0) {
		mm_buf_ref(shared_buf);
		m.type |= MM_MSG_F_BUF;
		m.ptr = shared_buf;
	}
	int r = mm_send(actors[to], &m);
	if (r != 0) {
		if (m.ptr != NULL)
			mm_buf_release(shared_buf); /* still ours on error */
		CHECK_EQ(r, -EAGAIN);
		return r;
	}
	next_seq[to]++;
	return 0;
}

static void
pump(mm_actor_t *self, struct node *n)
{
	uint64_t rng = (uint64_t)n->id * 7919 + n->sent + 1;
	for (int k = 0; k < 64 && n->sent < quota; k++) {
		if (send_one(n->id, n->next_seq, &rng, n->sent) != 0) {
			n->retries++;
			mm_timer_arm(&n->retry, 1);
			return;
		}
		n->sent++;
	}
	if (n->sent < quota) {
		mm_msg_t c = {.type = M_CONT};
		if (mm_send(self, &c) != 0) {
			n->retries++;
			mm_timer_arm(&n->retry, 1);
		}
	}
}

static void
node_fn(mm_actor_t *self, const mm_msg_t *m)
{
	struct node *n = mm_actor_state(self);
	switch (MM_MSG_TYPE(m->type)) {
	case MM_MSG_START:
		mm_timer_init(&n->retry, self, 0);
		break;
	case M_GO:
	case M_CONT:
	case MM_MSG_TIMER:
		if (!mm_timer_armed(&n->retry))
			pump(self, n);
		break;
	case M_DATA:
		if (m->arg != n->expect[m->aux])
			atomic_store(&n->bad, 1);
		n->expect[m->aux] = m->arg + 1;
		if (m->type & MM_MSG_F_BUF) {
			mm_buf_t *b = m->ptr;
			if (b->len != 8 || memcmp(b->data, "stress!!", 8) != 0)
				atomic_store(&n->bad, 2);
			mm_buf_release(b);
		}
		atomic_store_explicit(&n->received,
		    atomic_load_explicit(&n->received, memory_order_relaxed) + 1,
		    memory_order_relaxed);
		break;
	case MM_MSG_STOP:
		mm_timer_cancel(&n->retry);
		break;
	default:
		break;
	}
}

struct thread_arg {
	unsigned id;
	uint64_t next_seq[MAX_ACTORS];
	uint64_t retries;
};

static void *
thread_main(void *p)
{
	struct thread_arg *t = p;
	uint64_t rng = (uint64_t)t->id * 104729 + 3;
	for (uint64_t n = 0; n < quota;) {
		if (send_one(t->id, t->next_seq, &rng, n) == 0) {
			n++;
		} else {
			t->retries++;
			sched_yield();
		}
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: %s <workers> <affinity 0|1> <mailbox size> "
		    "<messages per sender>\n", argv[0]);
		return 2;
	}
	unsigned workers = (unsigned)atoi(argv[1]);
	int affinity = atoi(argv[2]);
	unsigned size = (unsigned)atoi(argv[3]);
	quota = strtoull(argv[4], NULL, 10);
	if (workers == 0 || workers > 64 || size == 0 || quota == 0) {
		fprintf(stderr, "stress_runtime: bad arguments\n");
		return 2;
	}
	nactors = 4 * workers;
	nsenders = nactors + THREADS;

	mm_rt_config_t cfg;
	mm_rt_config_default(&cfg);
	cfg.workers = workers;
	cfg.pin = affinity;
	mm_rt_t *rt;
	CHECK_EQ(mm_rt_create(&cfg, &rt), 0);

	shared_buf = mm_buf_alloc(8);
	memcpy(shared_buf->data, "stress!!", 8);
	shared_buf->len = 8;

	nodes = calloc(nactors, sizeof(*nodes));
	for (unsigned i = 0; i < nactors; i++) {
		nodes[i].id = i;
		nodes[i].expect = calloc(nsenders, sizeof(uint64_t));
		mm_actor_opts_t o = {.worker = i % workers, .mailbox_cap = size};
		actors[i] = mm_actor_spawn(rt, node_fn, &nodes[i], &o);
		CHECK(actors[i] != NULL);
	}
	/* The table is complete before anyone sends: GO happens after. */
	for (unsigned i = 0; i < nactors; i++) {
		mm_msg_t go = {.type = M_GO};
		while (mm_send(actors[i], &go) == -EAGAIN)
			sched_yield();
	}
	pthread_t th[THREADS];
	struct thread_arg *ta = calloc(THREADS, sizeof(*ta));
	for (unsigned i = 0; i < THREADS; i++) {
		ta[i].id = nactors + i;
		CHECK_EQ(pthread_create(&th[i], NULL, thread_main, &ta[i]), 0);
	}
	for (unsigned i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);

	uint64_t want = (uint64_t)nsenders * quota, got = 0;
	for (unsigned waited = 0;; waited++) {
		got = 0;
		for (unsigned i = 0; i < nactors; i++)
			got += atomic_load_explicit(&nodes[i].received,
			    memory_order_relaxed);
		if (got >= want)
			break;
		CHECK_LT(waited, 600000); /* 10 minutes: a hang, not slowness */
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	mm_rt_stop(rt);

	/* Exactly once, in order, per (sender, receiver) pair. */
	CHECK_EQ(got, want);
	uint64_t retries = 0;
	for (unsigned r = 0; r < nactors; r++) {
		CHECK_EQ(atomic_load(&nodes[r].bad), 0);
		for (unsigned s = 0; s < nsenders; s++) {
			uint64_t sent_to_r = s < nactors ? nodes[s].next_seq[r] :
			    ta[s - nactors].next_seq[r];
			CHECK_EQ(nodes[r].expect[s], sent_to_r);
		}
	}
	for (unsigned s = 0; s < nactors; s++) {
		CHECK_EQ(nodes[s].sent, quota);
		retries += nodes[s].retries;
	}
	for (unsigned i = 0; i < THREADS; i++)
		retries += ta[i].retries;
	CHECK_EQ(__atomic_load_n(&shared_buf->refs, __ATOMIC_SEQ_CST), 1);
	mm_buf_release(shared_buf);

	mm_worker_stats_t st;
	mm_rt_stats(rt, MM_WORKER_ANY, &st);
	/* Accepted sends = data + GO + CONT; all were run. */
	CHECK_GE(st.sends, want);
	CHECK_EQ(st.dropped, 0);
	printf("stress_runtime: %u workers, affinity %d, mailbox %u: %" PRIu64
	    " messages from %u senders to %u actors, %" PRIu64 " back-pressure "
	    "retries, %" PRIu64 " full events, %" PRIu64 " wake-ups: ok\n",
	    workers, affinity, size, want, nsenders, nactors, retries,
	    st.send_full, st.wakeups_sent);
	for (unsigned i = 0; i < nactors; i++) {
		mm_actor_unref(actors[i]);
		free(nodes[i].expect);
	}
	mm_rt_destroy(rt);
	free(nodes);
	free(ta);
	return 0;
}
