/* File descriptor readiness delivered as MM_MSG_IO on the owner worker:
 * echo over a socketpair, stop, and a handle stopped by another handler in
 * the same epoll batch is never delivered. */
#include <fcntl.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mm_rt.h"
#include "test.h"

enum { M_STOPIO = MM_MSG_USER, M_HOLD };



static mm_rt_t *
rt_new(unsigned workers)
{
	mm_rt_config_t cfg;
	mm_rt_config_default(&cfg);
	cfg.workers = workers;
	mm_rt_t *rt;
	CHECK_EQ(mm_rt_create(&cfg, &rt), 0);
	return rt;
}

/* ---- echo ------------------------------------------------------------------ */

struct echo {
	int fd;
	mm_io_t io;
	atomic_int started, stopped, wrong_worker;
	atomic_uint_fast64_t bytes, events;
};

static void
echo_fn(mm_actor_t *self, const mm_msg_t *m)
{
	struct echo *e = mm_actor_state(self);
	switch (m->type) {
	case MM_MSG_START:
		CHECK_EQ(mm_io_start(&e->io, self, e->fd, EPOLLIN | EPOLLET, 7), 0);
		atomic_store(&e->started, 1);
		break;
	case MM_MSG_IO: {
		CHECK(m->ptr == &e->io);
		CHECK_EQ(m->arg, 7);
		CHECK(m->aux & EPOLLIN);
		if (mm_rt_current_worker() != 1)
			atomic_store(&e->wrong_worker, 1);
		atomic_fetch_add(&e->events, 1);
		char buf[4096];
		for (;;) { /* edge-triggered: read to EAGAIN */
			ssize_t n = read(e->fd, buf, sizeof(buf));
			if (n <= 0)
				break;
			ssize_t off = 0;
			while (off < n) { /* the peer drains; small writes */
				ssize_t w = write(e->fd, buf + off, (size_t)(n - off));
				if (w > 0)
					off += w;
				else
					sched_yield();
			}
			atomic_fetch_add(&e->bytes, (uint64_t)n);
		}
		break;
	}
	case M_STOPIO:
	case MM_MSG_STOP:
		mm_io_stop(&e->io);
		atomic_store(&e->stopped, 1);
		break;
	default:
		break;
	}
}

static void
test_echo(void)
{
	mm_rt_t *rt = rt_new(2);
	int sv[2];
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	struct echo e;
	memset(&e, 0, sizeof(e));
	e.fd = sv[0];
	mm_actor_opts_t o = {.worker = 1};
	mm_actor_t *a = mm_actor_spawn(rt, echo_fn, &e, &o);
	WAIT_FOR(atomic_load(&e.started));

	/* 1 MiB of a pattern through the echo, checked byte for byte. */
	size_t total = 1u << 20, sent = 0, got = 0;
	unsigned char out[1024], in[4096];
	while (got < total) {
		if (sent < total) {
			size_t n = total - sent < sizeof(out) ? total - sent : sizeof(out);
			for (size_t i = 0; i < n; i++)
				out[i] = (unsigned char)((sent + i) * 31 + 7);
			ssize_t w = write(sv[1], out, n);
			if (w > 0)
				sent += (size_t)w;
		}
		ssize_t r = read(sv[1], in, sizeof(in));
		if (r > 0) {
			for (ssize_t i = 0; i < r; i++)
				CHECK_EQ(in[i], (unsigned char)((got + (size_t)i) * 31 + 7));
			got += (size_t)r;
		} else {
			sched_yield();
		}
	}
	CHECK_EQ(atomic_load(&e.bytes), total);
	CHECK_EQ(atomic_load(&e.wrong_worker), 0);
	CHECK_GT(atomic_load(&e.events), 0);

	/* After mm_io_stop, readiness is no longer delivered. */
	mm_msg_t s = {.type = M_STOPIO};
	CHECK_EQ(mm_send(a, &s), 0);
	WAIT_FOR(atomic_load(&e.stopped));
	uint64_t ev = atomic_load(&e.events);
	CHECK_EQ(write(sv[1], "x", 1), 1);
	test_sleep_ms(50);
	CHECK_EQ(atomic_load(&e.events), ev);
	char c;
	CHECK_EQ(read(sv[0], &c, 1), 1); /* the byte is there, unread */

	mm_rt_stop(rt);
	mm_worker_stats_t st;
	mm_rt_stats(rt, 1, &st);
	CHECK_EQ(st.io_events, ev);
	mm_actor_unref(a);
	mm_rt_destroy(rt);
	close(sv[0]);
	close(sv[1]);
}

