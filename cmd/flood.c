/*
 * meshmap flood: a synthetic load generator that speaks the real protocol
 * with real identities, against one node (the target).
 *
 * Honest traffic runs over `--sources` connections that send and `--sinks`
 * connections that receive (each its own identity, each subscribed to
 * every topic): broadcasts (the target relays each to every sink), direct
 * messages (source -> target -> one sink, signed routes), and signed
 * connection events from the sources' identities (the target verifies,
 * applies and forwards each to every other link) plus exact duplicates of
 * them (the target must drop those before any verify). Every message
 * carries its send time, so a sink measures its latency. Messages are
 * signed before the clock starts: what is measured is the target, not
 * our signing.
 *
 * Hostile traffic runs beside it on connections of its own: garbage bytes
 * instead of TLS, a frame header announcing 4 GB, TLS handshakes left
 * half-open, events with forged signatures. Each should be closed by the
 * target; the summary counts how many were, and how the honest traffic
 * fared meanwhile.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "conn.h"
#include "direct.h"
#include "frame.h"
#include "wire.h"

#define MAX_CONNS 256
#define RING (1u << 16)      /* send times kept per source, for event latency */
#define TOPIC "flood"
#define BATCH 16             /* messages per buffer handed to a connection */

enum kind { K_BCAST, K_DIRECT, K_EVENT, K_DUP, K__N };
static const char *const kind_name[K__N] = {"bcast", "direct", "event", "dup"};

enum hkind { H_GARBAGE, H_OVERSIZE, H_HALFOPEN, H_FORGED, H__N };
static const char *const hkind_name[H__N] = {"garbage", "oversize", "halfopen", "forged"};

/* ---- latency: log-linear histogram, 16 buckets per power of two of the
 * microseconds (about 4.4% wide), from 1 us to about 2^27 us ------------- */
#define HB 440
static _Atomic uint64_t hist[HB];

static void
hist_add(uint64_t ns)
{
	double us = (double)ns / 1000.0;
	int b = us <= 1.0 ? 0 : (int)(16.0 * log2(us));
	if (b >= HB)
		b = HB - 1;
	atomic_fetch_add_explicit(&hist[b], 1, memory_order_relaxed);
}

/* The upper bound of the bucket holding quantile q, in microseconds. */
static double
hist_q(double q)
{
	uint64_t total = 0, run = 0;
	for (int b = 0; b < HB; b++)
		total += atomic_load_explicit(&hist[b], memory_order_relaxed);
	if (total == 0)
		return 0;
	uint64_t want = (uint64_t)ceil(q * (double)total);
	for (int b = 0; b < HB; b++) {
		run += atomic_load_explicit(&hist[b], memory_order_relaxed);
		if (run >= want)
			return exp2((double)(b + 1) / 16.0);
	}
	return exp2((double)HB / 16.0);
}

/* ---- connections ------------------------------------------------------------ */

enum role { R_SOURCE, R_SINK, R_OVERSIZE, R_FORGED, R_STORM };

struct fconn {
	int role, idx;
	mm_identity_t id;
	mm_net_t *net;
	mm_actor_t *actor;      /* set once ready (a reference) */
	atomic_int ready, closed, reason;
	uint8_t target[32];     /* the id the target proved */
	uint64_t dial_ns;       /* R_STORM: when it was dialled */
};

/* The connection storm (--handshakes): its counters */
static atomic_uint storm_inflight;
static _Atomic uint64_t storm_ready, storm_peers, storm_noslot, storm_closed;

static struct fconn conns[MAX_CONNS];
static unsigned nconns, nsources, nsinks;
static atomic_int ready_count, ready_failed;
static _Atomic uint64_t sent[K__N], delivered[K__N];
/* per connection (sinks): deliveries expected so far and received */
static uint64_t sink_expect[MAX_CONNS];
static _Atomic uint64_t sink_got[MAX_CONNS];
/* per sink and source: the highest event seq the sink received (written
 * by the sink's connection only). A source's seqs are consecutive and an
 * event carries its origin's whole state, so seq q covers every event of
 * that source up to q: that is what a lazy-push target delivers when it
 * serves only the newest of several announced together. */
static uint32_t sink_evmax[MAX_CONNS][MAX_CONNS]; /* 256 KB of BSS */
static _Atomic uint64_t hattempts[H__N], hclosed[H__N];
static _Atomic uint64_t closes_by[MM_CLOSE__MAX];
static _Atomic uint64_t *ev_sent_ns[MAX_CONNS]; /* per source: send time by seq % RING */
/* Latency: a message is signed before the clock starts, so it cannot
 * carry its send time. Broadcast and direct payloads carry the message's
 * index instead (direct: after the kind byte), and the sender records the
 * time it queued each index; events are found by source and seq. */
static _Atomic uint64_t *msg_sent_ns; /* by message index */
/* Published (release) after msg_sent_ns: a sink may receive a broadcast of
 * another flood's (several floods against one target) while we build. */
static _Atomic uint64_t msg_count;
static atomic_int stop_now;

static uint64_t
mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t
unix_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void
on_ready(mm_conn_t *c, const uint8_t id[32], void *arg)
{
	struct fconn *f = arg;
	memcpy(f->target, id, 32);
	if (f->role == R_SINK) {
		/* our topic only: other broadcasts through the target (another
		 * flood, a probe's junk) are not ours to count or to drain */
		mm_wire_msg_t m = {.type = MM_W_SUBS};
		m.u.subs.count = 1;
		m.u.subs.topic[0] = (mm_bytes_t){(const uint8_t *)TOPIC, sizeof(TOPIC) - 1};
		(void)mm_conn_send(c, &m);
	}
	if (f->role == R_OVERSIZE) {
		/* a length prefix of 4 GB - 1: the target must close at once */
		uint8_t hdr[MM_FRAME_HDR + 8];
		memset(hdr, 0xff, MM_FRAME_HDR);
		memset(hdr + MM_FRAME_HDR, 0x81, 8);
		(void)mm_conn_send_frame(c, hdr, sizeof(hdr));
	}
	if (f->role == R_FORGED) {
		mm_wire_msg_t m = {.type = MM_W_EVENT};
		memcpy(m.u.event.pub, f->id.pub, 32);
		m.u.event.pow = f->id.nonce;
		memcpy(m.u.event.peer, id, 32);
		m.u.event.kind = 1;
		m.u.event.dir = 1;
		m.u.event.seq = 1;
		m.u.event.ts = unix_ms();
		m.u.event.ttl = 2;
		memset(m.u.event.sig, 0x5a, 64); /* not a signature */
		(void)mm_conn_send(c, &m);
	}
	if (f->role == R_STORM) { /* a newcomer: what does the node know? */
		hist_add(mono_ns() - f->dial_ns);
		atomic_fetch_add(&storm_ready, 1);
		mm_wire_msg_t m = {.type = MM_W_GET_PEERS, .req = 1};
		m.u.get_peers.limit = 16;
		(void)mm_conn_send(c, &m);
	}
	f->actor = mm_conn_actor(c);
	mm_actor_ref(f->actor);
	atomic_store(&f->ready, 1);
	atomic_fetch_add(&ready_count, 1);
}

