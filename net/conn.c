#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "hello.h"
#include "log.h"
#include "siphash.h"

#define IPTAB 4096          /* hashed per-address counters */
#define READ_CHUNK 16384
/* A connection's share of its worker: after this many bytes read in one
 * turn it lets the worker's other actors (a handshake, another link's
 * ping) run, and goes on at the end of the pass (MM_MSG_FLUSH). Without
 * it a peer that sends faster than the frames are handled keeps its
 * worker to itself. */
#define READ_TURN_MAX (256u * 1024)
/* How often a connection paused by its owner's backlog looks again. */
#define HOLD_POLL_MS 2
#define WQ_MIN 4096

enum { ST_CONNECTING = 1, ST_TLS, ST_HELLO, ST_READY, ST_CLOSED };

struct worker_scratch {
	mm_wire_dec_t *dec;
	mm_wire_msg_t msg;  /* decoded message (a peers message is ~5 KB) */
	/* frames and bytes by message type, [0] in, [1] out: written by this
	 * worker only (a relaxed load and store, no locked add), read by any */
	_Atomic uint64_t tframes[2][MM_W__COUNT], tbytes[2][MM_W__COUNT];
};

struct mm_net {
	mm_rt_t *rt;
	mm_net_config_t cfg;
	char network[MM_WIRE_NET_MAX + 1];
	unsigned nworkers;
	mm_tls_ctx_t **tls;            /* one per worker (mbedTLS: one thread) */
	struct worker_scratch *scratch; /* one per worker */
	uint64_t k0, k1;
	atomic_ushort per_ip[IPTAB], pending_ip[IPTAB];
	atomic_uint open;
	atomic_uint next_worker;
	atomic_ushort adv_port;   /* advertised in hello: the config's, else the
	                           * first port we listen on */
	_Atomic uint64_t st_inbound, st_outbound, st_ready, st_accepted, st_dialled,
	    st_refused, st_frames_in, st_frames_out, st_bytes_in, st_bytes_out,
	    st_pings, st_pongs, st_closes[MM_CLOSE__MAX], st_refused_mem;
	atomic_uint open_dir[2];  /* open connections: [0] dialled, [1] accepted */
	atomic_uint open_ready;   /* of them, past both hellos */
	/* Bandwidth limits over all connections, [0] received, [1] sent:
	 * bytes a second (0: none), and the theoretical arrival time of the
	 * next byte (GCRA, one CAS per read or write call, not per frame) */
	_Atomic uint64_t bw_rate[2], bw_tat[2], st_bw_pauses[2];
	/* bytes the owner holds (mm_conn_hold), over all connections */
	_Atomic uint64_t held, st_hold_pauses;
};

struct mm_conn {
	mm_net_t *net;
	mm_actor_t *self;
	int fd;
	int inbound;
	int state;
	mm_io_t io;
	uint32_t io_events;
	mm_timer_t timer;
	mm_timer_t bw_timer;         /* resumes I/O paused by a bandwidth limit */
	uint8_t rx_paused, tx_paused;
	uint8_t in_turn;             /* inside conn_fn: sends wait for its end */
	uint8_t read_more;           /* stopped at READ_TURN_MAX: goes on */
	_Atomic uint32_t held;       /* bytes the owner holds (mm_conn_hold) */
	/* 1 for the actor, 1 per message the owner holds: the state outlives
	 * the actor (its dtor) until the owner lets go of the last one */
	_Atomic uint32_t pins;
	mm_tls_t *tls;
	mm_framer_t rx;
	uint8_t *wq;                 /* write queue: encoded frames, in order */
	uint32_t wq_head, wq_tail, wq_cap;
	uint8_t drain_wanted;        /* MM_CONN_DRAIN: on_drained when empty */
	uint32_t ipslot;
	int pending_counted, ip_counted;
	int has_expect;
	uint8_t expect[32];
	uint8_t peer[32];
	uint16_t peer_port;          /* from its hello: where it accepts */
	uint8_t proved;              /* its hello passed: peer[] is its id */
	uint16_t unknown;            /* unknown commands received */
	uint64_t last_rx_ms, last_tx_ms;
	uint64_t ping_us;
	uint32_t ping_req, next_req, rtt_us;
	uint64_t tag;
	uint64_t owner_words[2];     /* mm_conn_owner_words */
	uint8_t ip[16];
	char addr[INET6_ADDRSTRLEN + 8];
};

static void
stat_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* Count a frame of this type on the calling worker (dir 0 in, 1 out). */
static void
type_count(mm_net_t *n, int dir, unsigned type, size_t len)
{
	unsigned w = mm_rt_current_worker();
	if (w >= n->nworkers || type >= MM_W__COUNT)
		return;
	struct worker_scratch *s = &n->scratch[w];
	_Atomic uint64_t *f = &s->tframes[dir][type], *b = &s->tbytes[dir][type];
	atomic_store_explicit(f, atomic_load_explicit(f, memory_order_relaxed) + 1,
	    memory_order_relaxed);
	atomic_store_explicit(b, atomic_load_explicit(b, memory_order_relaxed) + len,
	    memory_order_relaxed);
}

static uint64_t
now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- addresses and limits ------------------------------------------------ */

static void
addr_of(const struct sockaddr_storage *ss, uint8_t ip[16], char *text, size_t tl)
{
	memset(ip, 0, 16);
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)ss;
		ip[10] = ip[11] = 0xff;
		memcpy(ip + 12, &a->sin_addr, 4);
		char b[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &a->sin_addr, b, sizeof(b));
		snprintf(text, tl, "%s:%u", b, ntohs(a->sin_port));
	} else {
		const struct sockaddr_in6 *a = (const void *)ss;
		memcpy(ip, &a->sin6_addr, 16);
		char b[INET6_ADDRSTRLEN];
		inet_ntop(AF_INET6, &a->sin6_addr, b, sizeof(b));
		snprintf(text, tl, "[%s]:%u", b, ntohs(a->sin6_port));
	}
}

static uint32_t
ip_slot(const mm_net_t *n, const uint8_t ip[16])
{
	return (uint32_t)mm_siphash13(n->k0, n->k1, ip, 16) & (IPTAB - 1);
}

