/*
 * Relay macro benchmark (issue 6): how many frames a meshmap relay
 * delivers per second, and per second of its CPU, over TLS.
 *
 *   relay_bench RELAY_PORT RELAY_PID {bcast|direct} PAYLOAD MESSAGES
 *
 * The relay is a separate `meshmap node` process (bench/relay.sh starts
 * it, with --difficulty 8 on network "relaybench"). This program opens 13
 * TLS connections to it with identities of its own: one source and 12
 * sinks. Sinks count the frames they receive and verify nothing (only the
 * relay's work is measured); the source sends pre-signed messages:
 *   bcast:  broadcasts on one topic (every sink announces "*"): each is
 *           delivered 12 times;
 *   direct: direct messages routed source -> relay -> sink i, round robin:
 *           each is delivered once.
 * The source keeps at most WINDOW messages ahead of the slowest delivery
 * count. Frames the relay drops (a full mailbox) are counted as lost once
 * deliveries stop for 2 s. Prints one line of results: messages, frames
 * delivered and lost, seconds, frames/s, the relay's CPU seconds (from
 * /proc/RELAY_PID/stat) and frames per relay CPU second.
 */
#include <arpa/inet.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "direct.h"
#include "wire.h"

#define SINKS 12
#define DIFF 8
/* Messages in flight: the relay queues each frame it forwards as one
 * message in the link's mailbox (63 slots, drop-newest when full), so a
 * window above that measures drops, not throughput. */
#define WINDOW 48
#define BATCH 16        /* messages per buffer from the source */

static mm_identity_t src_id, sink_id[SINKS];
static mm_actor_t *src_conn;   /* set on ready */
static atomic_int ready;
static _Atomic uint64_t got[SINKS];
static uint8_t relay_id[32];
static atomic_int relay_known;

static void
on_ready(mm_conn_t *c, const uint8_t id[32], void *arg)
{
	int sink = (int)(intptr_t)arg;
	if (!atomic_exchange(&relay_known, 1))
		memcpy(relay_id, id, 32);
	mm_wire_msg_t m = {.type = MM_W_SUBS};
	if (sink >= 0) {
		m.u.subs.count = 1;
		m.u.subs.topic[0] = (mm_bytes_t){(const uint8_t *)"*", 1};
	}
	mm_conn_send(c, &m);
	if (sink < 0) {
		src_conn = mm_conn_actor(c);
		mm_actor_ref(src_conn);
	}
	atomic_fetch_add(&ready, 1);
}

static void
on_message(mm_conn_t *c, const mm_wire_msg_t *m, void *arg)
{
	(void)c;
	int sink = (int)(intptr_t)arg;
	if (sink >= 0 && (m->type == MM_W_BCAST || m->type == MM_W_DIRECT))
		atomic_fetch_add_explicit(&got[sink], 1, memory_order_relaxed);
}

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
cpu_s(int pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')'); /* fields after the command name */
	unsigned long ut = 0, st = 0;
	if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
	        &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static uint64_t
delivered_min(void)
{
	uint64_t m = UINT64_MAX;
	for (int i = 0; i < SINKS; i++) {
		uint64_t g = atomic_load_explicit(&got[i], memory_order_relaxed);
		if (g < m)
			m = g;
	}
	return m;
}

static uint64_t
delivered_sum(void)
{
	uint64_t s = 0;
	for (int i = 0; i < SINKS; i++)
		s += atomic_load_explicit(&got[i], memory_order_relaxed);
	return s;
}