static void
on_message(mm_conn_t *c, const mm_wire_msg_t *m, void *arg)
{
	struct fconn *f = arg;
	if (f->role == R_STORM) {
		/* the answer to our get_peers (req 1), or a full node's peers
		 * list and "no slot": either way we are done */
		if (m->type == MM_W_PEERS && m->req == 1) {
			atomic_fetch_add(&storm_peers, 1);
			mm_msg_t cm = {.type = MM_CONN_CLOSE, .aux = 0};
			(void)mm_send(mm_conn_actor(c), &cm);
		} else if (m->type == MM_W_ERROR && m->u.error.code == MM_WERR_FULL) {
			atomic_fetch_add(&storm_noslot, 1);
		}
		return;
	}
	if (f->role != R_SINK)
		return;
	if (m->type == MM_W_IHAVE && m->u.ihave.ents.len != 0) {
		/* lazy push: a sink holds no events, so it asks for every origin
		 * announced; the target serves the newest event of each, so
		 * several events of one source announced together arrive once
		 * (run the target with --gossip-eager 0 to count every event) */
		unsigned ne = m->u.ihave.ents.len / MM_WIRE_DIGEST_ENT;
		uint8_t *ids = malloc((size_t)ne * 32);
		if (ids != NULL) {
			for (unsigned i = 0; i < ne; i++)
				memcpy(ids + (size_t)i * 32,
				    m->u.ihave.ents.ptr + (size_t)i * MM_WIRE_DIGEST_ENT, 32);
			mm_wire_msg_t w = {.type = MM_W_IWANT};
			w.u.iwant.ids = (mm_bytes_t){ids, ne * 32};
			(void)mm_conn_send(c, &w);
			free(ids);
		}
		return;
	}
	uint64_t now = mono_ns(), t;
	if (m->type == MM_W_BCAST || m->type == MM_W_DIRECT)
		atomic_fetch_add_explicit(&sink_got[f - conns], 1, memory_order_relaxed);
	switch (m->type) {
	case MM_W_BCAST:
	case MM_W_DIRECT: {
		const mm_bytes_t *d = m->type == MM_W_BCAST ? &m->u.bcast.data : &m->u.direct.data;
		size_t at = m->type == MM_W_BCAST ? 0 : 1;
		uint64_t idx;
		if (d->len >= at + 8) {
			memcpy(&idx, d->ptr + at, 8);
			t = idx < atomic_load_explicit(&msg_count, memory_order_acquire) ?
			    atomic_load_explicit(&msg_sent_ns[idx],
			    memory_order_relaxed) : 0;
			if (t != 0 && now > t)
				hist_add(now - t);
		}
		atomic_fetch_add_explicit(&delivered[m->type == MM_W_BCAST ? K_BCAST : K_DIRECT],
		    1, memory_order_relaxed);
		return;
	}
	case MM_W_EVENT:
		for (unsigned s = 0; s < nsources; s++)
			if (memcmp(m->u.event.pub, conns[s].id.pub, 32) == 0) {
				uint32_t *mx = &sink_evmax[f - conns][s];
				if (m->u.event.seq <= *mx)
					return; /* covered already */
				uint64_t cover = m->u.event.seq - *mx;
				*mx = m->u.event.seq;
				t = atomic_load_explicit(&ev_sent_ns[s][m->u.event.seq % RING],
				    memory_order_relaxed);
				if (t != 0 && now > t)
					hist_add(now - t);
				atomic_fetch_add_explicit(&sink_got[f - conns], cover,
				    memory_order_relaxed);
				atomic_fetch_add_explicit(&delivered[K_EVENT], cover,
				    memory_order_relaxed);
				return;
			}
		return;
	default:
		return;
	}
}

static void
on_close(mm_conn_t *c, int reason, const char *why, void *arg)
{
	(void)c;
	(void)why;
	struct fconn *f = arg;
	atomic_store(&f->reason, reason);
	atomic_store(&f->closed, 1);
	if (f->role == R_STORM) {
		atomic_fetch_add(&storm_closed, 1);
		if (reason != MM_CLOSE_NORMAL && reason != MM_WERR_FULL)
			atomic_fetch_add(&closes_by[reason >= 0 && reason < MM_CLOSE__MAX ?
			    reason : 0], 1);
		atomic_fetch_sub(&storm_inflight, 1);
		return;
	}
	if (f->role == R_OVERSIZE || f->role == R_FORGED) {
		/* closed by the target: while we run (not our own shutdown), and
		 * for a protocol reason (not a refused dial) */
		int h = f->role == R_OVERSIZE ? H_OVERSIZE : H_FORGED;
		if (!atomic_load(&stop_now) && atomic_load(&f->ready))
			atomic_fetch_add(&hclosed[h], 1);
	} else if (!atomic_load(&stop_now)) {
		atomic_fetch_add(&closes_by[reason >= 0 && reason < MM_CLOSE__MAX ? reason : 0], 1);
	}
	if (!atomic_load(&f->ready))
		atomic_fetch_add(&ready_failed, 1);
}

/* ---- options ---------------------------------------------------------------- */

struct flood_opts {
	const char *target, *network;
	unsigned long difficulty, sources, sinks, size, rate, duration, count, window,
	    workers, garbage, oversize, halfopen, forged, handshakes, concurrency,
	    map, map_rate;
	unsigned long mix[K__N];
	int json;
	struct sockaddr_storage ta;
	socklen_t tl;
};

static void
flood_usage(FILE *f)
{
	fprintf(f,
	    "usage: meshmap flood --target HOST:PORT [options]\n"
	    "\n"
	    "Loads one node with real traffic from identities of its own, and\n"
	    "measures what it delivers: messages a second, latency, errors.\n"
	    "\n"
	    "  -t, --target HOST:PORT  the node under load (required)\n"
	    "  -n, --network NAME      its network name (default main)\n"
	    "  -d, --difficulty BITS   its proof of work: our keys are made to it\n"
	    "                          (default 22: about a second per key)\n"
	    "      --sources N         connections that send (default 1)\n"
	    "      --sinks N           connections that receive (default 12); the\n"
	    "                          target must accept sources + sinks links\n"
	    "                          (run it with --select-ms 0 or --relay)\n"
	    "      --mix K=W,...       message kinds and their weights: bcast,\n"
	    "                          direct, event, dup (default bcast=1)\n"
	    "      --size BYTES        payload of bcast and direct (default 256)\n"
	    "  -c, --count N           messages to send (default 10000; signed\n"
	    "                          before the clock starts)\n"
	    "  -r, --rate N            messages a second (default 0: as fast as the\n"
	    "                          target takes them, --window ahead)\n"
	    "      --duration S        stop sending after S seconds (default: none)\n"
	    "      --window N          with --rate 0, deliveries the slowest sink may\n"
	    "                          still be waiting for (default 32)\n"
	    "      --garbage N         hostile: N connections that send random\n"
	    "                          bytes instead of TLS\n"
	    "      --oversize N        hostile: N connections that announce a 4 GB\n"
	    "                          frame after the handshake\n"
	    "      --halfopen N        hostile: N TCP connections that stall the TLS\n"
	    "                          handshake\n"
	    "      --forged N          hostile: N connections that send an event\n"
	    "                          with a forged signature\n"
	    "      --handshakes N      instead of messages, a connection storm: N new\n"
	    "                          identities each complete the TLS and hello\n"
	    "                          handshakes, ask the target for peers (a full\n"
	    "                          node answers with peers and \"no slot\"), and\n"
	    "                          leave; reports handshakes/s and answers\n"
	    "      --concurrency N     storm handshakes in flight (default 4: the\n"
	    "                          target's pending-handshake cap per address)\n"
	    "      --map N             first, a synthetic network's map: N origins\n"
	    "                          (own keys and proof of work, 12 neighbours\n"
	    "                          each, every edge claimed by both ends) send\n"
	    "                          one signed event each, ttl 0, from the first\n"
	    "                          source; then the flood. Made before the clock\n"
	    "                          starts (about 0.2 ms of CPU per origin at\n"
	    "                          difficulty 8)\n"
	    "      --map-rate N        map events a second (default 10000; the\n"
	    "                          target verifies each)\n"
	    "  -w, --workers N         our worker threads (default 1)\n"
	    "      --json              the summary as one JSON object\n"
	    "\n"
	    "examples:\n"
	    "  meshmap flood --target 127.0.0.1:7946 --difficulty 8 --count 100000\n"
	    "  meshmap flood -t 127.0.0.1:7946 -d 8 --mix bcast=2,direct=1,event=1,dup=1 \\\n"
	    "      --rate 5000 --duration 30 --garbage 50 --halfopen 200 --json\n"
	    "\n"
	    "Exit status: 0 done (whatever was lost is in the summary), 1 the\n"
	    "target could not be reached or refused the connections, 2 usage.\n");
}