/* ---- the write queue ------------------------------------------------------ */

static void conn_close(mm_conn_t *c, int reason, const char *why);

static void
set_events(mm_conn_t *c, uint32_t ev)
{
	if (c->rx_paused)
		ev &= ~(uint32_t)EPOLLIN;
	if (c->tx_paused)
		ev &= ~(uint32_t)EPOLLOUT;
	if (ev != c->io_events && c->state != ST_CLOSED) {
		if (mm_io_modify(&c->io, ev) == 0)
			c->io_events = ev;
	}
}

/* ---- bandwidth limits ----------------------------------------------------- */

#define BW_BURST_NS 250000000ull /* a quarter second's worth may go at once */

/* Before a read or write in direction dir: 0 to go on, or the
 * milliseconds to pause until the bytes already moved fit the rate again. */
static uint64_t
bw_wait(mm_net_t *n, int dir)
{
	if (atomic_load_explicit(&n->bw_rate[dir], memory_order_relaxed) == 0)
		return 0;
	uint64_t now = now_us() * 1000u;
	uint64_t tat = atomic_load_explicit(&n->bw_tat[dir], memory_order_relaxed);
	return tat <= now + BW_BURST_NS ? 0 : (tat - now - BW_BURST_NS) / 1000000u + 1;
}

/* After: charge the len bytes moved. */
static void
bw_charge(mm_net_t *n, int dir, uint64_t len)
{
	uint64_t rate = atomic_load_explicit(&n->bw_rate[dir], memory_order_relaxed);
	if (rate == 0)
		return;
	uint64_t now = now_us() * 1000u, cost = len * 1000000000ull / rate;
	uint64_t old = atomic_load_explicit(&n->bw_tat[dir], memory_order_relaxed), nw;
	do
		nw = (old > now ? old : now) + cost;
	while (!atomic_compare_exchange_weak_explicit(&n->bw_tat[dir], &old, nw,
	    memory_order_relaxed, memory_order_relaxed));
}

/* Pause reads (dir 0) or writes (1) for ms, counted in *count. */
static void
io_pause(mm_conn_t *c, int dir, uint64_t ms, _Atomic uint64_t *count)
{
	if (dir)
		c->tx_paused = 1;
	else
		c->rx_paused = 1;
	stat_add(count, 1);
	set_events(c, c->io_events);
	mm_timer_arm(&c->bw_timer, ms);
}

static void
bw_pause(mm_conn_t *c, int dir, uint64_t ms)
{
	io_pause(c, dir, ms, &c->net->st_bw_pauses[dir]);
}

/* ---- the owner's backlog ------------------------------------------------------ */

static void
conn_unpin(mm_conn_t *c)
{
	/* acq_rel: every use of the state happens before the free */
	if (atomic_fetch_sub_explicit(&c->pins, 1, memory_order_acq_rel) == 1)
		free(c);
}

void
mm_conn_hold(mm_conn_t *c, uint32_t bytes)
{
	atomic_fetch_add_explicit(&c->pins, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->held, bytes, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->net->held, bytes, memory_order_relaxed);
}

void
mm_conn_unhold(mm_actor_t *conn, uint32_t bytes)
{
	/* the actor may have exited (a reference keeps the actor, not its
	 * state): the pin keeps the state */
	mm_conn_t *c = mm_actor_state(conn);
	atomic_fetch_sub_explicit(&c->held, bytes, memory_order_relaxed);
	atomic_fetch_sub_explicit(&c->net->held, bytes, memory_order_relaxed);
	conn_unpin(c);
}

/* The owner holds more of what was read than the limits allow. */
static int
held_over(const mm_conn_t *c)
{
	const mm_net_t *n = c->net;
	if (n->cfg.hold_cap != 0 &&
	    atomic_load_explicit(&c->held, memory_order_relaxed) > n->cfg.hold_cap)
		return 1;
	return n->cfg.hold_total != 0 &&
	    atomic_load_explicit(&n->held, memory_order_relaxed) > n->cfg.hold_total;
}

static void flush(mm_conn_t *c);
static void do_read(mm_conn_t *c);

static void
bw_resume(mm_conn_t *c)
{
	c->rx_paused = c->tx_paused = 0;
	if (c->state != ST_HELLO && c->state != ST_READY)
		return;
	set_events(c, EPOLLIN | (c->wq_head < c->wq_tail ? EPOLLOUT : 0));
	if (c->wq_head < c->wq_tail)
		flush(c);
	if (c->state != ST_CLOSED)
		do_read(c); /* TLS may hold decrypted bytes epoll cannot see */
}

/* The owner asked (MM_CONN_DRAIN) and the queue is empty: tell it. */
static void
drained(mm_conn_t *c)
{
	if (!c->drain_wanted || c->state != ST_READY || c->wq_head < c->wq_tail)
		return;
	c->drain_wanted = 0;
	if (c->net->cfg.on_drained != NULL)
		c->net->cfg.on_drained(c, c->net->cfg.arg);
}

static void
flush(mm_conn_t *c)
{
	if (c->tx_paused)
		return;
	/* under a send limit, one TLS record at a time, so that the limit
	 * is charged (and pauses) between records, not after the whole queue */
	size_t most = atomic_load_explicit(&c->net->bw_rate[1], memory_order_relaxed) ?
	    16384 : SIZE_MAX;
	while (c->wq_head < c->wq_tail && c->state != ST_CLOSED) {
		uint64_t wait = bw_wait(c->net, 1);
		if (wait != 0) {
			bw_pause(c, 1, wait);
			return;
		}
		size_t len = c->wq_tail - c->wq_head;
		long w = mm_tls_write(c->tls, c->wq + c->wq_head, len < most ? len : most);
		if (w > 0) {
			c->wq_head += (uint32_t)w;
			stat_add(&c->net->st_bytes_out, (uint64_t)w);
			c->last_tx_ms = mm_now_ms();
			bw_charge(c->net, 1, (uint64_t)w);
			continue;
		}
		if (w == MM_TLS_WANT_WRITE || w == MM_TLS_WANT_READ) {
			set_events(c, EPOLLIN | EPOLLOUT);
			return;
		}
		conn_close(c, w == MM_TLS_CLOSED ? MM_CLOSE_NORMAL : MM_CLOSE_TLS,
		    w == MM_TLS_CLOSED ? "peer closed" : mm_tls_error(c->tls));
		return;
	}
	if (c->state == ST_CLOSED)
		return;
	/* Drained: start over, and give a large buffer back. */
	c->wq_head = c->wq_tail = 0;
	if (c->wq_cap > WQ_MIN) {
		free(c->wq);
		c->wq = NULL;
		c->wq_cap = 0;
	}
	set_events(c, EPOLLIN);
	drained(c);
}