int
main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: relay_bench RELAY_PORT RELAY_PID bcast|direct PAYLOAD MESSAGES\n");
		return 2;
	}
	int port = atoi(argv[1]), pid = atoi(argv[2]);
	int bcast = strcmp(argv[3], "bcast") == 0;
	uint32_t payload = (uint32_t)atoi(argv[4]);
	unsigned msgs = (unsigned)atoi(argv[5]);
	if (payload > MM_WIRE_DATA_MAX - 1 || msgs == 0 || msgs % SINKS != 0) {
		fprintf(stderr, "relay_bench: payload <= 49151, messages a multiple of 12\n");
		return 2;
	}
	if (mm_id_generate(&src_id, DIFF, NULL) != 0)
		return 1;
	for (int i = 0; i < SINKS; i++)
		if (mm_id_generate(&sink_id[i], DIFF, NULL) != 0)
			return 1;
	mm_rt_config_t rc;
	mm_rt_config_default(&rc);
	rc.workers = 1; /* the machine's other core is the relay's */
	mm_rt_t *rt;
	if (mm_rt_create(&rc, &rt) != 0)
		return 1;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	mm_net_t *nets[SINKS + 1];
	for (int i = -1; i < SINKS; i++) {
		mm_net_config_t nc;
		mm_net_config_default(&nc);
		nc.id = i < 0 ? &src_id : &sink_id[i];
		nc.network = "relaybench";
		nc.difficulty = DIFF;
		nc.on_ready = on_ready;
		nc.on_message = on_message;
		nc.arg = (void *)(intptr_t)i;
		nc.write_cap = 64u << 20;
		char err[256];
		if (mm_net_create(rt, &nc, &nets[i + 1], err, sizeof(err)) != 0 ||
		    mm_net_dial(nets[i + 1], (struct sockaddr *)&a, sizeof(a), NULL) != 0) {
			fprintf(stderr, "relay_bench: %s\n", err);
			return 1;
		}
		/* one handshake at a time: the relay limits those per address */
		for (int t = 0; atomic_load(&ready) < i + 2; t++) {
			if (t > 1000) {
				fprintf(stderr, "relay_bench: connection %d did not come up\n", i + 1);
				return 1;
			}
			usleep(10000);
		}
	}
	usleep(300000); /* the relay has every sink's subs */

	/* Pre-sign everything, encoded in batches of BATCH frames. */
	uint8_t *data = calloc(1, payload + 1);
	unsigned nb = (msgs + BATCH - 1) / BATCH;
	mm_buf_t **bufs = calloc(nb, sizeof(*bufs));
	if (data == NULL || bufs == NULL)
		return 1;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t ts_ms = (uint64_t)ts.tv_sec * 1000u;
	uint8_t route[3][32];
	memcpy(route[0], src_id.id, 32);
	memcpy(route[1], relay_id, 32);
	for (unsigned b = 0; b < nb; b++) {
		unsigned k0 = b * BATCH, k1 = k0 + BATCH < msgs ? k0 + BATCH : msgs;
		bufs[b] = mm_buf_alloc((k1 - k0) * (payload + 1024));
		for (unsigned k = k0; k < k1; k++) {
			mm_wire_msg_t m;
			memset(&m, 0, sizeof(m));
			memcpy(data + 1, &k, sizeof(k) < payload ? sizeof(k) : 0);
			if (bcast) {
				m.type = MM_W_BCAST;
				m.u.bcast.topic = (mm_bytes_t){(const uint8_t *)"bench", 5};
				m.u.bcast.data = (mm_bytes_t){data + 1, payload};
				memcpy(m.u.bcast.pub, src_id.pub, 32);
				m.u.bcast.pow = src_id.nonce;
				m.u.bcast.nonce = k + 1;
				m.u.bcast.ts = ts_ms;
				m.u.bcast.ttl = 1;
				uint8_t sb[MM_WIRE_BCAST_SIGNED_LEN];
				mm_wire_bcast_signed_bytes(&m.u.bcast, sb);
				mm_id_sign(&src_id, sb, sizeof(sb), m.u.bcast.sig);
			} else {
				m.type = MM_W_DIRECT;
				memcpy(route[2], sink_id[k % SINKS].id, 32);
				data[0] = 0; /* a datagram */
				mm_direct_make(&src_id, &route[0][0], 3, 0, k + 1, ts_ms, data, payload + 1,
				    &m.u.direct);
			}
			int n = mm_wire_encode(&m, bufs[b]->data + bufs[b]->len,
			    bufs[b]->cap - bufs[b]->len);
			if (n < 0) {
				fprintf(stderr, "relay_bench: encode failed (%d)\n", n);
				return 1;
			}
			bufs[b]->len += (uint32_t)n;
		}
	}
	uint64_t per = bcast ? SINKS : 1; /* deliveries per message */
	uint64_t want = (uint64_t)msgs * per;
	double c0 = cpu_s(pid), t0 = now_s();
	unsigned sent = 0;
	uint64_t last = 0;
	double last_t = t0, end_t = t0;
	for (unsigned b = 0; b < nb; b++) {
		/* keep at most WINDOW messages ahead of the slowest sink; a loss
		 * would stall it: after 2 s without progress, count it lost */
		while ((uint64_t)sent > (bcast ? delivered_min() : delivered_sum()) + WINDOW) {
			uint64_t d = delivered_sum();
			double t = now_s();
			if (d != last) {
				last = d;
				last_t = t;
			} else if (t - last_t > 2.0) {
				break;
			}
			usleep(100);
		}
		mm_msg_t m = {.type = MM_CONN_SEND_BUF | MM_MSG_F_BUF, .ptr = bufs[b]};
		while (mm_send(src_conn, &m) != 0)
			usleep(100);
		sent += b + 1 < nb ? BATCH : msgs - b * BATCH;
	}
	last_t = now_s();
	while (delivered_sum() < want) {
		uint64_t d = delivered_sum();
		double t = now_s();
		if (d != last) {
			last = d;
			last_t = t;
			end_t = t;
		} else if (t - last_t > 2.0) {
			break; /* the rest was dropped */
		}
		usleep(100);
	}
	if (delivered_sum() >= want)
		end_t = now_s();
	uint64_t got_all = delivered_sum();
	double t = end_t - t0, c = cpu_s(pid) - c0;
	printf("%s payload=%u messages=%u delivered=%llu lost=%llu seconds=%.3f frames_per_s=%.0f "
	    "relay_cpu_s=%.3f frames_per_relay_cpu_s=%.0f\n", bcast ? "bcast" : "direct", payload,
	    msgs, (unsigned long long)got_all, (unsigned long long)(want - got_all), t,
	    (double)got_all / t, c, c > 0 ? (double)got_all / c : 0.0);
	mm_rt_stop(rt);
	for (int i = 0; i <= SINKS; i++)
		mm_net_destroy(nets[i]);
	mm_actor_unref(src_conn);
	mm_rt_destroy(rt);
	free(bufs);
	free(data);
	return 0;
}