static int
parse_mix(const char *s, unsigned long mix[K__N])
{
	memset(mix, 0, K__N * sizeof(mix[0]));
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", s);
	unsigned long total = 0;
	for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		if (eq == NULL)
			return -1;
		*eq = '\0';
		int k = 0;
		while (k < K__N && strcmp(kind_name[k], tok) != 0)
			k++;
		if (k == K__N || mm_cmd_parse_uint(eq + 1, 0, 1000, &mix[k]) != 0)
			return -1;
		total += mix[k];
	}
	return total > 0 ? 0 : -1;
}

/* ---- messages --------------------------------------------------------------- */

struct msg {
	uint8_t kind, src;
	uint16_t sink;
	uint32_t seq;           /* events: the seq; the rest: 0 */
	uint32_t off, len;      /* in the frame arena */
};

static uint8_t *arena;
static size_t arena_len, arena_cap;

static int
arena_put(const mm_wire_msg_t *m, struct msg *out)
{
	size_t need = 1024 + (m->type == MM_W_BCAST ? m->u.bcast.data.len :
	    m->type == MM_W_DIRECT ? m->u.direct.data.len : 0);
	if (arena_len + need > arena_cap) {
		size_t nc = arena_cap ? arena_cap * 2 : (1u << 20);
		while (nc < arena_len + need)
			nc *= 2;
		uint8_t *na = realloc(arena, nc);
		if (na == NULL)
			return -1;
		arena = na;
		arena_cap = nc;
	}
	int n = mm_wire_encode(m, arena + arena_len, arena_cap - arena_len);
	if (n < 0)
		return -1;
	out->off = (uint32_t)arena_len;
	out->len = (uint32_t)n;
	arena_len += (size_t)n;
	return 0;
}


/* Build and sign every message. Returns how many, or -1. */
static long
build(const struct flood_opts *o, struct msg **out)
{
	unsigned long n = o->count, wsum = 0;
	for (int k = 0; k < K__N; k++)
		wsum += o->mix[k];
	struct msg *ms = calloc(n, sizeof(*ms));
	uint8_t *data = calloc(1, o->size + 16);
	msg_sent_ns = calloc(n, sizeof(*msg_sent_ns));
	if (ms == NULL || data == NULL || msg_sent_ns == NULL)
		return -1;
	atomic_store_explicit(&msg_count, n, memory_order_release);
	uint64_t ts = unix_ms();
	uint32_t evseq[MAX_CONNS] = {0};
	uint32_t last_ev[MAX_CONNS] = {0}; /* index of a source's last event: dups copy it */
	long acc[K__N] = {0};
	uint8_t route[3][32]; /* the direct message points into it until encoded */
	int tty = isatty(2);
	for (unsigned long i = 0; i < n; i++) {
		/* smooth weighted round robin: the kinds interleave */
		int k = 0;
		for (int j = 0; j < K__N; j++) {
			acc[j] += (long)o->mix[j];
			if (acc[j] > acc[k])
				k = j;
		}
		acc[k] -= (long)wsum;
		/* sources take turns in runs of BATCH, so that a run can go in one
		 * buffer */
		unsigned src = (unsigned)((i / BATCH) % nsources);
		struct fconn *s = &conns[src];
		if (k == K_DUP && evseq[src] == 0)
			k = K_EVENT; /* nothing to duplicate yet */
		ms[i].kind = (uint8_t)k;
		ms[i].src = (uint8_t)src;
		mm_wire_msg_t m;
		memset(&m, 0, sizeof(m));
		uint64_t idx = i;
		if (k == K_BCAST) {
			memcpy(data, &idx, 8);
			m.type = MM_W_BCAST;
			m.u.bcast.topic = (mm_bytes_t){(const uint8_t *)TOPIC, sizeof(TOPIC) - 1};
			m.u.bcast.data = (mm_bytes_t){data, (uint32_t)o->size};
			memcpy(m.u.bcast.pub, s->id.pub, 32);
			m.u.bcast.pow = s->id.nonce;
			m.u.bcast.nonce = i + 1;
			m.u.bcast.ts = ts;
			m.u.bcast.ttl = 1;
			uint8_t sb[MM_WIRE_BCAST_SIGNED_LEN];
			mm_wire_bcast_signed_bytes(&m.u.bcast, sb);
			mm_id_sign(&s->id, sb, sizeof(sb), m.u.bcast.sig);
		} else if (k == K_DIRECT) {
			unsigned sink = nsources + (unsigned)(i % nsinks);
			ms[i].sink = (uint16_t)sink;
			memcpy(route[0], s->id.id, 32);
			memcpy(route[1], s->target, 32);
			memcpy(route[2], conns[sink].id.id, 32);
			data[0] = 0; /* a datagram */
			memcpy(data + 1, &idx, 8);
			m.type = MM_W_DIRECT;
			if (mm_direct_make(&s->id, &route[0][0], 3, 0, i + 1, ts, data,
			        (uint32_t)o->size + 1, &m.u.direct) != 0)
				return -1;
		} else if (k == K_EVENT) {
			m.type = MM_W_EVENT;
			memcpy(m.u.event.pub, s->id.pub, 32);
			m.u.event.pow = s->id.nonce;
			memcpy(m.u.event.peer, s->target, 32);
			m.u.event.kind = 1;
			m.u.event.dir = 1; /* we dialled it */
			m.u.event.seq = ++evseq[src];
			m.u.event.ts = ts;
			m.u.event.ttl = 2;
			uint8_t sb[MM_WIRE_EVENT_SIGNED_LEN];
			mm_wire_event_signed_bytes(&m.u.event, sb);
			mm_id_sign(&s->id, sb, sizeof(sb), m.u.event.sig);
			ms[i].seq = m.u.event.seq;
			last_ev[src] = (uint32_t)i;
		}
		if (k == K_DUP) { /* the same bytes as this source's last event */
			ms[i].off = ms[last_ev[src]].off;
			ms[i].len = ms[last_ev[src]].len;
			ms[i].seq = ms[last_ev[src]].seq;
		} else if (arena_put(&m, &ms[i]) != 0) {
			return -1;
		}
		if (tty && (i % 4096 == 0 || i + 1 == n))
			fprintf(stderr, "\rsigning %lu/%lu", i + 1, n);
	}
	if (tty)
		fprintf(stderr, "\n");
	free(data);
	*out = ms;
	return (long)n;
}