/* Room for n more bytes in the write queue, or close the connection if
 * the peer has let it grow past the cap. */
static int
wq_reserve(mm_conn_t *c, size_t n)
{
	uint32_t cap_total = c->net->cfg.write_cap;
	if (c->wq_cap - c->wq_tail >= n)
		return 0;
	if (c->wq_head > 0) {
		memmove(c->wq, c->wq + c->wq_head, c->wq_tail - c->wq_head);
		c->wq_tail -= c->wq_head;
		c->wq_head = 0;
		if (c->wq_cap - c->wq_tail >= n)
			return 0;
	}
	size_t ncap = c->wq_cap ? c->wq_cap : WQ_MIN;
	while (ncap - c->wq_tail < n)
		ncap *= 2;
	if (c->wq_tail + n > cap_total) {
		conn_close(c, MM_CLOSE_SLOW, "write queue over its cap: the peer "
		    "does not read");
		return -ENOBUFS;
	}
	uint8_t *nq = realloc(c->wq, ncap);
	if (nq == NULL)
		return -ENOMEM;
	c->wq = nq;
	c->wq_cap = (uint32_t)ncap;
	return 0;
}

/* Frames queued inside the connection's turn go out together at its end
 * (conn_fn): one TLS record and one write for a run of them, not one per
 * frame. Elsewhere, or once a record's worth is waiting, at once. */
#define FLUSH_AT 16384
static void
send_done(mm_conn_t *c)
{
	if (c->tls != NULL && c->state >= ST_HELLO &&
	    (!c->in_turn || c->wq_tail - c->wq_head >= FLUSH_AT))
		flush(c);
}

int
mm_conn_send_frame(mm_conn_t *c, const uint8_t *frame, size_t len)
{
	if (c->state == ST_CLOSED)
		return -EPIPE;
	int rc = wq_reserve(c, len);
	if (rc != 0)
		return rc;
	memcpy(c->wq + c->wq_tail, frame, len);
	c->wq_tail += (uint32_t)len;
	/* a buffer may hold several frames (a join sync chunk, a batch):
	 * each counted with its type */
	uint64_t nf = 0;
	for (size_t off = 0; off + MM_FRAME_HDR <= len;) {
		const uint8_t *f = frame + off;
		size_t fl = MM_FRAME_HDR + (size_t)mm_frame_get_len(f);
		if (fl > len - off)
			fl = len - off;
		type_count(c->net, 1, (unsigned)mm_wire_peek_type(f, fl), fl);
		off += fl;
		nf++;
	}
	stat_add(&c->net->st_frames_out, nf ? nf : 1);
	send_done(c);
	return 0;
}

mm_actor_t *
mm_conn_actor(const mm_conn_t *c)
{
	return c->self;
}

int
mm_conn_send(mm_conn_t *c, const mm_wire_msg_t *m)
{
	if (c->state == ST_CLOSED)
		return -EPIPE;
	uint32_t cap_total = c->net->cfg.write_cap;
	for (;;) {
		size_t room = c->wq_cap - c->wq_tail;
		int n = room >= MM_FRAME_HDR ? mm_wire_encode(m, c->wq + c->wq_tail, room) :
		    -ENOSPC;
		if (n > 0) {
			c->wq_tail += (uint32_t)n;
			stat_add(&c->net->st_frames_out, 1);
			type_count(c->net, 1, m->type, (size_t)n);
			break;
		}
		if (n != -ENOSPC)
			return n;
		/* Compact, then grow; past the cap the peer is not reading. */
		if (c->wq_head > 0) {
			memmove(c->wq, c->wq + c->wq_head, c->wq_tail - c->wq_head);
			c->wq_tail -= c->wq_head;
			c->wq_head = 0;
			if (c->wq_cap - c->wq_tail >= 1024)
				continue;
		}
		uint32_t ncap = c->wq_cap ? c->wq_cap * 2 : WQ_MIN;
		if (c->wq_tail > cap_total || ncap > cap_total + c->net->cfg.max_frame + 64) {
			conn_close(c, MM_CLOSE_SLOW, "write queue over its cap: the "
			    "peer does not read");
			return -ENOBUFS;
		}
		uint8_t *nq = realloc(c->wq, ncap);
		if (nq == NULL)
			return -ENOMEM;
		c->wq = nq;
		c->wq_cap = ncap;
	}
	if (c->wq_tail - c->wq_head > cap_total) {
		conn_close(c, MM_CLOSE_SLOW, "write queue over its cap: the peer does "
		    "not read");
		return -ENOBUFS;
	}
	send_done(c);
	return 0;
}

/* Best effort: tell the peer why, then close. */
static void
fail(mm_conn_t *c, int code, const char *why, uint32_t req)
{
	mm_wire_msg_t e = {.type = MM_W_ERROR, .req = req};
	e.u.error.code = (uint32_t)code;
	e.u.error.msg = (mm_bytes_t){(const uint8_t *)why, (uint32_t)strnlen(why,
	    MM_WIRE_ERRMSG_MAX)};
	if (c->tls != NULL && c->state >= ST_HELLO && mm_conn_send(c, &e) == 0)
		flush(c);
	conn_close(c, code, why);
}

/* A protocol fault of the peer, found here: the owner hears of it first
 * (on_fault), then the peer (fail). */
static void
fault(mm_conn_t *c, int code, const char *why, uint32_t req)
{
	if (c->net->cfg.on_fault != NULL)
		c->net->cfg.on_fault(c, code, why, c->net->cfg.arg);
	fail(c, code, why, req);
}