/* ---- stop within one epoll batch ------------------------------------------- */

struct two {
	int fd[2];
	mm_io_t io[2];
	atomic_int started, held, release, stopped_other;
	atomic_int delivered[2], after_stop;
};

static void
two_fn(mm_actor_t *self, const mm_msg_t *m)
{
	struct two *t = mm_actor_state(self);
	switch (m->type) {
	case MM_MSG_START:
		for (int i = 0; i < 2; i++)
			CHECK_EQ(mm_io_start(&t->io[i], self, t->fd[i], EPOLLIN,
			    (uint64_t)i), 0);
		atomic_store(&t->started, 1);
		break;
	case M_HOLD: /* keep the worker out of epoll while both fds fill */
		atomic_store(&t->held, 1);
		while (!atomic_load(&t->release))
			sched_yield();
		break;
	case MM_MSG_IO: {
		int i = (int)m->arg;
		if (atomic_load(&t->stopped_other))
			atomic_fetch_add(&t->after_stop, 1);
		atomic_fetch_add(&t->delivered[i], 1);
		/* The first handler stops the other handle and reuses its
		 * memory: a stale event for it would now be misdelivered. */
		if (!atomic_load(&t->stopped_other)) {
			mm_io_stop(&t->io[1 - i]);
			memset(&t->io[1 - i], 0xa5, sizeof(t->io[0]));
			atomic_store(&t->stopped_other, 1 + (1 - i));
		}
		char buf[16];
		(void)read(t->fd[i], buf, sizeof(buf));
		break;
	}
	case MM_MSG_STOP: {
		int other = atomic_load(&t->stopped_other) - 1;
		for (int i = 0; i < 2; i++)
			if (i != other)
				mm_io_stop(&t->io[i]);
		break;
	}
	default:
		break;
	}
}

static void
test_stop_in_batch(void)
{
	mm_rt_t *rt = rt_new(1);
	int a[2], b[2];
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, a), 0);
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, b), 0);
	struct two *t = calloc(1, sizeof(*t));
	t->fd[0] = a[0];
	t->fd[1] = b[0];
	mm_actor_t *act = mm_actor_spawn(rt, two_fn, t, NULL);
	WAIT_FOR(atomic_load(&t->started));
	mm_msg_t h = {.type = M_HOLD};
	CHECK_EQ(mm_send(act, &h), 0);
	WAIT_FOR(atomic_load(&t->held));
	CHECK_EQ(write(a[1], "a", 1), 1);
	CHECK_EQ(write(b[1], "b", 1), 1);
	atomic_store(&t->release, 1); /* both are ready in the next epoll_wait */
	WAIT_FOR(atomic_load(&t->stopped_other));
	test_sleep_ms(50);
	mm_rt_stop(rt);
	CHECK_EQ(atomic_load(&t->after_stop), 0);
	CHECK_EQ(atomic_load(&t->delivered[0]) + atomic_load(&t->delivered[1]), 1);
	mm_actor_unref(act);
	mm_rt_destroy(rt);
	for (int i = 0; i < 2; i++) {
		close(a[i]);
		close(b[i]);
	}
	free(t);
}

int
main(void)
{
	RUN(test_echo);
	RUN(test_stop_in_batch);
	fprintf(stderr, "test_io: ok\n");
	return 0;
}