/* ---- --map N: a synthetic network's map, loaded into the target ------------ */

/* N origins joined as a circulant graph: i links i±1, i±2, i±3 and i±s for
 * three random strides s, so every origin has exactly 12 neighbours, every
 * edge is claimed by both of its ends (confirmed in the target's map), and
 * paths are short (the random strides). i dialled i+d: out at i, in at i+d.
 * Each origin sends one event (connect to its first neighbour, with its
 * whole list), ttl 0: the target verifies and applies it, forwards nothing. */
#define MAP_DEG 12
#define MAP_SLOT 1024 /* an event frame with 12 ids is ~620 bytes */

struct mapgen {
	const struct flood_opts *o;
	mm_identity_t *ids;
	unsigned long stride[MAP_DEG / 2];
	uint8_t *frames;   /* n slots of MAP_SLOT */
	uint32_t *len;
	atomic_ulong next;
	atomic_int phase, fail;
	uint64_t ts;
};

static void
map_event(struct mapgen *g, unsigned long i)
{
	unsigned long n = g->o->map;
	mm_wire_msg_t m;
	memset(&m, 0, sizeof(m));
	m.type = MM_W_EVENT;
	mm_w_event_t *e = &m.u.event;
	memcpy(e->pub, g->ids[i].pub, 32);
	e->pow = g->ids[i].nonce;
	e->has_nb = 1;
	for (unsigned k = 0; k < MAP_DEG / 2; k++) {
		unsigned long up = (i + g->stride[k]) % n, down = (i + n - g->stride[k]) % n;
		memcpy(e->nb[e->nnb], g->ids[up].id, 32);
		e->nbd |= 1u << e->nnb++; /* we dialled i + s */
		memcpy(e->nb[e->nnb++], g->ids[down].id, 32);
	}
	memcpy(e->peer, e->nb[0], 32);
	e->kind = 1;
	e->dir = 1;
	e->seq = 1;
	e->ts = g->ts;
	e->ttl = 0;
	uint8_t sb[MM_WIRE_EVENT_SIGNED_LEN];
	mm_wire_event_signed_bytes(e, sb);
	int len = -1;
	if (mm_id_sign(&g->ids[i], sb, sizeof(sb), e->sig) == 0)
		len = mm_wire_encode(&m, g->frames + (size_t)i * MAP_SLOT, MAP_SLOT);
	if (len < 0)
		atomic_store(&g->fail, 1);
	else
		g->len[i] = (uint32_t)len;
}

/* Phase 1 makes the identities, phase 2 the signed events (they name
 * other origins' ids); the main thread runs the phases and waits. */
static void *
map_worker(void *arg)
{
	struct mapgen *g = arg;
	int phase = atomic_load(&g->phase);
	unsigned long i;
	while ((i = atomic_fetch_add(&g->next, 1)) < g->o->map && !atomic_load(&g->fail)) {
		if (phase == 1) {
			if (mm_id_generate(&g->ids[i], (unsigned)g->o->difficulty, NULL) != 0)
				atomic_store(&g->fail, 1);
		} else {
			map_event(g, i);
		}
	}
	return NULL;
}

static int
map_phase(struct mapgen *g, int phase, unsigned nth)
{
	pthread_t th[64];
	atomic_store(&g->phase, phase);
	atomic_store(&g->next, 0);
	unsigned started = 0;
	for (unsigned t = 0; t < nth; t++)
		if (pthread_create(&th[t], NULL, map_worker, g) == 0)
			started++;
	for (unsigned t = 0; t < started; t++)
		pthread_join(th[t], NULL);
	return started == 0 || atomic_load(&g->fail) ? -1 : 0;
}

static int
map_load(const struct flood_opts *o)
{
	unsigned long n = o->map;
	struct mapgen g = {.o = o, .ts = unix_ms()};
	g.ids = calloc(n, sizeof(*g.ids));
	g.frames = malloc(n * MAP_SLOT);
	g.len = calloc(n, sizeof(*g.len));
	int rc = -1;
	if (g.ids == NULL || g.frames == NULL || g.len == NULL) {
		fprintf(stderr, "meshmap flood: --map: out of memory\n");
		goto done;
	}
	/* strides 1, 2, 3 and three distinct random ones in [4, n/2) */
	for (unsigned k = 0; k < 3; k++)
		g.stride[k] = k + 1;
	for (unsigned k = 3; k < MAP_DEG / 2; k++) {
		unsigned long s;
		int dup;
		do {
			s = 4 + mm_random() % (n / 2 - 4);
			dup = 0;
			for (unsigned j = 0; j < k; j++)
				dup |= g.stride[j] == s;
		} while (dup);
		g.stride[k] = s;
	}
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned nth = ncpu < 1 ? 1 : ncpu > 64 ? 64 : (unsigned)ncpu;
	uint64_t t0 = mono_ns();
	if (!o->json)
		fprintf(stderr, "map: making %lu origins at difficulty %lu\n", n, o->difficulty);
	if (map_phase(&g, 1, nth) != 0 || map_phase(&g, 2, nth) != 0) {
		fprintf(stderr, "meshmap flood: --map: cannot make the origins or their events\n");
		goto done;
	}
	uint64_t t1 = mono_ns();
	/* from the first source, BATCH events a buffer, paced */
	struct fconn *s = &conns[0];
	for (unsigned long i = 0; i < n; i += BATCH) {
		unsigned long j = i + BATCH < n ? i + BATCH : n;
		uint64_t due = t1 + (uint64_t)((double)i * 1e9 / (double)o->map_rate), now;
		while ((now = mono_ns()) < due)
			usleep((useconds_t)((due - now) / 1000 + 1));
		size_t blen = 0;
		for (unsigned long k = i; k < j; k++)
			blen += g.len[k];
		mm_buf_t *b = mm_buf_alloc((uint32_t)blen);
		if (b == NULL)
			goto done;
		b->len = 0;
		for (unsigned long k = i; k < j; k++) {
			memcpy(b->data + b->len, g.frames + k * MAP_SLOT, g.len[k]);
			b->len += g.len[k];
		}
		mm_msg_t mm = {.type = MM_CONN_SEND_BUF | MM_MSG_F_BUF, .ptr = b};
		while (mm_send(s->actor, &mm) != 0) {
			if (atomic_load(&s->closed)) {
				mm_buf_release(b);
				fprintf(stderr, "meshmap flood: --map: the target closed the source\n");
				goto done;
			}
			usleep(50);
		}
	}
	if (!o->json)
		fprintf(stderr, "map: %lu events made in %.1f s, sent in %.1f s\n", n,
		    (double)(t1 - t0) / 1e9, (double)(mono_ns() - t1) / 1e9);
	rc = 0;
done:
	if (g.ids != NULL)
		for (unsigned long i = 0; i < n; i++)
			mm_id_free(&g.ids[i]);
	free(g.ids);
	free(g.frames);
	free(g.len);
	return rc;
}

/* ---- hostile connections (a thread of their own, raw sockets) -------------- */