/* ---- closing --------------------------------------------------------------- */

static void
conn_close(mm_conn_t *c, int reason, const char *why)
{
	if (c->state == ST_CLOSED)
		return;
	/* Frames still queued go first, best effort and without waiting:
	 * writes wait for the end of the worker's pass (MM_MSG_FLUSH), and a
	 * close asked in the same pass (the node refusing a duplicate link
	 * right after our hello was queued) must not swallow them. Not after
	 * a socket or TLS failure, nor to a peer that does not read. */
	if (c->tls != NULL && c->state >= ST_HELLO &&
	    reason != MM_CLOSE_TLS && reason != MM_CLOSE_IO && reason != MM_CLOSE_SLOW) {
		if (c->wq_head < c->wq_tail)
			flush(c);
		if (c->state == ST_CLOSED)
			return;
		/* and an orderly end: the peer reads "closed", not a TLS
		 * truncation (after an error frame, it has the reason) */
		mm_tls_close_notify(c->tls);
	}
	mm_net_t *n = c->net;
	/* 11 is a goodbye, ours or the peer's: not worth a warning */
	int misbehaved = reason >= 1 && reason <= 13 && reason != MM_WERR_SHUTDOWN;
	if (misbehaved)
		mm_log(MM_LOG_WARN, "conn %s: closed: %s: %s", c->addr,
		    mm_close_reason_name(reason), why);
	else
		mm_log(MM_LOG_INFO, "conn %s: closed: %s: %s", c->addr,
		    mm_close_reason_name(reason), why);
	stat_add(&n->st_closes[reason < MM_CLOSE__MAX ? reason : 0], 1);
	atomic_fetch_sub_explicit(&n->open, 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(&n->open_dir[c->inbound ? 1 : 0], 1, memory_order_relaxed);
	if (c->state == ST_READY)
		atomic_fetch_sub_explicit(&n->open_ready, 1, memory_order_relaxed);
	if (c->ip_counted)
		atomic_fetch_sub_explicit(&n->per_ip[c->ipslot], 1, memory_order_relaxed);
	if (c->pending_counted)
		atomic_fetch_sub_explicit(&n->pending_ip[c->ipslot], 1,
		    memory_order_relaxed);
	c->ip_counted = c->pending_counted = 0;
	c->state = ST_CLOSED;
	mm_io_stop(&c->io);
	mm_timer_cancel(&c->timer);
	mm_timer_cancel(&c->bw_timer);
	mm_tls_free(c->tls);
	c->tls = NULL;
	close(c->fd);
	c->fd = -1;
	mm_framer_free(&c->rx);
	free(c->wq);
	c->wq = NULL;
	c->wq_cap = c->wq_head = c->wq_tail = 0;
	if (n->cfg.on_close != NULL)
		n->cfg.on_close(c, reason, why, n->cfg.arg);
	mm_actor_exit(c->self);
}

void
mm_conn_close(mm_conn_t *c, int reason, const char *why)
{
	conn_close(c, reason, why);
}

const uint8_t *mm_conn_proved_id(const mm_conn_t *c) { return c->proved ? c->peer : NULL; }

uint32_t mm_conn_rtt_us(const mm_conn_t *c) { return c->rtt_us; }
int mm_conn_inbound(const mm_conn_t *c) { return c->inbound; }
const uint8_t *mm_conn_ip(const mm_conn_t *c) { return c->ip; }
uint16_t mm_conn_peer_port(const mm_conn_t *c) { return c->peer_port; }
mm_net_t *mm_conn_net(const mm_conn_t *c) { return c->net; }

const uint8_t *
mm_conn_peer_id(const mm_conn_t *c)
{
	return c->state == ST_READY ? c->peer : NULL;
}

/* ---- receiving ----------------------------------------------------------------- */

static void
on_frame(mm_conn_t *c, const uint8_t *f, uint32_t len)
{
	mm_net_t *n = c->net;
	struct worker_scratch *w = &n->scratch[mm_rt_current_worker()];
	mm_wire_msg_t *m = &w->msg;
	const char *why = "";
	stat_add(&n->st_frames_in, 1);
	c->last_rx_ms = mm_now_ms();
	int r = mm_wire_decode(w->dec, f, len, m, &why);
	if (r == 0)
		type_count(n, 0, m->type, len);
	if (r == MM_WIRE_EUNKNOWN) {
		/* Forward compatible: answered, the connection stays; but a
		 * sender must take the answer as "not supported" (PROTOCOL.md
		 * §10), so a peer that keeps sending them is misbehaving. */
		if (++c->unknown > MM_CONN_UNKNOWN_MAX) {
			fault(c, MM_WERR_UNKNOWN_CMD, "too many unknown commands", m->req);
			return;
		}
		mm_wire_msg_t e = {.type = MM_W_ERROR, .req = m->req};
		e.u.error.code = MM_WERR_UNKNOWN_CMD;
		e.u.error.msg = (mm_bytes_t){(const uint8_t *)"unknown command", 15};
		mm_conn_send(c, &e);
		return;
	}
	if (r != MM_WIRE_OK) {
		fault(c, r == MM_WIRE_EMSGPACK ? MM_WERR_BAD_MSGPACK : MM_WERR_BAD_PARAMS,
		    why, m->req);
		return;
	}
	if (c->state == ST_HELLO) {
		if (m->type != MM_W_HELLO) {
			fault(c, MM_WERR_ORDER, "first message must be hello", m->req);
			return;
		}
		int code = mm_hello_check(&m->u.hello, c->tls, n->cfg.ca_pem != NULL,
		    n->network, n->cfg.difficulty, c->has_expect ? c->expect : NULL,
		    c->peer, &why);
		if (code != 0) {
			fault(c, code, why, 0);
			return;
		}
		c->state = ST_READY;
		c->proved = 1;
		c->peer_port = m->u.hello.port;
		if (c->pending_counted) {
			atomic_fetch_sub_explicit(&n->pending_ip[c->ipslot], 1,
			    memory_order_relaxed);
			c->pending_counted = 0;
		}
		stat_add(&n->st_ready, 1);
		atomic_fetch_add_explicit(&n->open_ready, 1, memory_order_relaxed);
		/* The handshake deadline becomes the keepalive tick. */
		mm_timer_arm(&c->timer, n->cfg.ping_interval_ms);
		char hex[65];
		mm_hex(c->peer, 32, hex);
		mm_log(MM_LOG_INFO, "conn %s: ready, peer %.16s", c->addr, hex);
		if (n->cfg.on_ready != NULL)
			n->cfg.on_ready(c, c->peer, n->cfg.arg);
		return;
	}
	switch (m->type) {
	case MM_W_HELLO:
		fault(c, MM_WERR_ORDER, "hello twice", m->req);
		return;
	case MM_W_PING: {
		mm_wire_msg_t p = {.type = MM_W_PONG, .req = m->req};
		p.u.ping.ts = m->u.ping.ts;
		stat_add(&n->st_pings, 1);
		mm_conn_send(c, &p);
		return;
	}
	case MM_W_PONG:
		if (c->ping_us != 0 && m->req == c->ping_req && m->u.ping.ts == c->ping_us) {
			c->rtt_us = (uint32_t)(now_us() - c->ping_us);
			if (n->cfg.on_rtt != NULL)
				n->cfg.on_rtt(c, c->rtt_us, n->cfg.arg);
			c->ping_us = 0;
			stat_add(&n->st_pongs, 1);
		}
		return;
	default:
		if (n->cfg.on_message != NULL)
			n->cfg.on_message(c, m, n->cfg.arg);
		return;
	}
}

static void
do_read(mm_conn_t *c)
{
	size_t turn = 0;
	c->read_more = 0;
	while (c->state == ST_HELLO || c->state == ST_READY) {
		uint64_t wait = bw_wait(c->net, 0);
		if (wait != 0) {
			bw_pause(c, 0, wait);
			break;
		}
		if (held_over(c)) {
			io_pause(c, 0, HOLD_POLL_MS, &c->net->st_hold_pauses);
			break;
		}
		if (turn >= READ_TURN_MAX) {
			c->read_more = 1;
			mm_actor_flush_later(c->self);
			break;
		}
		size_t avail;
		uint8_t *p = mm_framer_space(&c->rx, READ_CHUNK, &avail);
		if (p == NULL) {
			conn_close(c, MM_CLOSE_IO, "out of memory");
			return;
		}
		if (avail > READ_CHUNK &&
		    atomic_load_explicit(&c->net->bw_rate[0], memory_order_relaxed) != 0)
			avail = READ_CHUNK; /* charged a chunk at a time, like writes */
		long r = mm_tls_read(c->tls, p, avail);
		if (r == MM_TLS_WANT_READ)
			break;
		if (r == MM_TLS_WANT_WRITE) {
			set_events(c, EPOLLIN | EPOLLOUT);
			break;
		}
		if (r <= 0) {
			conn_close(c, r == MM_TLS_CLOSED ? MM_CLOSE_NORMAL : MM_CLOSE_TLS,
			    r == MM_TLS_CLOSED ? "peer closed" : mm_tls_error(c->tls));
			return;
		}
		stat_add(&c->net->st_bytes_in, (uint64_t)r);
		turn += (size_t)r;
		mm_framer_commit(&c->rx, (size_t)r);
		const uint8_t *f;
		uint32_t len;
		int fr;
		while ((fr = mm_framer_next(&c->rx, &f, &len)) == MM_FRAME_OK) {
			on_frame(c, f, len);
			if (c->state == ST_CLOSED)
				return;
		}
		if (fr < 0) {
			fault(c, MM_WERR_BAD_FRAME, fr == MM_FRAME_EZERO ?
			    "zero-length frame" : "frame longer than the maximum", 0);
			return;
		}
		bw_charge(c->net, 0, (uint64_t)r);
	}
	if (c->state != ST_CLOSED)
		mm_framer_trim(&c->rx); /* idle: no buffer held */
}

/* ---- the connection actor ----------------------------------------------------- */

static void
tls_step(mm_conn_t *c)
{
	int r = mm_tls_handshake(c->tls);
	if (r == MM_TLS_WANT_READ || r == MM_TLS_WANT_WRITE) {
		set_events(c, r == MM_TLS_WANT_WRITE ? EPOLLIN | EPOLLOUT : EPOLLIN);
		return;
	}
	if (r != MM_TLS_OK) {
		conn_close(c, MM_CLOSE_TLS, mm_tls_error(c->tls));
		return;
	}
	c->state = ST_HELLO;
	mm_net_t *n = c->net;
	mm_wire_msg_t h;
	if (mm_hello_make(&h, n->cfg.id, n->tls[mm_rt_current_worker()], n->network,
	        atomic_load_explicit(&n->adv_port, memory_order_relaxed),
	        (uint64_t)time(NULL) * 1000u) != 0 ||
	    mm_conn_send(c, &h) != 0) {
		if (c->state != ST_CLOSED)
			conn_close(c, MM_CLOSE_IO, "cannot send hello");
		return;
	}
	do_read(c); /* the peer's hello may already sit in TLS's buffer */
}

static void
keepalive(mm_conn_t *c)
{
	mm_net_t *n = c->net;
	uint64_t now = mm_now_ms();
	if (now - c->last_rx_ms >= n->cfg.idle_timeout_ms) {
		conn_close(c, MM_CLOSE_IDLE, "nothing received");
		return;
	}
	/* Ping when we have sent nothing for an interval (the peer's idle
	 * timer), and also when we have heard nothing for one: a peer we
	 * stream to may have nothing to say, and with a longer ping interval
	 * than our idle timeout it would be closed alive; its pong is what
	 * we hear. */
	if ((now - c->last_tx_ms >= n->cfg.ping_interval_ms ||
	    now - c->last_rx_ms >= n->cfg.ping_interval_ms) && c->ping_us == 0) {
		mm_wire_msg_t p = {.type = MM_W_PING, .req = ++c->next_req};
		c->ping_req = p.req;
		c->ping_us = p.u.ping.ts = now_us();
		if (mm_conn_send(c, &p) != 0)
			return;
	}
	mm_timer_arm(&c->timer, n->cfg.ping_interval_ms);
}

static void conn_turn(mm_actor_t *self, const mm_msg_t *m);

/* One message, then: if frames wait, write them once the worker has run
 * its pass of turns (MM_MSG_FLUSH). Every turn of the pass that queued
 * frames for this connection (the node actor's sends, the replies to what
 * was read) shares one TLS record and one write; the queue still goes out
 * at once when a record's worth waits (send_done). */
static void
conn_fn(mm_actor_t *self, const mm_msg_t *m)
{
	mm_conn_t *c = mm_actor_state(self);
	if (m->type != MM_MSG_FLUSH) {
		c->in_turn = 1;
		conn_turn(self, m);
		c->in_turn = 0;
	} else if (c->read_more && !c->rx_paused &&
	    (c->state == ST_HELLO || c->state == ST_READY)) {
		/* the rest of what a turn left unread (READ_TURN_MAX) */
		c->in_turn = 1;
		do_read(c);
		c->in_turn = 0;
	}
	if (c->state != ST_CLOSED && c->wq_head < c->wq_tail && c->tls != NULL &&
	    c->state >= ST_HELLO) {
		if (m->type == MM_MSG_FLUSH)
			flush(c);
		else
			mm_actor_flush_later(self);
	}
}

static void
conn_turn(mm_actor_t *self, const mm_msg_t *m)
{
	mm_conn_t *c = mm_actor_state(self);
	switch (m->type) {
	case MM_MSG_START: {
		c->self = self;
		c->last_rx_ms = c->last_tx_ms = mm_now_ms();
		mm_timer_init(&c->timer, self, 0);
		mm_timer_init(&c->bw_timer, self, 1);
		mm_timer_arm(&c->timer, c->net->cfg.handshake_timeout_ms);
		uint32_t ev = c->state == ST_CONNECTING ? EPOLLOUT : EPOLLIN;
		if (mm_io_start(&c->io, self, c->fd, ev, 0) != 0) {
			conn_close(c, MM_CLOSE_IO, "cannot watch the socket");
			return;
		}
		c->io_events = ev;
		if (c->state == ST_TLS) {
			c->tls = mm_tls_new(c->net->tls[mm_rt_current_worker()], c->fd,
			    c->inbound);
			if (c->tls == NULL)
				conn_close(c, MM_CLOSE_TLS, "cannot start TLS");
			else if (!c->inbound)
				tls_step(c);
		}
		return;
	}
	case MM_MSG_IO:
		if (c->state == ST_CONNECTING) {
			int err = 0;
			socklen_t l = sizeof(err);
			getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
			if (err != 0 || (m->aux & (EPOLLERR | EPOLLHUP))) {
				conn_close(c, MM_CLOSE_IO, strerror(err ? err : ECONNREFUSED));
				return;
			}
			c->state = ST_TLS;
			c->tls = mm_tls_new(c->net->tls[mm_rt_current_worker()], c->fd, 0);
			if (c->tls == NULL) {
				conn_close(c, MM_CLOSE_TLS, "cannot start TLS");
				return;
			}
		}
		if (c->state == ST_TLS) {
			tls_step(c);
			return;
		}
		if ((m->aux & EPOLLOUT) && c->state != ST_CLOSED)
			flush(c);
		if ((m->aux & (EPOLLIN | EPOLLHUP | EPOLLERR)) && c->state != ST_CLOSED)
			do_read(c);
		return;
	case MM_MSG_TIMER:
		if (m->arg == 1) {
			bw_resume(c);
			return;
		}
		if (c->state == ST_READY)
			keepalive(c);
		else
			conn_close(c, MM_CLOSE_TIMEOUT, "handshake not finished in time");
		return;
	case MM_MSG_STOP:
		conn_close(c, MM_CLOSE_SHUTDOWN, "node stopping");
		return;
	case MM_CONN_SEND_BUF | MM_MSG_F_BUF: {
		mm_buf_t *b = m->ptr;
		if (c->state == ST_READY)
			(void)mm_conn_send_frame(c, b->data, b->len);
		mm_buf_release(b);
		return;
	}
	case MM_CONN_DRAIN:
		/* at once if nothing waits (this message is a turn of its own:
		 * what waits was queued before it); else the flush that
		 * empties the queue tells */
		c->drain_wanted = 1;
		drained(c);
		return;
	case MM_CONN_CLOSE:
		/* A protocol code: the peer is told why (an error message),
		 * then the connection closes. */
		if (m->aux >= 1 && m->aux < MM_CLOSE_TIMEOUT)
			fail(c, (int)m->aux, "closed by the node", 0);
		else
			conn_close(c, (int)m->aux, "closed by the node");
		return;
	default:
		return;
	}
}

static void
conn_dtor(mm_actor_t *self)
{
	conn_unpin(mm_actor_state(self));
}

static int
spawn_conn(mm_net_t *n, int fd, int inbound, const uint8_t ip[16], const char *addr,
    const uint8_t *expect, uint64_t tag)
{
	mm_conn_t *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	atomic_init(&c->pins, 1);
	c->net = n;
	c->fd = fd;
	c->inbound = inbound;
	c->state = inbound ? ST_TLS : ST_CONNECTING;
	c->tag = tag;
	c->ipslot = ip_slot(n, ip);
	memcpy(c->ip, ip, 16);
	c->ip_counted = c->pending_counted = inbound;
	snprintf(c->addr, sizeof(c->addr), "%s", addr);
	if (expect != NULL) {
		c->has_expect = 1;
		memcpy(c->expect, expect, 32);
	}
	mm_framer_init(&c->rx, n->cfg.max_frame);
	mm_actor_opts_t o = {.worker = atomic_fetch_add(&n->next_worker, 1) %
	    n->nworkers, .mailbox_cap = n->cfg.conn_mailbox, .dtor = conn_dtor,
	    .name = "conn"};
	atomic_fetch_add_explicit(&n->open_dir[inbound ? 1 : 0], 1, memory_order_relaxed);
	mm_actor_t *a = mm_actor_spawn(n->rt, conn_fn, c, &o);
	if (a == NULL) {
		int e = errno;
		atomic_fetch_sub_explicit(&n->open_dir[inbound ? 1 : 0], 1, memory_order_relaxed);
		free(c);
		return -e;
	}
	mm_actor_unref(a); /* it lives until it closes */
	return 0;
}

/* ---- the listener actor --------------------------------------------------------- */

struct listener {
	mm_net_t *net;
	int fd;
	mm_io_t io;
	uint64_t mem_seen;    /* the RSS sample the charges started from */
	uint64_t mem_charged; /* conn_mem_bytes per accept since */
};

/* Memory admission (cfg.conn_mem_bytes): would one more connection take
 * the node to its critical level before the next RSS sample can say so?
 * Charged: each connection accepted since the sample (not in it yet), and
 * each handshake still in progress (its TLS state grows as it goes on, and
 * a sample may have caught it half-grown). Counting some twice errs on the
 * budget's side. */
static int
mem_refuse(struct listener *l)
{
	mm_net_t *n = l->net;
	if (n->cfg.conn_mem_bytes == 0)
		return 0;
	if (mm_rt_pressure(n->rt) == MM_PRESSURE_CRITICAL)
		return 1;
	mm_mem_stats_t s;
	mm_rt_mem(n->rt, &s);
	if (s.forced || s.budget == 0 || s.rss == 0)
		return 0;
	if (s.rss != l->mem_seen) { /* a new sample: it sees what we charged */
		l->mem_seen = s.rss;
		l->mem_charged = 0;
	}
	uint64_t open = atomic_load_explicit(&n->open, memory_order_relaxed),
	    ready = atomic_load_explicit(&n->open_ready, memory_order_relaxed);
	uint64_t pending = open > ready ? open - ready : 0;
	if ((s.rss + l->mem_charged + (pending + 1) * n->cfg.conn_mem_bytes) * 100 >=
	    s.budget * 95)
		return 1;
	l->mem_charged += n->cfg.conn_mem_bytes;
	return 0;
}

static void
accept_some(struct listener *l)
{
	mm_net_t *n = l->net;
	for (int k = 0; k < 64; k++) { /* then let the other actors run */
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				mm_log(MM_LOG_WARN, "listener: accept: %s", strerror(errno));
			return;
		}
		uint8_t ip[16];
		char text[INET6_ADDRSTRLEN + 8];
		addr_of(&ss, ip, text, sizeof(text));
		uint32_t slot = ip_slot(n, ip);
		const char *why = NULL;
		if (n->cfg.accept_filter != NULL && n->cfg.accept_filter(ip, n->cfg.arg)) {
			mm_log(MM_LOG_INFO, "listener: refused %s: banned", text);
			stat_add(&n->st_refused, 1);
			stat_add(&n->st_closes[MM_WERR_BANNED], 1);
			close(fd);
			continue;
		}
		if (atomic_load(&n->open) >= n->cfg.max_conns)
			why = "max_conns";
		else if (atomic_load(&n->per_ip[slot]) >= n->cfg.max_conns_per_ip)
			why = "max_conns_per_ip";
		else if (atomic_load(&n->pending_ip[slot]) >= n->cfg.max_pending_per_ip)
			why = "max_pending_per_ip";
		int memory = why == NULL && mem_refuse(l);
		if (memory) {
			why = "the memory budget";
			stat_add(&n->st_refused_mem, 1);
		}
		if (why != NULL) {
			mm_log(MM_LOG_INFO, "listener: refused %s: %s reached", text, why);
			stat_add(&n->st_refused, 1);
			stat_add(&n->st_closes[MM_CLOSE_LIMIT], 1);
			close(fd);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		atomic_fetch_add(&n->open, 1);
		atomic_fetch_add(&n->per_ip[slot], 1);
		atomic_fetch_add(&n->pending_ip[slot], 1);
		stat_add(&n->st_accepted, 1);
		stat_add(&n->st_inbound, 1);
		if (spawn_conn(n, fd, 1, ip, text, NULL, 0) != 0) {
			atomic_fetch_sub(&n->open, 1);
			atomic_fetch_sub(&n->per_ip[slot], 1);
			atomic_fetch_sub(&n->pending_ip[slot], 1);
			close(fd);
		}
	}
}

static void
listener_fn(mm_actor_t *self, const mm_msg_t *m)
{
	struct listener *l = mm_actor_state(self);
	if (m->type == MM_MSG_START) {
		if (mm_io_start(&l->io, self, l->fd, EPOLLIN, 0) != 0)
			mm_log(MM_LOG_ERROR, "listener: cannot watch the socket");
	} else if (m->type == MM_MSG_IO) {
		accept_some(l);
	} else if (m->type == MM_MSG_STOP) {
		mm_io_stop(&l->io);
		close(l->fd);
		l->fd = -1;
	}
}

static void
listener_dtor(mm_actor_t *self)
{
	struct listener *l = mm_actor_state(self);
	if (l->fd >= 0)
		close(l->fd);
	free(l);
}

int
mm_net_listen(mm_net_t *n, const char *host, uint16_t port, uint16_t *bound)
{
	uint16_t got = 0;
	int rc, fd = mm_listen_fd(host, port, 1024, 1, &got);
	if (fd < 0)
		return fd;
	if (bound != NULL)
		*bound = got;
	unsigned short none = 0;
	atomic_compare_exchange_strong(&n->adv_port, &none, got);
	struct listener *l = calloc(1, sizeof(*l));
	if (l == NULL) {
		close(fd);
		return -ENOMEM;
	}
	l->net = n;
	l->fd = fd;
	mm_actor_opts_t o = {.worker = 0, .dtor = listener_dtor, .name = "listener"};
	mm_actor_t *a = mm_actor_spawn(n->rt, listener_fn, l, &o);
	if (a == NULL) {
		rc = -errno;
		free(l);
		close(fd);
		return rc;
	}
	mm_actor_unref(a);
	return 0;
}

uint64_t
mm_conn_tag(const mm_conn_t *c)
{
	return c->tag;
}

uint64_t *
mm_conn_owner_words(mm_conn_t *c)
{
	return c->owner_words;
}

int
mm_net_dial(mm_net_t *n, const struct sockaddr *sa, socklen_t len,
    const uint8_t *expect_id)
{
	return mm_net_dial_tagged(n, sa, len, expect_id, 0);
}

int
mm_net_dial_tagged(mm_net_t *n, const struct sockaddr *sa, socklen_t len,
    const uint8_t *expect_id, uint64_t tag)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, sa, len) != 0 && errno != EINPROGRESS) {
		int e = -errno;
		close(fd);
		return e;
	}
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	memcpy(&ss, sa, len < sizeof(ss) ? len : sizeof(ss));
	uint8_t ip[16];
	char text[INET6_ADDRSTRLEN + 8];
	addr_of(&ss, ip, text, sizeof(text));
	atomic_fetch_add(&n->open, 1);
	stat_add(&n->st_dialled, 1);
	stat_add(&n->st_outbound, 1);
	/* Even a connect() that completed at once is checked through
	 * EPOLLOUT + SO_ERROR, one path for all. */
	int rc = spawn_conn(n, fd, 0, ip, text, expect_id, tag);
	if (rc != 0) {
		atomic_fetch_sub(&n->open, 1);
		close(fd);
		return rc;
	}
	return 0;
}

