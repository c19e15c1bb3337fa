/*
 * meshmap demo: proves the runtime end to end. A ring of actors spread over
 * the workers passes tokens around for a number of laps (every hop crosses
 * to the next worker when there are several), each actor runs a periodic
 * timer, and at the end the hop and timer counts are checked against what
 * must have happened and the runtime's counters are printed.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "mm_rt.h"

enum { MSG_NEXT = MM_MSG_USER, MSG_TOKEN };

#define DEMO_TICKS 5    /* timer fires per actor */
#define DEMO_TICK_MS 10

struct demo {
	atomic_uint_fast64_t hops, tokens_done, ticks;
};

struct ring_actor {
	struct demo *d;
	mm_actor_t *next; /* holds a reference */
	mm_timer_t tick;
	int ticks;
};

static void
ring_dtor(mm_actor_t *self)
{
	struct ring_actor *r = mm_actor_state(self);
	mm_timer_cancel(&r->tick);
	if (r->next != NULL)
		mm_actor_unref(r->next);
	free(r);
}

static void
ring_behaviour(mm_actor_t *self, const mm_msg_t *m)
{
	struct ring_actor *r = mm_actor_state(self);

	switch (m->type) {
	case MM_MSG_START:
		mm_timer_init(&r->tick, self, 0);
		mm_timer_arm(&r->tick, DEMO_TICK_MS);
		break;
	case MM_MSG_TIMER:
		atomic_fetch_add(&r->d->ticks, 1);
		if (++r->ticks < DEMO_TICKS)
			mm_timer_arm(&r->tick, DEMO_TICK_MS);
		break;
	case MSG_NEXT:
		r->next = m->ptr;
		break;
	case MSG_TOKEN: {
		atomic_fetch_add_explicit(&r->d->hops, 1, memory_order_relaxed);
		if (m->arg == 0) {
			atomic_fetch_add(&r->d->tokens_done, 1);
			break;
		}
		mm_msg_t t = {.type = MSG_TOKEN, .arg = m->arg - 1};
		/* Mailboxes hold every token at once (see spawn), so a
		 * refusal here is a runtime bug. */
		if (mm_send(r->next, &t) != 0) {
			fprintf(stderr, "demo: token lost\n");
			abort();
		}
		break;
	}
	default:
		break;
	}
}