struct raw_state {
	const struct flood_opts *o;
	int *fds;
	unsigned nfds;
};

static int
raw_connect(const struct flood_opts *o)
{
	int fd = socket(o->ta.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (const struct sockaddr *)&o->ta, o->tl) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Has the peer closed fd (EOF or reset), within wait_ms? */
static int
peer_closed(int fd, int wait_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	uint8_t b[4096];
	uint64_t end = mono_ns() + (uint64_t)wait_ms * 1000000u;
	for (;;) {
		uint64_t now = mono_ns();
		if (now >= end)
			return 0;
		if (poll(&p, 1, (int)((end - now) / 1000000u) + 1) <= 0)
			continue;
		ssize_t r = recv(fd, b, sizeof(b), 0);
		if (r <= 0)
			return 1;
	}
}

static void *
hostile_thread(void *arg)
{
	struct raw_state *st = arg;
	const struct flood_opts *o = st->o;
	/* garbage: bytes that are not a TLS record; one at a time */
	for (unsigned long i = 0; i < o->garbage && !atomic_load(&stop_now); i++) {
		int fd = raw_connect(o);
		atomic_fetch_add(&hattempts[H_GARBAGE], 1);
		if (fd < 0)
			continue;
		uint8_t junk[1024];
		for (size_t j = 0; j < sizeof(junk); j++)
			junk[j] = (uint8_t)(rand() & 0xff);
		junk[0] = 0x47; /* "GET ...": certainly not a handshake record */
		(void)send(fd, junk, sizeof(junk), MSG_NOSIGNAL);
		if (peer_closed(fd, 10000))
			atomic_fetch_add(&hclosed[H_GARBAGE], 1);
		close(fd);
	}
	/* half-open: a TLS record header promising more, then nothing */
	for (unsigned long i = 0; i < o->halfopen && !atomic_load(&stop_now); i++) {
		int fd = raw_connect(o);
		atomic_fetch_add(&hattempts[H_HALFOPEN], 1);
		if (fd < 0)
			continue;
		static const uint8_t part[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01};
		(void)send(fd, part, sizeof(part), MSG_NOSIGNAL);
		st->fds[st->nfds++] = fd;
	}
	return NULL;
}

/* ---- the run -------------------------------------------------------------------- */

/* A connection's identity (made to the target's difficulty) and its own
 * net layer: every flood connection is another peer. 0 or -1 (err). */
static int
fconn_init(struct fconn *f, const struct flood_opts *o, mm_rt_t *rt, int role, char *err,
    size_t el)
{
	int idx = f->idx;
	memset(f, 0, sizeof(*f));
	f->role = role;
	f->idx = idx;
	if (mm_id_generate(&f->id, (unsigned)o->difficulty, NULL) != 0) {
		snprintf(err, el, "cannot make a key");
		return -1;
	}
	mm_net_config_t nc;
	mm_net_config_default(&nc);
	nc.id = &f->id;
	nc.network = o->network;
	nc.difficulty = (unsigned)o->difficulty;
	nc.on_ready = on_ready;
	nc.on_message = on_message;
	nc.on_close = on_close;
	nc.arg = f;
	nc.write_cap = 64u << 20;
	nc.idle_timeout_ms = 120000;
	return mm_net_create(rt, &nc, &f->net, err, el) == 0 ? 0 : -1;
}

static struct fconn *
conn_new(const struct flood_opts *o, mm_rt_t *rt, int role, int idx, char *err, size_t el)
{
	if (nconns == MAX_CONNS) {
		snprintf(err, el, "more than %d connections", MAX_CONNS);
		return NULL;
	}
	struct fconn *f = &conns[nconns++];
	f->idx = idx;
	return fconn_init(f, o, rt, role, err, el) == 0 ? f : NULL;
}

static int
dial_wait(struct fconn *f, const struct flood_opts *o, int want_ready)
{
	if (mm_net_dial(f->net, (const struct sockaddr *)&o->ta, o->tl, NULL) != 0)
		return -1;
	if (!want_ready)
		return 0;
	for (int t = 0; t < 1000; t++) { /* one handshake at a time: the target
	                                   * limits pending ones per address */
		if (atomic_load(&f->ready))
			return 0;
		if (atomic_load(&f->closed))
			return -1;
		usleep(10000);
	}
	return -1;
}

static uint64_t
delivered_total(void)
{
	uint64_t d = 0;
	for (int k = 0; k < K__N; k++)
		d += atomic_load_explicit(&delivered[k], memory_order_relaxed);
	return d;
}

/* Connections lost, by reason: JSON members, or " (reason: n)" each. */
static void
print_closes(int json)
{
	int first = 1;
	for (int r = 0; r < MM_CLOSE__MAX; r++) {
		if (closes_by[r] == 0)
			continue;
		if (json)
			printf("%s\"%s\":%llu", first ? "" : ",", mm_close_reason_name(r),
			    (unsigned long long)closes_by[r]);
		else
			printf(" (%s: %llu)", mm_close_reason_name(r),
			    (unsigned long long)closes_by[r]);
		first = 0;
	}
}

/* The most deliveries any one open sink is still waiting for (a sink the
 * target closed gets nothing more: waiting for it would stall the flood
 * 2 s a batch). */
static uint64_t
sink_behind(void)
{
	uint64_t worst = 0;
	for (unsigned q = nsources; q < nsources + nsinks; q++) {
		if (atomic_load(&conns[q].closed))
			continue;
		uint64_t g = atomic_load_explicit(&sink_got[q], memory_order_relaxed);
		if (sink_expect[q] > g && sink_expect[q] - g > worst)
			worst = sink_expect[q] - g;
	}
	return worst;
}

/* Sinks the target has not closed. */
static unsigned
sinks_open(void)
{
	unsigned open = 0;
	for (unsigned q = nsources; q < nsources + nsinks; q++)
		open += !atomic_load(&conns[q].closed);
	return open;
}

static void
progress(double t, int final)
{
	uint64_t s = 0, errs = 0;
	for (int k = 0; k < K__N; k++)
		s += atomic_load(&sent[k]);
	for (int r = 0; r < MM_CLOSE__MAX; r++)
		errs += atomic_load(&closes_by[r]);
	uint64_t d = delivered_total();
	fprintf(stderr, "\r%6.1fs sent %llu delivered %llu (%.0f/s) honest links lost %llu   %s",
	    t, (unsigned long long)s, (unsigned long long)d, t > 0 ? (double)d / t : 0.0,
	    (unsigned long long)errs, final ? "\n" : "");
}

/* The connection storm: every identity and its TLS context made first
 * (not timed), then at most concurrency handshakes in flight. */
static int
run_storm(const struct flood_opts *o)
{
	mm_rt_config_t rc;
	mm_rt_config_default(&rc);
	rc.workers = (unsigned)o->workers;
	rc.mem_budget = 1ull << 40;
	mm_rt_t *rt;
	if (mm_rt_create(&rc, &rt) != 0)
		return MM_EXIT_FAIL;
	unsigned long n = o->handshakes;
	struct fconn *st = calloc(n, sizeof(*st));
	if (st == NULL)
		return MM_EXIT_FAIL;
	char err[256] = "";
	int tty = isatty(2) && !o->json;
	for (unsigned long i = 0; i < n; i++) {
		if (fconn_init(&st[i], o, rt, R_STORM, err, sizeof(err)) != 0) {
			fprintf(stderr, "meshmap flood: %s\n", err);
			return MM_EXIT_FAIL;
		}
		if (tty && (i % 64 == 0 || i + 1 == n))
			fprintf(stderr, "\rmaking identities %lu/%lu", i + 1, n);
	}
	if (tty)
		fprintf(stderr, "\n");
	uint64_t t0 = mono_ns(), last = 0, lt = t0;
	unsigned long next = 0;
	while (next < n || atomic_load(&storm_inflight) > 0) {
		if (next < n && atomic_load(&storm_inflight) < o->concurrency) {
			struct fconn *f = &st[next++];
			atomic_fetch_add(&storm_inflight, 1);
			f->dial_ns = mono_ns();
			if (mm_net_dial(f->net, (const struct sockaddr *)&o->ta, o->tl, NULL) != 0) {
				atomic_fetch_sub(&storm_inflight, 1);
				atomic_fetch_add(&closes_by[MM_CLOSE_IO], 1);
			}
			continue;
		}
		uint64_t done = atomic_load(&storm_closed), now = mono_ns();
		if (done != last) {
			last = done;
			lt = now;
		} else if (now - lt > 10000000000ull) {
			break; /* nothing closed for 10 s: give up on the rest */
		}
		usleep(100);
	}
	double secs = (double)(mono_ns() - t0) / 1e9;
	uint64_t ready = atomic_load(&storm_ready), failed = 0;
	for (int r = 0; r < MM_CLOSE__MAX; r++)
		failed += closes_by[r];
	double p50 = hist_q(0.5), p99 = hist_q(0.99);
	if (o->json) {
		printf("{\"target\":\"%s\",\"handshakes\":%lu,\"completed\":%llu,\"seconds\":%.3f,"
		    "\"completed_per_s\":%.1f,\"peers_answered\":%llu,\"no_slot\":%llu,"
		    "\"handshake_us\":{\"p50\":%.1f,\"p99\":%.1f},\"failed\":{", o->target, n,
		    (unsigned long long)ready, secs, (double)ready / secs,
		    (unsigned long long)storm_peers, (unsigned long long)storm_noslot, p50, p99);
		print_closes(1);
		printf("}}\n");
	} else {
		printf("storm of %s: %llu of %lu handshakes completed in %.3f s (%.1f/s), "
		    "%llu peers answers, %llu \"no slot\"\n", o->target,
		    (unsigned long long)ready, n, secs, (double)ready / secs,
		    (unsigned long long)storm_peers, (unsigned long long)storm_noslot);
		printf("handshake (dial to ready): p50 %.0f us, p99 %.0f us; failed: %llu", p50, p99,
		    (unsigned long long)failed);
		print_closes(0);
		printf("\n");
	}
	fflush(stdout);
	mm_rt_stop(rt);
	for (unsigned long i = 0; i < n; i++) {
		if (st[i].actor != NULL)
			mm_actor_unref(st[i].actor);
		mm_net_destroy(st[i].net);
		mm_id_free(&st[i].id);
	}
	free(st);
	mm_rt_destroy(rt);
	return ready > 0 ? MM_EXIT_OK : MM_EXIT_FAIL;
}

int
mm_cmd_flood(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"target", required_argument, NULL, 't'},
	    {"network", required_argument, NULL, 'n'},
	    {"difficulty", required_argument, NULL, 'd'},
	    {"sources", required_argument, NULL, 'S'},
	    {"sinks", required_argument, NULL, 'K'},
	    {"mix", required_argument, NULL, 'm'},
	    {"size", required_argument, NULL, 'z'},
	    {"count", required_argument, NULL, 'c'},
	    {"rate", required_argument, NULL, 'r'},
	    {"duration", required_argument, NULL, 'D'},
	    {"window", required_argument, NULL, 'W'},
	    {"garbage", required_argument, NULL, 'g'},
	    {"oversize", required_argument, NULL, 'o'},
	    {"halfopen", required_argument, NULL, 'H'},
	    {"forged", required_argument, NULL, 'f'},
	    {"workers", required_argument, NULL, 'w'},
	    {"handshakes", required_argument, NULL, 'Y'},
	    {"concurrency", required_argument, NULL, 'C'},
	    {"map", required_argument, NULL, 'M'},
	    {"map-rate", required_argument, NULL, 'R'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	struct flood_opts o = {.network = "main", .difficulty = MM_POW_DEFAULT, .sources = 1,
	    .sinks = 12, .size = 256, .count = 10000, .window = 32, .workers = 1,
	    .concurrency = 4, .map_rate = 10000};
	o.mix[K_BCAST] = 1;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "t:n:d:c:r:w:h", longopts, NULL)) != -1) {
		const char *bad = NULL;
		switch (c) {
		case 't': o.target = optarg; break;
		case 'n': o.network = optarg; break;
		case 'd':
			if (mm_cmd_parse_uint(optarg, 0, MM_POW_MAX, &o.difficulty) != 0)
				bad = "--difficulty: bits in [0, 40]";
			break;
		case 'S':
			if (mm_cmd_parse_uint(optarg, 1, 16, &o.sources) != 0)
				bad = "--sources: a whole number in [1, 16]";
			break;
		case 'K':
			if (mm_cmd_parse_uint(optarg, 1, 64, &o.sinks) != 0)
				bad = "--sinks: a whole number in [1, 64]";
			break;
		case 'm':
			if (parse_mix(optarg, o.mix) != 0)
				bad = "--mix: KIND=WEIGHT,... with kinds bcast, direct, event, dup "
				    "(weights 0..1000, not all 0)";
			break;
		case 'z':
			if (mm_cmd_parse_uint(optarg, 8, MM_WIRE_DATA_MAX - 16, &o.size) != 0)
				bad = "--size: bytes in [8, 49136]";
			break;
		case 'c':
			if (mm_cmd_parse_uint(optarg, 1, 10000000, &o.count) != 0)
				bad = "--count: messages in [1, 10000000]";
			break;
		case 'r':
			if (mm_cmd_parse_uint(optarg, 0, 100000000, &o.rate) != 0)
				bad = "--rate: messages a second in [0, 100000000] (0: no pacing)";
			break;
		case 'D':
			if (mm_cmd_parse_uint(optarg, 1, 86400, &o.duration) != 0)
				bad = "--duration: seconds in [1, 86400]";
			break;
		case 'W':
			if (mm_cmd_parse_uint(optarg, 1, 100000, &o.window) != 0)
				bad = "--window: messages in [1, 100000]";
			break;
		case 'g':
			if (mm_cmd_parse_uint(optarg, 0, 1000000, &o.garbage) != 0)
				bad = "--garbage: connections in [0, 1000000]";
			break;
		case 'o':
			if (mm_cmd_parse_uint(optarg, 0, 64, &o.oversize) != 0)
				bad = "--oversize: connections in [0, 64]";
			break;
		case 'H':
			if (mm_cmd_parse_uint(optarg, 0, 100000, &o.halfopen) != 0)
				bad = "--halfopen: connections in [0, 100000]";
			break;
		case 'f':
			if (mm_cmd_parse_uint(optarg, 0, 64, &o.forged) != 0)
				bad = "--forged: connections in [0, 64]";
			break;
		case 'w':
			if (mm_cmd_parse_uint(optarg, 1, 64, &o.workers) != 0)
				bad = "--workers: a whole number in [1, 64]";
			break;
		case 'Y':
			if (mm_cmd_parse_uint(optarg, 1, 1000000, &o.handshakes) != 0)
				bad = "--handshakes: connections in [1, 1000000]";
			break;
		case 'C':
			if (mm_cmd_parse_uint(optarg, 1, 1024, &o.concurrency) != 0)
				bad = "--concurrency: connections in [1, 1024]";
			break;
		case 'M':
			if (mm_cmd_parse_uint(optarg, 16, 1000000, &o.map) != 0)
				bad = "--map: origins in [16, 1000000]";
			break;
		case 'R':
			if (mm_cmd_parse_uint(optarg, 1, 1000000, &o.map_rate) != 0)
				bad = "--map-rate: events a second in [1, 1000000]";
			break;
		case 'j': o.json = 1; break;
		case 'h': flood_usage(stdout); return MM_EXIT_OK;
		default: flood_usage(stderr); return MM_EXIT_USAGE;
		}
		if (bad != NULL) {
			fprintf(stderr, "meshmap flood: %s (got '%s')\n", bad, optarg);
			return MM_EXIT_USAGE;
		}
	}
	if (optind != argc || o.target == NULL) {
		fprintf(stderr, "meshmap flood: %s\n", o.target == NULL ?
		    "--target HOST:PORT is required" : "unexpected argument");
		return MM_EXIT_USAGE;
	}
	if (mm_parse_hostport(o.target, &o.ta, &o.tl, 0) != 0) {
		fprintf(stderr, "meshmap flood: --target: '%s' is not a reachable HOST:PORT\n",
		    o.target);
		return MM_EXIT_USAGE;
	}
	if (o.sources + o.sinks + o.oversize + o.forged > MAX_CONNS) {
		fprintf(stderr, "meshmap flood: at most %d connections with an identity\n",
		    MAX_CONNS);
		return MM_EXIT_USAGE;
	}
	signal(SIGPIPE, SIG_IGN);
	if (o.handshakes)
		return run_storm(&o);
	nsources = (unsigned)o.sources;
	nsinks = (unsigned)o.sinks;

	mm_rt_config_t rc;
	mm_rt_config_default(&rc);
	rc.workers = (unsigned)o.workers;
	rc.mem_budget = 1ull << 40; /* a load generator sheds nothing */
	mm_rt_t *rt;
	if (mm_rt_create(&rc, &rt) != 0) {
		fprintf(stderr, "meshmap flood: cannot start the runtime\n");
		return MM_EXIT_FAIL;
	}
	char err[256] = "";
	int rc_exit = MM_EXIT_OK;
	struct msg *ms = NULL;
	int *hfds = calloc(o.halfopen ? o.halfopen : 1, sizeof(int));
	struct raw_state rs = {.o = &o, .fds = hfds};
	pthread_t hth;
	int hth_started = 0;
	if (!o.json)
		fprintf(stderr, "making %lu keys at difficulty %lu, connecting to %s\n",
		    o.sources + o.sinks + o.oversize + o.forged, o.difficulty, o.target);
	for (unsigned i = 0; i < nsources + nsinks; i++) {
		struct fconn *f = conn_new(&o, rt, i < nsources ? R_SOURCE : R_SINK, (int)i, err,
		    sizeof(err));
		if (f == NULL || dial_wait(f, &o, 1) != 0) {
			fprintf(stderr, "meshmap flood: connection %u to %s: %s\n", i + 1, o.target,
			    f == NULL ? err : atomic_load(&f->closed) ?
			    mm_close_reason_name(atomic_load(&f->reason)) : "no handshake");
			rc_exit = MM_EXIT_FAIL;
			goto out;
		}
	}
	for (unsigned i = 0; i < nsources; i++)
		if ((ev_sent_ns[i] = calloc(RING, sizeof(uint64_t))) == NULL) {
			rc_exit = MM_EXIT_FAIL;
			goto out;
		}
	usleep(300000); /* the target has every sink's subscription */
	long n = build(&o, &ms);
	if (n < 0) {
		fprintf(stderr, "meshmap flood: cannot build the messages (memory)\n");
		rc_exit = MM_EXIT_FAIL;
		goto out;
	}
	/* the map after our own signing: the flood follows it at once */
	if (o.map && map_load(&o) != 0) {
		rc_exit = MM_EXIT_FAIL;
		goto out;
	}
	/* hostile connections with identities, one handshake at a time (the
	 * target refuses handshakes beyond its per-address pending cap, 4 by
	 * default: dialled all at once, under load, one of them was refused
	 * and its forged event never sent), then the raw ones beside the
	 * honest flood */
	for (unsigned long i = 0; i < o.oversize + o.forged; i++) {
		int role = i < o.oversize ? R_OVERSIZE : R_FORGED;
		struct fconn *f = conn_new(&o, rt, role, (int)i, err, sizeof(err));
		atomic_fetch_add(&hattempts[role == R_OVERSIZE ? H_OVERSIZE : H_FORGED], 1);
		if (f != NULL)
			(void)dial_wait(f, &o, 1);
	}
	if (o.garbage || o.halfopen) {
		if (pthread_create(&hth, NULL, hostile_thread, &rs) == 0)
			hth_started = 1;
	}

	/* deliveries expected per message of each kind */
	uint64_t per[K__N] = {nsinks, 1, nsinks, 0};
	uint64_t t0 = mono_ns(), last_progress = t0;
	uint64_t expect = 0;
	int tty = isatty(2) && !o.json, sinks_gone = 0;
	long i = 0;
	for (; i < n; i++) {
		uint64_t now = mono_ns();
		if (o.duration && now - t0 >= o.duration * 1000000000ull)
			break;
		/* unpaced, the sinks set the pace: with none left the flood
		 * stops. Paced, the clock does: the sources go on (a node may
		 * drop a sink's link, e.g. choosing other neighbours) */
		if (!o.rate && sinks_open() == 0) {
			fprintf(stderr, "meshmap flood: the target closed every sink; "
			    "stopped after %ld of %ld messages\n", i, n);
			rc_exit = MM_EXIT_FAIL;
			break;
		}
		if (o.rate && !sinks_gone && sinks_open() == 0) {
			sinks_gone = 1;
			fprintf(stderr, "meshmap flood: the target closed every sink "
			    "after %ld messages; sending on at --rate\n", i);
		}
		if (o.rate) { /* pace: message i goes at t0 + i / rate */
			uint64_t due = t0 + (uint64_t)((double)i * 1e9 / (double)o.rate);
			while ((now = mono_ns()) < due) {
				uint64_t d = due - now;
				if (d > 200000)
					usleep((useconds_t)(d / 2000));
			}
		} else {
			/* at most window messages outstanding at the slowest sink */
			uint64_t last = delivered_total(), lt = mono_ns();
			while (sink_behind() > o.window) {
				uint64_t d = delivered_total(), tn = mono_ns();
				if (d != last) {
					last = d;
					lt = tn;
				} else if (tn - lt > 2000000000ull) {
					break; /* lost: do not wait for it */
				}
				usleep(50);
			}
		}
		/* unpaced: a run of up to BATCH messages of one source in one
		 * buffer (one mailbox message, one write); paced: one at a time */
		long j = i + 1;
		if (!o.rate)
			while (j < n && j - i < BATCH && ms[j].src == ms[i].src)
				j++;
		struct fconn *s = &conns[ms[i].src];
		if (atomic_load(&s->closed))
			break;
		size_t blen = 0;
		for (long k = i; k < j; k++)
			blen += ms[k].len;
		mm_buf_t *b = mm_buf_alloc(blen);
		if (b == NULL)
			break;
		b->len = 0;
		uint64_t at = mono_ns();
		for (long k = i; k < j; k++) {
			memcpy(b->data + b->len, arena + ms[k].off, ms[k].len);
			b->len += ms[k].len;
			if (ms[k].kind == K_EVENT)
				atomic_store_explicit(&ev_sent_ns[ms[k].src][ms[k].seq % RING], at,
				    memory_order_relaxed);
			atomic_store_explicit(&msg_sent_ns[k], at, memory_order_relaxed);
		}
		mm_msg_t mm = {.type = MM_CONN_SEND_BUF | MM_MSG_F_BUF, .ptr = b};
		while (mm_send(s->actor, &mm) != 0) {
			if (atomic_load(&s->closed)) {
				mm_buf_release(b);
				goto sent_all;
			}
			usleep(50);
		}
		for (long k = i; k < j; k++) {
			atomic_fetch_add_explicit(&sent[ms[k].kind], 1, memory_order_relaxed);
			expect += per[ms[k].kind];
			if (ms[k].kind == K_DIRECT)
				sink_expect[ms[k].sink]++;
			else if (ms[k].kind != K_DUP)
				for (unsigned q = nsources; q < nsources + nsinks; q++)
					sink_expect[q]++;
		}
		i = j - 1;
		if (tty && at - last_progress > 1000000000ull) {
			last_progress = at;
			progress((double)(at - t0) / 1e9, 0);
		}
	}