/* ---- the net ----------------------------------------------------------------------- */

int
mm_net_create(mm_rt_t *rt, const mm_net_config_t *cfg, mm_net_t **out, char *err,
    size_t errlen)
{
	if (cfg->id == NULL || cfg->network == NULL ||
	    strlen(cfg->network) == 0 || strlen(cfg->network) > MM_WIRE_NET_MAX ||
	    cfg->ping_interval_ms == 0 || cfg->idle_timeout_ms == 0 ||
	    cfg->handshake_timeout_ms == 0 || cfg->write_cap == 0 ||
	    cfg->conn_mailbox == 0) {
		snprintf(err, errlen, "net: an identity, a network name of 1..32 "
		    "bytes and non-zero timeouts and write cap are required");
		return -EINVAL;
	}
	mm_net_t *n = calloc(1, sizeof(*n));
	if (n == NULL)
		return -ENOMEM;
	n->rt = rt;
	n->cfg = *cfg;
	atomic_store(&n->adv_port, cfg->listen_port);
	snprintf(n->network, sizeof(n->network), "%s", cfg->network);
	mm_net_set_rates(n, cfg->recv_rate, cfg->send_rate);
	n->cfg.network = n->network;
	n->nworkers = mm_rt_workers(rt);
	uint64_t k[2];
	mm_secure_random(k, sizeof(k));
	n->k0 = k[0];
	n->k1 = k[1];
	n->tls = calloc(n->nworkers, sizeof(*n->tls));
	n->scratch = calloc(n->nworkers, sizeof(*n->scratch));
	if (n->tls == NULL || n->scratch == NULL)
		goto fail;
	mm_tls_config_t tc = {.backend = cfg->backend, .cert_pem = cfg->cert_pem,
	    .key_pem = cfg->key_pem, .ca_pem = cfg->ca_pem};
	for (unsigned w = 0; w < n->nworkers; w++) {
		if (mm_tls_ctx_new(&tc, &n->tls[w], err, errlen) != 0)
			goto fail;
		if ((n->scratch[w].dec = mm_wire_dec_new()) == NULL)
			goto fail;
	}
	*out = n;
	return 0;
fail:
	mm_net_destroy(n);
	return -EINVAL;
}

