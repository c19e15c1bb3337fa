/* Mailbox: edges on one thread, then the MPSC scheduling protocol with
 * several producer threads and one consumer. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#include "mailbox.h"
#include "test.h"

static void
count_drop(const mm_msg_t *m, void *ctx)
{
	(*(int *)ctx)++;
	free(m->ptr);
}

static void
test_edges(void)
{
	mm_mbox_t mb;
	CHECK_EQ(mm_mbox_init(&mb, 0), -EINVAL);
	CHECK_EQ(mm_mbox_init(&mb, 8), 0);
	CHECK_EQ(mb.cap, 15); /* ring of 16 holds 15 */
	CHECK_EQ(mm_mbox_pending(&mb), 0);

	mm_msg_t m = {.type = 100}, out;
	/* The first push reports "was empty"; the rest do not. */
	for (unsigned i = 0; i < mb.cap; i++) {
		m.arg = i;
		CHECK_EQ(mm_mbox_push(&mb, &m), i == 0 ? 1 : 0);
	}
	CHECK_EQ(mm_mbox_push(&mb, &m), -EAGAIN); /* full, not blocking */
	CHECK_EQ(mm_mbox_size(&mb), mb.cap);
	CHECK_EQ(mm_mbox_pending(&mb), mb.cap);

	/* FIFO, and partial consumption keeps the actor scheduled. */
	for (unsigned i = 0; i < 5; i++) {
		CHECK(mm_mbox_pop(&mb, &out));
		CHECK_EQ(out.arg, i);
		CHECK_EQ(out.type, 100);
	}
	CHECK_EQ(mm_mbox_done(&mb, 5), mb.cap - 5);
	m.arg = 99;
	CHECK_EQ(mm_mbox_push(&mb, &m), 0); /* not empty: no new schedule */
	for (unsigned i = 5; i < mb.cap; i++) {
		CHECK(mm_mbox_pop(&mb, &out));
		CHECK_EQ(out.arg, i);
	}
	CHECK(mm_mbox_pop(&mb, &out));
	CHECK_EQ(out.arg, 99);
	CHECK(!mm_mbox_pop(&mb, &out)); /* empty */
	CHECK_EQ(mm_mbox_done(&mb, mb.cap - 5 + 1), 0);
	/* Empty again: the next push must ask for scheduling. */
	CHECK_EQ(mm_mbox_push(&mb, &m), 1);
	CHECK(mm_mbox_pop(&mb, &out));
	CHECK_EQ(mm_mbox_done(&mb, 1), 0);

	/* Close: pushes refused, leftovers discarded by destroy. */
	int dropped = 0;
	for (int i = 0; i < 3; i++) {
		mm_msg_t p = {.type = 101, .ptr = malloc(16)};
		CHECK_GE(mm_mbox_push(&mb, &p), 0);
	}
	CHECK_EQ(mm_mbox_close(&mb), 3);
	CHECK_EQ(mm_mbox_pending(&mb), 0);
	CHECK_EQ(mm_mbox_push(&mb, &m), -EPIPE);
	CHECK_EQ(mm_mbox_destroy(&mb, count_drop, &dropped), 3);
	CHECK_EQ(dropped, 3);
}

/* ---- MPSC ---------------------------------------------------------------- */

#define PRODUCERS 4
#define PER_PRODUCER 200000

static mm_mbox_t mpsc;
static atomic_uint_fast64_t wakes;     /* pushes that returned 1 */
static atomic_uint_fast64_t full_seen;

struct payload {
	unsigned producer;
	uint64_t seq;
};

static void *
producer(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	for (uint64_t i = 0; i < PER_PRODUCER; i++) {
		struct payload *p = malloc(sizeof(*p));
		p->producer = id;
		p->seq = i;
		mm_msg_t m = {.type = id, .arg = i, .ptr = p};
		int r;
		while ((r = mm_mbox_push(&mpsc, &m)) == -EAGAIN) {
			atomic_fetch_add(&full_seen, 1);
			sched_yield();
		}
		CHECK_GE(r, 0);
		if (r == 1)
			atomic_fetch_add(&wakes, 1);
	}
	return NULL;
}

static void
test_mpsc(void)
{
	CHECK_EQ(mm_mbox_init(&mpsc, 64), 0);
	pthread_t t[PRODUCERS];
	uint64_t next_seq[PRODUCERS] = {0};
	uint64_t got = 0, handled_wakes = 0;

	for (unsigned i = 0; i < PRODUCERS; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, producer, (void *)(uintptr_t)i), 0);

	/* The consumer behaves like the scheduler: it may only run when a
	 * push has scheduled it, and stops being scheduled when done()
	 * returns 0. A lost wake-up leaves messages behind with nobody
	 * scheduled: the loop below would then never finish. */
	while (got < (uint64_t)PRODUCERS * PER_PRODUCER) {
		if (atomic_load(&wakes) == handled_wakes) {
			sched_yield();
			continue;
		}
		handled_wakes++;
		CHECK_EQ(atomic_load(&wakes), handled_wakes); /* one at a time */
		for (;;) {
			uint64_t n = mm_mbox_pending(&mpsc);
			CHECK_GT(n, 0); /* scheduled implies pending work */
			for (uint64_t i = 0; i < n; i++) {
				mm_msg_t m;
				CHECK(mm_mbox_pop(&mpsc, &m));
				struct payload *p = m.ptr;
				CHECK_EQ(p->producer, m.type);
				CHECK_EQ(p->seq, m.arg);
				/* FIFO per producer, nothing lost or doubled */
				CHECK_EQ(p->seq, next_seq[p->producer]);
				next_seq[p->producer]++;
				free(p);
			}
			got += n;
			if (mm_mbox_done(&mpsc, n) == 0)
				break; /* unscheduled */
		}
	}
	for (unsigned i = 0; i < PRODUCERS; i++) {
		pthread_join(t[i], NULL);
		CHECK_EQ(next_seq[i], PER_PRODUCER);
	}
	CHECK_EQ(atomic_load(&wakes), handled_wakes);
	mm_msg_t m;
	CHECK(!mm_mbox_pop(&mpsc, &m));
	CHECK_EQ(mm_mbox_destroy(&mpsc, NULL, NULL), 0);
	fprintf(stderr, "   %" PRIu64 " messages, %" PRIu64 " schedules, %" PRIu64
	    " full retries\n", got, handled_wakes,
	    (uint64_t)atomic_load(&full_seen));
}

int
main(void)
{
	RUN(test_edges);
	RUN(test_mpsc);
	fprintf(stderr, "test_mailbox: ok\n");
	return 0;
}