static void
demo_usage(FILE *f)
{
	fprintf(f,
	    "usage: meshmap demo [--workers N] [--actors N] [--tokens N] [--laps N]\n"
	    "\n"
	    "Runs a ring of actors across the runtime's workers, passes tokens\n"
	    "around it, checks every hop and timer arrived, prints the counters.\n"
	    "\n"
	    "  -w, --workers N  worker threads (default: one per core)\n"
	    "  -a, --actors N   actors in the ring (default 1000)\n"
	    "  -t, --tokens N   tokens circulating at once (default 2 per worker)\n"
	    "  -l, --laps N     laps each token makes (default 1000)\n"
	    "\n"
	    "example: meshmap demo --workers 2 --actors 500 --laps 200\n");
}

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
mm_cmd_demo(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"workers", required_argument, NULL, 'w'},
	    {"actors", required_argument, NULL, 'a'},
	    {"tokens", required_argument, NULL, 't'},
	    {"laps", required_argument, NULL, 'l'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	unsigned long workers = 0, actors = 1000, tokens = 0, laps = 1000;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "w:a:t:l:h", opts, NULL)) != -1) {
		const char *name = NULL;
		unsigned long *dst = NULL, lo = 1, hi = 0;
		switch (c) {
		case 'w': name = "--workers"; dst = &workers; hi = 256; break;
		case 'a': name = "--actors"; dst = &actors; lo = 2; hi = 1000000; break;
		case 't': name = "--tokens"; dst = &tokens; hi = 100000; break;
		case 'l': name = "--laps"; dst = &laps; hi = 1000000; break;
		case 'h': demo_usage(stdout); return MM_EXIT_OK;
		default: demo_usage(stderr); return MM_EXIT_USAGE;
		}
		if (mm_cmd_parse_uint(optarg, lo, hi, dst) != 0) {
			fprintf(stderr, "meshmap demo: %s: '%s' is not a whole number "
			    "in [%lu, %lu]\n", name, optarg, lo, hi);
			return MM_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "meshmap demo: unexpected argument '%s'\n",
		    argv[optind]);
		return MM_EXIT_USAGE;
	}

	mm_rt_config_t cfg;
	mm_rt_config_default(&cfg);
	cfg.workers = (unsigned)workers;
	mm_rt_t *rt;
	int err = mm_rt_create(&cfg, &rt);
	if (err != 0) {
		fprintf(stderr, "meshmap demo: runtime: %s\n", strerror(-err));
		return MM_EXIT_FAIL;
	}
	unsigned nw = mm_rt_workers(rt);
	if (tokens == 0)
		tokens = 2ul * nw;
	if (tokens > actors)
		tokens = actors;

	struct demo d;
	atomic_init(&d.hops, 0);
	atomic_init(&d.tokens_done, 0);
	atomic_init(&d.ticks, 0);
	mm_actor_t **ring = calloc(actors, sizeof(*ring));
	if (ring == NULL) {
		fprintf(stderr, "meshmap demo: out of memory\n");
		return MM_EXIT_FAIL;
	}
	int rc = MM_EXIT_OK;
	for (unsigned long i = 0; i < actors; i++) {
		struct ring_actor *r = calloc(1, sizeof(*r));
		/* Room for every token plus MSG_NEXT: a mailbox can never
		 * be full here, whatever the interleaving. */
		mm_actor_opts_t o = {.worker = (unsigned)(i % nw),
		    .mailbox_cap = (unsigned)tokens + 2, .dtor = ring_dtor, .name = "ring"};
		r->d = &d;
		ring[i] = r ? mm_actor_spawn(rt, ring_behaviour, r, &o) : NULL;
		if (ring[i] == NULL) {
			fprintf(stderr, "meshmap demo: spawn failed\n");
			free(r);
			actors = i;
			rc = MM_EXIT_FAIL;
			break;
		}
	}
	double t0 = now_s(), t_tokens = 0;
	uint64_t expect_hops = 0;
	if (rc == MM_EXIT_OK) {
		for (unsigned long i = 0; i < actors; i++) {
			mm_actor_ref(ring[(i + 1) % actors]); /* for ring[i] */
			mm_msg_t m = {.type = MSG_NEXT, .ptr = ring[(i + 1) % actors]};
			if (mm_send(ring[i], &m) != 0)
				rc = MM_EXIT_FAIL;
		}
		/* Each token starts at an evenly spaced actor and makes `laps`
		 * laps: actors * laps forwards, plus the final receipt. */
		uint64_t hops_each = (uint64_t)actors * laps;
		for (unsigned long k = 0; k < tokens && rc == MM_EXIT_OK; k++) {
			mm_msg_t m = {.type = MSG_TOKEN, .arg = hops_each};
			if (mm_send(ring[k * actors / tokens], &m) != 0)
				rc = MM_EXIT_FAIL;
			expect_hops += hops_each + 1;
		}
		while (rc == MM_EXIT_OK && atomic_load(&d.tokens_done) < tokens) {
			struct timespec ts = {0, 100000};
			nanosleep(&ts, NULL);
		}
		t_tokens = now_s() - t0;
		/* Let the timers finish their DEMO_TICKS rounds. */
		while (atomic_load(&d.ticks) < (uint64_t)actors * DEMO_TICKS &&
		    now_s() - t0 < 60) {
			struct timespec ts = {0, 1000000};
			nanosleep(&ts, NULL);
		}
	}
	double dt = t_tokens;
	mm_mem_stats_t mem;
	mm_rt_mem(rt, &mem);
	for (unsigned long i = 0; i < actors; i++)
		mm_actor_unref(ring[i]);
	free(ring);
	mm_rt_stop(rt);

	mm_worker_stats_t st;
	uint64_t hops = atomic_load(&d.hops), ticks = atomic_load(&d.ticks);
	printf("meshmap demo: %u workers, %lu actors, %lu tokens x %lu laps\n",
	    nw, actors, tokens, laps);
	printf("  hops      %" PRIu64 " (expected %" PRIu64 ") in %.3f s: %.2f M hops/s\n",
	    hops, expect_hops, dt, dt > 0 ? (double)hops / dt / 1e6 : 0.0);
	printf("  timers    %" PRIu64 " (expected %" PRIu64 ")\n", ticks,
	    (uint64_t)actors * DEMO_TICKS);
	for (unsigned k = 0; k < nw; k++) {
		mm_rt_stats(rt, k, &st);
		printf("  worker %u  run %" PRIu64 " turns %" PRIu64 " sends %" PRIu64
		    " full %" PRIu64 " wakeups %" PRIu64 "/%" PRIu64 " timers %" PRIu64
		    " polls %" PRIu64 "\n", k, st.msgs_run, st.turns, st.sends,
		    st.send_full, st.wakeups_sent, st.wakeups_recv, st.timers_fired,
		    st.polls);
	}
	printf("  memory    allocated %.1f MB, rss %.1f MB, budget %.1f MB (%s)\n",
	    (double)mem.allocated / 1e6, (double)mem.rss / 1e6,
	    (double)mem.budget / 1e6, mem.jemalloc ? "jemalloc" : "libc malloc");
	mm_rt_destroy(rt);
	if (rc == MM_EXIT_OK && (hops != expect_hops ||
	    ticks != (uint64_t)actors * DEMO_TICKS)) {
		fprintf(stderr, "meshmap demo: FAILED: counts do not match\n");
		rc = MM_EXIT_FAIL;
	}
	return rc;
}