sent_all:;
	uint64_t t_sent = mono_ns();
	/* the rest: until all arrived, or nothing more for 2 s */
	uint64_t last = delivered_total(), lt = mono_ns(), t_end = lt;
	while (delivered_total() < expect && sinks_open() > 0) {
		uint64_t d = delivered_total(), tn = mono_ns();
		if (d != last) {
			last = d;
			lt = t_end = tn;
		} else if (tn - lt > 2000000000ull) {
			break;
		}
		if (tty && tn - last_progress > 1000000000ull) {
			last_progress = tn;
			progress((double)(tn - t0) / 1e9, 0);
		}
		usleep(200);
	}
	if (delivered_total() >= expect)
		t_end = mono_ns();
	if (t_end < t_sent)
		t_end = t_sent;
	if (tty)
		progress((double)(t_end - t0) / 1e9, 1);
	/* hostile connections with identities (oversize, forged): closed by
	 * the target by now? A loaded target may verify a forged event late;
	 * we give it 5 s after the flood at most before we stop counting */
	for (uint64_t until = mono_ns() + 5000000000ull; mono_ns() < until; usleep(1000)) {
		unsigned open = 0;
		for (unsigned k = 0; k < nconns; k++)
			if ((conns[k].role == R_OVERSIZE || conns[k].role == R_FORGED) &&
			    atomic_load(&conns[k].ready) && !atomic_load(&conns[k].closed))
				open++;
		if (open == 0)
			break;
	}
	atomic_store(&stop_now, 1);
	if (hth_started)
		pthread_join(hth, NULL);
	/* half-open connections: closed by the target by now? (its handshake
	 * timeout; we give it 10 s after the flood at most) */
	for (unsigned k = 0; k < rs.nfds; k++) {
		if (peer_closed(hfds[k], k == 0 ? 10000 : 50))
			atomic_fetch_add(&hclosed[H_HALFOPEN], 1);
		close(hfds[k]);
	}

	/* ---- the summary ---- */
	double secs = (double)(t_end - t0) / 1e9;
	uint64_t tot_sent = 0, tot_del = delivered_total(), tot_exp = 0, honest_lost = 0;
	for (int k = 0; k < K__N; k++) {
		tot_sent += sent[k];
		tot_exp += sent[k] * per[k];
	}
	for (int r = 0; r < MM_CLOSE__MAX; r++)
		honest_lost += closes_by[r];
	double p50 = hist_q(0.5), p99 = hist_q(0.99), p999 = hist_q(0.999);
	if (o.json) {
		printf("{\"target\":\"%s\",\"seconds\":%.3f,\"sent\":%llu,\"delivered\":%llu,"
		    "\"expected\":%llu,\"delivered_per_s\":%.0f,\"latency_us\":{\"p50\":%.1f,"
		    "\"p99\":%.1f,\"p999\":%.1f},\"kinds\":{", o.target, secs,
		    (unsigned long long)tot_sent, (unsigned long long)tot_del,
		    (unsigned long long)tot_exp, secs > 0 ? (double)tot_del / secs : 0.0, p50, p99,
		    p999);
		for (int k = 0; k < K__N; k++)
			printf("%s\"%s\":{\"sent\":%llu,\"delivered\":%llu,\"expected\":%llu}",
			    k ? "," : "", kind_name[k], (unsigned long long)sent[k],
			    (unsigned long long)delivered[k], (unsigned long long)(sent[k] * per[k]));
		printf("},\"hostile\":{");
		for (int h = 0; h < H__N; h++)
			printf("%s\"%s\":{\"attempts\":%llu,\"closed_by_target\":%llu}", h ? "," : "",
			    hkind_name[h], (unsigned long long)hattempts[h],
			    (unsigned long long)hclosed[h]);
		printf("},\"honest_links_lost\":{");
		print_closes(1);
		printf("}}\n");
	} else {
		printf("flood of %s: %.3f s, %llu messages sent, %llu of %llu deliveries "
		    "(%.0f delivered/s)\n", o.target, secs, (unsigned long long)tot_sent,
		    (unsigned long long)tot_del, (unsigned long long)tot_exp,
		    secs > 0 ? (double)tot_del / secs : 0.0);
		printf("latency (send to sink): p50 %.0f us, p99 %.0f us, p999 %.0f us\n", p50,
		    p99, p999);
		for (int k = 0; k < K__N; k++)
			if (sent[k])
				printf("  %-7s sent %llu, delivered %llu of %llu expected\n",
				    kind_name[k], (unsigned long long)sent[k],
				    (unsigned long long)delivered[k],
				    (unsigned long long)(sent[k] * per[k]));
		for (int h = 0; h < H__N; h++)
			if (hattempts[h])
				printf("  hostile %-8s %llu attempts, %llu closed by the target\n",
				    hkind_name[h], (unsigned long long)hattempts[h],
				    (unsigned long long)hclosed[h]);
		printf("honest links lost: %llu", (unsigned long long)honest_lost);
		print_closes(0);
		printf("\n");
	}
	fflush(stdout);
out:
	atomic_store(&stop_now, 1);
	mm_rt_stop(rt);
	for (unsigned k = 0; k < nconns; k++) {
		if (conns[k].actor != NULL)
			mm_actor_unref(conns[k].actor);
		if (conns[k].net != NULL)
			mm_net_destroy(conns[k].net);
		mm_id_free(&conns[k].id);
	}
	for (unsigned k = 0; k < nsources; k++)
		free(ev_sent_ns[k]);
	mm_rt_destroy(rt);
	free(ms);
	free(arena);
	free(msg_sent_ns);
	free(hfds);
	return rc_exit;
}
