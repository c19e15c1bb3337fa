/* netdelay: latency and jitter for the multi-host harness on a kernel
 * without sch_netem (docs/RELIABILITY.md). Packets that an iptables
 * NFQUEUE rule hands over (libnetfilter_queue) are held DELAY ms, plus or
 * minus up to JITTER ms drawn uniformly from SEED, then accepted. Releases
 * keep arrival order (a packet never leaves before one queued earlier), so
 * jitter does not reorder a flow the way netem's does.
 *
 *   netdelay --queue N --delay MS [--jitter MS] [--seed S]
 *
 * Prints "netdelay: queue N ready" once bound (the harness waits for it);
 * on SIGTERM or SIGINT it accepts what it holds, prints its counts and
 * exits 0. Metadata only is copied to user space (NFQNL_COPY_META). The
 * kernel queue fails open when full, and the rule should carry
 * --queue-bypass: with no listener or an overflow a packet passes at once
 * rather than being lost. Test tool: not installed.
 *
 * The held packets wait in a fixed ring (HOLD_MAX): a test link carries at
 * most a few thousand packets a second, so 65,536 covers seconds of delay;
 * past it a packet is accepted at once and counted. */
#include <arpa/inet.h>
#include <errno.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define HOLD_MAX 65536u

struct held {
	uint32_t id;
	uint64_t due_us;
};

static struct held hold[HOLD_MAX];
static uint32_t hold_head, hold_n;
static uint64_t last_due, rng, delay_us, jitter_us;
static uint64_t n_in, n_overflow, n_max_held;
static volatile sig_atomic_t stopping;

static uint64_t
now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t
next_rand(void) /* xorshift64* */
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 2685821657736338717ull;
}

static void
on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static int
on_packet(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfa,
    void *arg)
{
	(void)msg;
	(void)arg;
	struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
	if (ph == NULL)
		return 0;
	uint32_t id = ntohl(ph->packet_id);
	n_in++;
	if (hold_n == HOLD_MAX) {
		n_overflow++;
		return nfq_set_verdict(qh, id, NF_ACCEPT, 0, NULL);
	}
	uint64_t d = delay_us;
	if (jitter_us > 0) {
		uint64_t j = next_rand() % (2 * jitter_us + 1);
		d = d + j >= jitter_us ? d + j - jitter_us : 0;
	}
	uint64_t due = now_us() + d;
	if (due < last_due)
		due = last_due; /* arrival order */
	last_due = due;
	hold[(hold_head + hold_n) % HOLD_MAX] = (struct held){id, due};
	if (++hold_n > n_max_held)
		n_max_held = hold_n;
	return 0;
}

/* Accept what is due (everything when all is set); the ms until the next
 * is due, -1 when nothing is held. */
static int
release(struct nfq_q_handle *qh, int all)
{
	uint64_t t = now_us();
	while (hold_n > 0) {
		struct held *h = &hold[hold_head];
		if (!all && h->due_us > t)
			return (int)((h->due_us - t + 999) / 1000);
		if (nfq_set_verdict(qh, h->id, NF_ACCEPT, 0, NULL) < 0 && errno != ENOENT)
			fprintf(stderr, "netdelay: verdict for packet %u: %s\n", h->id,
			    strerror(errno));
		hold_head = (hold_head + 1) % HOLD_MAX;
		hold_n--;
	}
	return -1;
}

static int
parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v > max || s[0] == '-')
		return -1;
	*out = v;
	return 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: netdelay --queue N --delay MS [--jitter MS] [--seed S]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	uint64_t queue = UINT64_MAX, delay = UINT64_MAX, jitter = 0, seed = 1;
	for (int i = 1; i < argc; i++) {
		uint64_t *dst = NULL, max = 0;
		if (strcmp(argv[i], "--queue") == 0)
			dst = &queue, max = 65535;
		else if (strcmp(argv[i], "--delay") == 0)
			dst = &delay, max = 10000;
		else if (strcmp(argv[i], "--jitter") == 0)
			dst = &jitter, max = 10000;
		else if (strcmp(argv[i], "--seed") == 0)
			dst = &seed, max = UINT64_MAX;
		if (dst == NULL || i + 1 == argc)
			usage();
		if (parse_u64(argv[++i], max, dst) != 0) {
			fprintf(stderr, "netdelay: %s: not a number in 0..%llu: '%s'\n",
			    argv[i - 1], (unsigned long long)max, argv[i]);
			return 2;
		}
	}
	if (queue == UINT64_MAX || delay == UINT64_MAX)
		usage();
	if (jitter > delay) {
		fprintf(stderr, "netdelay: --jitter %llu above --delay %llu\n",
		    (unsigned long long)jitter, (unsigned long long)delay);
		return 2;
	}
	delay_us = delay * 1000;
	jitter_us = jitter * 1000;
	rng = seed ? seed : 1;

	struct nfq_handle *h = nfq_open();
	if (h == NULL) {
		fprintf(stderr, "netdelay: nfq_open: %s\n", strerror(errno));
		return 1;
	}
	struct nfq_q_handle *qh = nfq_create_queue(h, (uint16_t)queue, on_packet, NULL);
	if (qh == NULL) {
		fprintf(stderr, "netdelay: queue %llu: %s\n", (unsigned long long)queue,
		    strerror(errno));
		nfq_close(h);
		return 1;
	}
	if (nfq_set_mode(qh, NFQNL_COPY_META, 0) < 0 ||
	    nfq_set_queue_maxlen(qh, HOLD_MAX) < 0 ||
	    nfq_set_queue_flags(qh, NFQA_CFG_F_FAIL_OPEN, NFQA_CFG_F_FAIL_OPEN) < 0) {
		fprintf(stderr, "netdelay: queue settings: %s\n", strerror(errno));
		nfq_destroy_queue(qh);
		nfq_close(h);
		return 1;
	}
	int fd = nfq_fd(h);
	int big = 8 << 20, one = 1;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	/* a burst beyond the socket buffer loses messages, not the loop */
	(void)setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof(one));
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	printf("netdelay: queue %llu ready (delay %llu ms, jitter %llu ms)\n",
	    (unsigned long long)queue, (unsigned long long)delay,
	    (unsigned long long)jitter);
	fflush(stdout);

	static char buf[65536];
	while (!stopping) {
		int wait = release(qh, 0);
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int rc = poll(&p, 1, wait);
		if (rc < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "netdelay: poll: %s\n", strerror(errno));
			break;
		}
		if (rc == 0)
			continue;
		for (;;) {
			ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (r < 0) {
				if (errno != EAGAIN && errno != EINTR && errno != ENOBUFS)
					fprintf(stderr, "netdelay: recv: %s\n", strerror(errno));
				break;
			}
			nfq_handle_packet(h, buf, (int)r);
		}
	}
	release(qh, 1);
	printf("netdelay: %llu packets, %llu of them passed at once (ring full), at most %llu held at a time\n",
	    (unsigned long long)n_in, (unsigned long long)n_overflow,
	    (unsigned long long)n_max_held);
	nfq_destroy_queue(qh);
	nfq_close(h);
	return 0;
}