void
mm_net_destroy(mm_net_t *n)
{
	if (n == NULL)
		return;
	for (unsigned w = 0; w < n->nworkers; w++) {
		if (n->tls != NULL)
			mm_tls_ctx_free(n->tls[w]);
		if (n->scratch != NULL)
			mm_wire_dec_free(n->scratch[w].dec);
	}
	free(n->tls);
	free(n->scratch);
	free(n);
}

void
mm_net_set_rates(mm_net_t *n, uint64_t recv_rate, uint64_t send_rate)
{
	atomic_store_explicit(&n->bw_rate[0], recv_rate, memory_order_relaxed);
	atomic_store_explicit(&n->bw_rate[1], send_rate, memory_order_relaxed);
}

void
mm_net_stats(const mm_net_t *n, mm_net_stats_t *o)
{
	mm_net_t *w = (mm_net_t *)n;
#define LD(x) atomic_load_explicit(&w->x, memory_order_relaxed)
	o->open = LD(open);
	o->inbound = LD(st_inbound);
	o->outbound = LD(st_outbound);
	o->ready = LD(st_ready);
	o->accepted = LD(st_accepted);
	o->dialled = LD(st_dialled);
	o->refused = LD(st_refused);
	o->refused_memory = LD(st_refused_mem);
	o->frames_in = LD(st_frames_in);
	o->frames_out = LD(st_frames_out);
	o->bytes_in = LD(st_bytes_in);
	o->bytes_out = LD(st_bytes_out);
	o->pings = LD(st_pings);
	o->pongs = LD(st_pongs);
	for (int i = 0; i < MM_CLOSE__MAX; i++)
		o->closes[i] = LD(st_closes[i]);
	o->open_in = LD(open_dir[1]);
	o->open_out = LD(open_dir[0]);
	o->open_ready = LD(open_ready);
	o->max_conns = w->cfg.max_conns;
	o->max_conns_per_ip = w->cfg.max_conns_per_ip;
	o->max_pending_per_ip = w->cfg.max_pending_per_ip;
	for (int d = 0; d < 2; d++) {
		o->bw_rate[d] = LD(bw_rate[d]);
		o->bw_pauses[d] = LD(st_bw_pauses[d]);
	}
	o->held = LD(held);
	o->hold_pauses = LD(st_hold_pauses);
	memset(o->type_frames, 0, sizeof(o->type_frames));
	memset(o->type_bytes, 0, sizeof(o->type_bytes));
	for (unsigned k = 0; k < w->nworkers && w->scratch != NULL; k++)
		for (int d = 0; d < 2; d++)
			for (int t = 0; t < MM_W__COUNT; t++) {
				o->type_frames[d][t] += LD(scratch[k].tframes[d][t]);
				o->type_bytes[d][t] += LD(scratch[k].tbytes[d][t]);
			}
#undef LD
}
