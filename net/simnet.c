/*
 * Simulated connections (simnet.h): conn.h's API over in-memory links.
 *
 * Lifetimes. A connection end (mm_conn) is reference counted: its actor
 * holds one until its dtor, the other end holds one while the two are
 * joined, every segment or event in flight towards it holds one, and so
 * does its own queue of segments towards the peer while it is not empty (a
 * closed end still delivers what it wrote, then its FIN). A
 * closed end never touches its mm_net again (the net may be destroyed
 * while segments towards the end are still in flight).
 */
#include "simnet.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "mm_sim.h"

enum { ST_DIAL = 0, ST_READY = 1, ST_CLOSED = 2 };
enum { SIM_RX = MM_MSG_USER + 2000, SIM_READY };
enum { SEG_DATA = 0, SEG_FIN = 1 };

struct seg {
	struct seg *next;
	uint64_t arrive;   /* virtual ms, non-decreasing along a direction */
	uint32_t len;
	uint8_t kind;
	uint8_t data[];
};

struct mm_conn {
	mm_net_t *net;          /* NULL once closed */
	mm_actor_t *self;
	struct mm_conn *peer;   /* the other end while joined (a reference) */
	unsigned refs;
	int state;
	int inbound;
	uint64_t tag;
	uint64_t owner_words[2]; /* mm_conn_owner_words */
	uint8_t peer_id[32], ip[16];
	uint16_t peer_port;
	uint32_t lat_ms, rtt_us;
	uint32_t local_host, peer_host;
	uint64_t give_up_ms;    /* a segment this late is abandoned */
	/* writes queued until the flush */
	uint8_t *wq;
	size_t wlen, wcap;
	/* segments in flight towards the peer, oldest first; the head's
	 * timer is armed */
	struct seg *tx_head, *tx_tail;
	size_t tx_bytes;
	uint64_t last_arrive;
	mm_timer_t tx_timer;    /* runtime-internal: cb */
	mm_timer_t idle_timer;  /* the actor's */
	uint64_t heard_ms;      /* last time the path was seen up */
	struct mm_conn *nnext, *nprev; /* the net's list */
	uint8_t expect[32];
	bool has_expect;
	bool proved;            /* became ready: peer_id is proved */
	bool drain_wanted;      /* MM_CONN_DRAIN: on_drained once delivered */
};

struct mm_net {
	mm_rt_t *rt;
	mm_net_config_t cfg;
	uint32_t host;
	uint8_t ip[16];
	uint16_t port;
	bool listening, down;
	uint32_t zone;
	struct mm_conn *conns;
	unsigned nconns;
	uint64_t st_frames[2], st_bytes[2], st_type_frames[2][MM_W__COUNT],
	    st_type_bytes[2][MM_W__COUNT], st_closes[MM_CLOSE__MAX], st_accepted,
	    st_dialled, st_ready, st_refused;
};

/* An event of the world: a dial's outcome, a reset. */
struct wev {
	mm_timer_t t;
	struct mm_conn *c;
	uint32_t target;
	int kind;
};
enum { WEV_CONNECT = 1, WEV_RESET = 2 };

static struct {
	mm_simnet_config_t cfg;
	bool configured;
	mm_net_t **hosts;    /* by host index */
	uint32_t nhosts;
	/* listen addresses: open addressing over (ip, port) -> host + 1 */
	uint32_t *addr_tab;
	uint32_t addr_cap, addr_n;
	bool partitioned;
	int (*reach)(uint32_t a, uint32_t b, void *arg);
	void *reach_arg;
	mm_wire_dec_t *dec;
	mm_simnet_stats_t st;
} W;

void
mm_simnet_config_default(mm_simnet_config_t *c)
{
	memset(c, 0, sizeof(*c));
	c->lat_min_ms = 10;
	c->lat_max_ms = 100;
}

int
mm_simnet_configure(const mm_simnet_config_t *c)
{
	if (c->lat_min_ms > c->lat_max_ms || c->lat_max_ms > 60000 ||
	    !(c->loss >= 0 && c->loss <= 0.9))
		return -EINVAL;
	W.cfg = *c;
	W.configured = true;
	return 0;
}

static void
world_init(void)
{
	if (!W.configured) {
		mm_simnet_config_default(&W.cfg);
		W.configured = true;
	}
	if (W.dec == NULL)
		W.dec = mm_wire_dec_new();
}

/* ---- addresses ----------------------------------------------------------- */

static uint32_t
addr_hash(const uint8_t ip[16], uint16_t port)
{
	uint32_t h = 2166136261u;
	for (int i = 0; i < 16; i++)
		h = (h ^ ip[i]) * 16777619u;
	h = (h ^ port) * 16777619u;
	return h;
}

static uint32_t *
addr_slot(const uint8_t ip[16], uint16_t port)
{
	for (uint32_t i = addr_hash(ip, port) & (W.addr_cap - 1);; i = (i + 1) & (W.addr_cap - 1)) {
		uint32_t v = W.addr_tab[i];
		if (v == 0)
			return &W.addr_tab[i];
		mm_net_t *n = W.hosts[v - 1];
		if (n != NULL && n->port == port && memcmp(n->ip, ip, 16) == 0)
			return &W.addr_tab[i];
	}
}

static int
addr_add(mm_net_t *n)
{
	if (2 * (W.addr_n + 1) > W.addr_cap) {
		uint32_t ncap = W.addr_cap ? W.addr_cap * 2 : 1024, *old = W.addr_tab,
		    ocap = W.addr_cap;
		if ((W.addr_tab = calloc(ncap, sizeof(uint32_t))) == NULL) {
			W.addr_tab = old;
			return -ENOMEM;
		}
		W.addr_cap = ncap;
		for (uint32_t i = 0; i < ocap; i++)
			if (old[i] != 0 && W.hosts[old[i] - 1] != NULL) {
				mm_net_t *h = W.hosts[old[i] - 1];
				*addr_slot(h->ip, h->port) = old[i];
			}
		free(old);
	}
	uint32_t *s = addr_slot(n->ip, n->port);
	if (*s != 0)
		return -EADDRINUSE;
	*s = n->host + 1;
	W.addr_n++;
	return 0;
}

static mm_net_t *
addr_find(const uint8_t ip[16], uint16_t port)
{
	if (W.addr_cap == 0)
		return NULL;
	uint32_t v = *addr_slot(ip, port);
	return v != 0 ? W.hosts[v - 1] : NULL;
}

static int
sa_to_ip(const struct sockaddr *sa, uint8_t ip[16], uint16_t *port)
{
	memset(ip, 0, 16);
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)sa;
		ip[10] = ip[11] = 0xff;
		memcpy(ip + 12, &a->sin_addr, 4);
		*port = ntohs(a->sin_port);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)sa;
		memcpy(ip, &a->sin6_addr, 16);
		*port = ntohs(a->sin6_port);
		return 0;
	}
	return -EAFNOSUPPORT;
}

/* ---- links --------------------------------------------------------------- */

static uint64_t
rnd(void)
{
	return mm_random();
}

static uint32_t
uniform(uint32_t lo, uint32_t hi)
{
	return hi > lo ? lo + (uint32_t)(rnd() % (hi - lo + 1)) : lo;
}

static bool
path_up(uint32_t a, uint32_t b)
{
	mm_net_t *x = a < W.nhosts ? W.hosts[a] : NULL, *y = b < W.nhosts ? W.hosts[b] : NULL;
	if (x == NULL || y == NULL || x->down || y->down)
		return false;
	return !W.partitioned || x->zone == y->zone;
}

static void
conn_unref(struct mm_conn *c)
{
	if (--c->refs > 0)
		return;
	struct seg *s = c->tx_head;
	while (s != NULL) {
		struct seg *nx = s->next;
		free(s);
		s = nx;
	}
	free(c->wq);
	free(c);
}

static void tx_fire(mm_timer_t *t);
static void detach(struct mm_conn *c);

static void
net_unlink(struct mm_conn *c)
{
	mm_net_t *n = c->net;
	if (n == NULL)
		return;
	if (c->nprev != NULL)
		c->nprev->nnext = c->nnext;
	else
		n->conns = c->nnext;
	if (c->nnext != NULL)
		c->nnext->nprev = c->nprev;
	n->nconns--;
	c->net = NULL;
}

/* Queue a segment towards the peer (data or FIN). */
static void
tx_push(struct mm_conn *c, const uint8_t *data, size_t len, int kind)
{
	struct seg *s = malloc(sizeof(*s) + len);
	if (s == NULL)
		return; /* as if the host ran out of buffers: the stream breaks */
	s->next = NULL;
	s->len = (uint32_t)len;
	s->kind = (uint8_t)kind;
	if (len > 0)
		memcpy(s->data, data, len);
	uint64_t now = mm_now_ms(), t = now + c->lat_ms + uniform(0, W.cfg.jitter_ms);
	if (W.cfg.bandwidth != 0)
		t += (len * 1000 + W.cfg.bandwidth - 1) / W.cfg.bandwidth;
	if (W.cfg.loss > 0) {
		uint32_t rto = 3 * c->lat_ms > 200 ? 3 * c->lat_ms : 200;
		/* each try lost with probability loss: retransmitted after rto */
		while ((double)(rnd() >> 11) * 0x1.0p-53 < W.cfg.loss) {
			t += rto;
			W.st.lost++;
		}
	}
	if (t < c->last_arrive)
		t = c->last_arrive;
	c->last_arrive = t;
	s->arrive = t;
	W.st.segments++;
	W.st.bytes += len;
	c->tx_bytes += len;
	if (c->tx_tail != NULL) {
		c->tx_tail->next = s;
		c->tx_tail = s;
		return;
	}
	c->tx_head = c->tx_tail = s;
	c->refs++; /* the queue's */
	mm_timer_arm(&c->tx_timer, t - now);
}

/* Empty the queue towards the peer (the stream is gone); releases the
 * queue's reference, so c may be freed. */
static void
tx_drop_all(struct mm_conn *c)
{
	struct seg *s = c->tx_head;
	if (s == NULL)
		return;
	while (s != NULL) {
		struct seg *nx = s->next;
		free(s);
		s = nx;
	}
	c->tx_head = c->tx_tail = NULL;
	c->tx_bytes = 0;
	mm_timer_cancel(&c->tx_timer);
	if (c->state == ST_CLOSED)
		detach(c);
	conn_unref(c);
}

#define WQ_KEEP 16384

static void
flush_wq(struct mm_conn *c)
{
	if (c->wlen == 0)
		return;
	tx_push(c, c->wq, c->wlen, SEG_DATA);
	c->wlen = 0;
	/* A join sync queues up to a megabyte at once; keep a small queue's
	 * capacity for the next flush, not a burst's (thousands of links
	 * each holding their largest burst was a quarter of a 200-node
	 * run's memory). */
	if (c->wcap > WQ_KEEP) {
		free(c->wq);
		c->wq = NULL;
		c->wcap = 0;
	}
}

static void conn_close(struct mm_conn *c, int reason, const char *why);

/* The node asked (MM_CONN_DRAIN) and nothing it queued is still on the
 * way: tell it. */
static void
sim_drained(struct mm_conn *c)
{
	if (!c->drain_wanted || c->state != ST_READY || c->wlen != 0 || c->tx_head != NULL)
		return;
	c->drain_wanted = false;
	if (c->net != NULL && c->net->cfg.on_drained != NULL)
		c->net->cfg.on_drained(c, c->net->cfg.arg);
}

/* The head segment of c's direction is due: hand it to the peer's actor. */
static void
tx_fire(mm_timer_t *t)
{
	struct mm_conn *c = (struct mm_conn *)((char *)t - offsetof(struct mm_conn, tx_timer));
	struct seg *s = c->tx_head;
	if (s == NULL)
		return;
	struct mm_conn *p = c->peer;
	uint64_t now = mm_now_ms();
	if (p == NULL || p->state == ST_CLOSED || now - s->arrive > c->give_up_ms) {
		/* nobody reads any more, or TCP gave up: the stream is gone */
		tx_drop_all(c);
		return;
	}
	if (!path_up(c->local_host, c->peer_host)) {
		/* cut: TCP keeps retransmitting */
		uint32_t rto = 3 * c->lat_ms > 200 ? 3 * c->lat_ms : 200;
		mm_timer_arm(&c->tx_timer, rto);
		return;
	}
	c->tx_head = s->next;
	if (c->tx_head == NULL)
		c->tx_tail = NULL;
	mm_msg_t m = {.type = SIM_RX, .ptr = s, .arg = (uint64_t)(uintptr_t)p};
	p->refs++; /* the message's (released by the actor or the drop) */
	int sr = mm_send(p->self, &m);
	if (sr == -EPIPE) {
		/* its actor is gone: so is the stream */
		p->refs--;
		s->next = c->tx_head;
		c->tx_head = s;
		if (c->tx_tail == NULL)
			c->tx_tail = s;
		tx_drop_all(c);
		return;
	}
	if (sr != 0) {
		/* its mailbox is full: the segment waits in the socket */
		p->refs--;
		s->next = c->tx_head;
		c->tx_head = s;
		if (c->tx_tail == NULL)
			c->tx_tail = s;
		mm_timer_arm(&c->tx_timer, 1);
		return;
	}
	c->tx_bytes -= s->len;
	if (c->tx_head != NULL) {
		mm_timer_arm(&c->tx_timer, c->tx_head->arrive > now ? c->tx_head->arrive - now : 0);
		return;
	}
	sim_drained(c);
	if (c->state == ST_CLOSED)
		detach(c);
	conn_unref(c); /* the queue's */
}

static void
count(mm_net_t *n, int dir, const uint8_t *f, uint32_t len)
{
	n->st_frames[dir]++;
	n->st_bytes[dir] += len;
	int type = mm_wire_peek_type(f, len);
	if (type > 0 && type < MM_W__COUNT) {
		n->st_type_frames[dir][type]++;
		n->st_type_bytes[dir][type] += len;
	}
}

/* A protocol fault of the peer: the owner hears of it, then the close (as
 * in conn.c). */
static void
fault(struct mm_conn *c, int code, const char *why)
{
	if (c->net->cfg.on_fault != NULL)
		c->net->cfg.on_fault(c, code, why, c->net->cfg.arg);
	conn_close(c, code, why);
}

/* Frames of one segment, in order, as conn.c's on_frame would take them
 * (hello, ping and pong never travel here). */
static void
rx_segment(struct mm_conn *c, struct seg *s)
{
	if (s->kind == SEG_FIN) {
		conn_close(c, MM_CLOSE_NORMAL, "closed by the peer");
		return;
	}
	size_t off = 0;
	while (c->state == ST_READY && off + MM_FRAME_HDR <= s->len) {
		const uint8_t *f = s->data + off;
		uint32_t fl = mm_frame_get_len(f);
		if (fl == 0 || fl > s->len - off - MM_FRAME_HDR || fl > c->net->cfg.max_frame) {
			fault(c, MM_WERR_BAD_FRAME, "bad length prefix");
			return;
		}
		count(c->net, 0, f, fl + MM_FRAME_HDR);
		mm_wire_msg_t m;
		const char *why = "";
		int r = mm_wire_decode(W.dec, f + MM_FRAME_HDR, fl, &m, &why);
		off += MM_FRAME_HDR + fl;
		if (r == MM_WIRE_EUNKNOWN)
			continue;
		if (r != MM_WIRE_OK) {
			fault(c, r == MM_WIRE_EMSGPACK ? MM_WERR_BAD_MSGPACK :
			    MM_WERR_BAD_PARAMS, why);
			return;
		}
		if (m.type == MM_W_HELLO || m.type == MM_W_PING || m.type == MM_W_PONG)
			continue;
		mm_net_t *n = c->net;
		if (n->cfg.on_message != NULL)
			n->cfg.on_message(c, &m, n->cfg.arg);
	}
}

static void
wq_append(struct mm_conn *c, const uint8_t *p, size_t len)
{
	if (c->wlen + len > c->wcap) {
		size_t ncap = c->wcap ? c->wcap : 1024;
		while (ncap < c->wlen + len)
			ncap *= 2;
		uint8_t *nq = realloc(c->wq, ncap);
		if (nq == NULL)
			return;
		c->wq = nq;
		c->wcap = ncap;
	}
	memcpy(c->wq + c->wlen, p, len);
	c->wlen += len;
	mm_actor_flush_later(c->self);
}

/* Both ends of the link break their join. */
static void
detach(struct mm_conn *c)
{
	struct mm_conn *p = c->peer;
	if (p == NULL)
		return;
	c->peer = NULL;
	if (p->peer == c) {
		p->peer = NULL;
		conn_unref(c);
	}
	conn_unref(p);
}

static void
conn_close(struct mm_conn *c, int reason, const char *why)
{
	if (c->state == ST_CLOSED)
		return;
	mm_net_t *n = c->net;
	bool was_ready = c->state == ST_READY;
	if (was_ready && reason >= 1 && reason < MM_CLOSE_TIMEOUT) {
		mm_wire_msg_t e = {.type = MM_W_ERROR};
		e.u.error.code = (uint32_t)reason;
		e.u.error.msg = (mm_bytes_t){(const uint8_t *)why, (uint32_t)strnlen(why,
		    MM_WIRE_ERRMSG_MAX)};
		mm_conn_send(c, &e);
	}
	if (was_ready && c->peer != NULL && reason != MM_CLOSE_IDLE &&
	    reason != MM_CLOSE_IO && reason != MM_CLOSE_SLOW) {
		flush_wq(c);
		tx_push(c, NULL, 0, SEG_FIN);
	}
	c->state = ST_CLOSED;
	if (was_ready)
		W.st.links_down++;
	n->st_closes[reason >= 0 && reason < MM_CLOSE__MAX ? reason : 0]++;
	mm_timer_cancel(&c->idle_timer);
	net_unlink(c);
	if (n->cfg.on_close != NULL)
		n->cfg.on_close(c, reason, why, n->cfg.arg);
	mm_actor_exit(c->self);
}

/* ---- the connection's actor ---------------------------------------------- */

static void
conn_fn(mm_actor_t *self, const mm_msg_t *m)
{
	struct mm_conn *c = mm_actor_state(self);
	switch (MM_MSG_TYPE(m->type)) {
	case SIM_RX: {
		struct seg *s = m->ptr;
		if (c->state == ST_READY)
			rx_segment(c, s);
		free(s);
		conn_unref(c); /* the message's */
		return;
	}
	case SIM_READY: {
		if (c->state != ST_DIAL)
			return;
		c->state = ST_READY;
		c->proved = true;
		c->heard_ms = mm_now_ms();
		mm_net_t *n = c->net;
		n->st_ready++;
		mm_timer_arm(&c->idle_timer, n->cfg.ping_interval_ms);
		if (n->cfg.on_ready != NULL)
			n->cfg.on_ready(c, c->peer_id, n->cfg.arg);
		if (c->state == ST_READY && n->cfg.on_rtt != NULL)
			n->cfg.on_rtt(c, c->rtt_us, n->cfg.arg);
		return;
	}
	case MM_MSG_TIMER: {
		/* the path check that stands for pings (simnet.h) */
		mm_net_t *n = c->net;
		uint64_t now = mm_now_ms();
		if (c->state != ST_READY)
			return;
		if (path_up(c->local_host, c->peer_host) && c->peer != NULL)
			c->heard_ms = now;
		else if (now - c->heard_ms >= n->cfg.idle_timeout_ms) {
			conn_close(c, MM_CLOSE_IDLE, "nothing heard");
			return;
		}
		mm_timer_arm(&c->idle_timer, n->cfg.ping_interval_ms);
		return;
	}
	case MM_MSG_FLUSH:
		if (c->state == ST_READY)
			flush_wq(c);
		return;
	case MM_MSG_STOP:
		conn_close(c, MM_CLOSE_SHUTDOWN, "node stopping");
		return;
	case MM_CONN_SEND_BUF: {
		mm_buf_t *b = m->ptr;
		if (c->state == ST_READY)
			(void)mm_conn_send_frame(c, b->data, b->len);
		mm_buf_release(b);
		return;
	}
	case MM_CONN_DRAIN:
		c->drain_wanted = true;
		sim_drained(c);
		return;
	case MM_CONN_CLOSE:
		conn_close(c, (int)m->aux, "closed by the node");
		return;
	default:
		return;
	}
}

static void
conn_drop(const mm_msg_t *m)
{
	if (MM_MSG_TYPE(m->type) == SIM_RX) {
		free(m->ptr);
		conn_unref((struct mm_conn *)(uintptr_t)m->arg);
	}
}

static void
conn_dtor(mm_actor_t *self)
{
	struct mm_conn *c = mm_actor_state(self);
	mm_timer_cancel(&c->idle_timer);
	c->refs++; /* c lives to the end of this function */
	if (c->state != ST_CLOSED) {
		/* crashed with its host: no callbacks, nothing more sent */
		c->state = ST_CLOSED;
		net_unlink(c);
		tx_drop_all(c);
	}
	if (c->tx_head == NULL)
		detach(c);
	/* else the queue still delivers, then detaches (tx_fire) */
	c->refs--; /* the actor's (the one taken above still holds) */
	conn_unref(c);
}

static struct mm_conn *
conn_new(mm_net_t *n, int inbound)
{
	struct mm_conn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->net = n;
	c->inbound = inbound;
	c->refs = 1;
	c->local_host = n->host;
	c->give_up_ms = 2ull * n->cfg.idle_timeout_ms;
	mm_timer_init(&c->tx_timer, NULL, 0);
	c->tx_timer.cb = tx_fire;
	mm_actor_opts_t o = {.mailbox_cap = n->cfg.conn_mailbox, .dtor = conn_dtor,
	    .drop = conn_drop, .name = "conn"};
	if ((c->self = mm_actor_spawn(n->rt, conn_fn, c, &o)) == NULL) {
		free(c);
		return NULL;
	}
	/* the spawn's caller reference is not kept: the actor's own life
	 * (alive reference) ends at its exit, and the node holds its own */
	mm_actor_unref(c->self);
	mm_timer_init(&c->idle_timer, c->self, 0);
	c->nnext = n->conns;
	if (n->conns != NULL)
		n->conns->nprev = c;
	n->conns = c;
	n->nconns++;
	return c;
}

/* ---- world events --------------------------------------------------------- */

static void
wev_fire(mm_timer_t *t)
{
	struct wev *e = (struct wev *)t;
	struct mm_conn *c = e->c;
	if (c->state == ST_CLOSED) {
		/* gone meanwhile */
	} else if (e->kind == WEV_RESET) {
		conn_close(c, MM_CLOSE_IO, "connection reset");
	} else {
		mm_net_t *n = c->net, *tg = e->target < W.nhosts ? W.hosts[e->target] : NULL;
		const char *why = NULL;
		int reason = MM_CLOSE_IO;
		if (tg == NULL || !tg->listening || tg->down ||
		    !path_up(n->host, tg->host)) {
			/* no answer: the handshake times out */
			reason = MM_CLOSE_TIMEOUT;
			why = "handshake timeout";
		} else if (tg->nconns >= tg->cfg.max_conns ||
		    (W.reach != NULL && !W.reach(n->host, tg->host, W.reach_arg)) ||
		    (tg->cfg.accept_filter != NULL &&
		    tg->cfg.accept_filter(n->ip, tg->cfg.arg))) {
			tg->st_refused++;
			why = "refused at accept";
		} else if (strcmp(tg->cfg.network, n->cfg.network) != 0) {
			reason = MM_WERR_NETWORK;
			why = "another network";
		} else if (!mm_pow_ok(tg->cfg.id->pub, tg->cfg.id->nonce, n->cfg.difficulty)) {
			reason = MM_WERR_BAD_POW;
			why = "short proof of work";
		} else if (c->has_expect && memcmp(c->expect, tg->cfg.id->id, 32) != 0) {
			reason = MM_WERR_BAD_ID;
			why = "not the expected peer";
		}
		struct mm_conn *a = NULL;
		if (why == NULL && !mm_pow_ok(n->cfg.id->pub, n->cfg.id->nonce,
		    tg->cfg.difficulty))
			why = "refused by the peer (short proof of work)";
		if (why == NULL) {
			mm_rt_t *rt = tg->rt;
			uint32_t g = mm_sim_group(rt);
			mm_sim_set_group(rt, tg->host);
			a = conn_new(tg, 1);
			mm_sim_set_group(rt, g);
			if (a == NULL)
				why = "no memory";
		}
		if (why != NULL) {
			W.st.dials_failed++;
			if (c->state == ST_DIAL) {
				/* a dial that never got ready closes without
				 * telling the peer anything */
				conn_close(c, reason, why);
			}
		} else {
			tg->st_accepted++;
			memcpy(a->ip, n->ip, 16);
			memcpy(a->peer_id, n->cfg.id->id, 32);
			a->peer_port = n->port;
			a->peer_host = n->host;
			a->lat_ms = c->lat_ms;
			a->rtt_us = c->rtt_us;
			memcpy(c->peer_id, tg->cfg.id->id, 32);
			memcpy(c->ip, tg->ip, 16);
			c->peer_port = tg->port;
			c->peer = a;
			a->peer = c;
			a->refs++;
			c->refs++;
			W.st.links_up++;
			mm_msg_t r = {.type = SIM_READY};
			(void)mm_send(a->self, &r);
			(void)mm_send(c->self, &r);
		}
	}
	conn_unref(c);
	free(e);
}

static int
wev_post(struct mm_conn *c, int kind, uint32_t target, uint64_t delay)
{
	struct wev *e = calloc(1, sizeof(*e));
	if (e == NULL)
		return -ENOMEM;
	mm_timer_init(&e->t, NULL, 0);
	e->t.cb = wev_fire;
	e->c = c;
	c->refs++;
	e->kind = kind;
	e->target = target;
	mm_timer_arm(&e->t, delay);
	return 0;
}

/* ---- the API -------------------------------------------------------------- */

int
mm_net_create(mm_rt_t *rt, const mm_net_config_t *cfg, mm_net_t **out, char *err,
    size_t errlen)
{
	world_init();
	if (cfg->id == NULL || cfg->network == NULL || strlen(cfg->network) == 0 ||
	    cfg->ping_interval_ms == 0 || cfg->idle_timeout_ms == 0) {
		snprintf(err, errlen, "simnet: bad configuration");
		return -EINVAL;
	}
	mm_net_t *n = calloc(1, sizeof(*n));
	if (n == NULL)
		return -ENOMEM;
	n->rt = rt;
	n->cfg = *cfg;
	n->host = mm_sim_group(rt);
	if (n->host >= W.nhosts) {
		mm_net_t **nh = realloc(W.hosts, (n->host + 1) * sizeof(*nh));
		if (nh == NULL) {
			free(n);
			return -ENOMEM;
		}
		for (uint32_t i = W.nhosts; i <= n->host; i++)
			nh[i] = NULL;
		W.hosts = nh;
		W.nhosts = n->host + 1;
	}
	if (W.hosts[n->host] != NULL) {
		snprintf(err, errlen, "simnet: host %u exists (one net per group)", n->host);
		free(n);
		return -EEXIST;
	}
	W.hosts[n->host] = n;
	*out = n;
	return 0;
}

void
mm_net_destroy(mm_net_t *n)
{
	if (n == NULL)
		return;
	/* ends still open (a crash without the kill): cut them loose */
	while (n->conns != NULL) {
		struct mm_conn *c = n->conns;
		c->state = ST_CLOSED;
		net_unlink(c);
	}
	if (n->listening) {
		uint32_t *s = addr_slot(n->ip, n->port);
		/* deleting from linear probing: re-insert the run after it */
		*s = 0;
		W.addr_n--;
		for (uint32_t i = (uint32_t)(s - W.addr_tab + 1) & (W.addr_cap - 1);
		    W.addr_tab[i] != 0; i = (i + 1) & (W.addr_cap - 1)) {
			uint32_t v = W.addr_tab[i];
			W.addr_tab[i] = 0;
			mm_net_t *h = W.hosts[v - 1];
			*addr_slot(h->ip, h->port) = v;
		}
	}
	W.hosts[n->host] = NULL;
	free(n);
}

int
mm_net_listen(mm_net_t *n, const char *host, uint16_t port, uint16_t *bound)
{
	uint8_t ip[16] = {0};
	struct in_addr a4;
	if (inet_pton(AF_INET, host, &a4) == 1) {
		ip[10] = ip[11] = 0xff;
		memcpy(ip + 12, &a4, 4);
	} else if (inet_pton(AF_INET6, host, ip) != 1) {
		return -EINVAL;
	}
	if (n->listening)
		return -EALREADY;
	memcpy(n->ip, ip, 16);
	n->port = port ? port : 7000;
	int rc = addr_add(n);
	if (rc != 0)
		return rc;
	n->listening = true;
	if (n->cfg.listen_port == 0)
		n->cfg.listen_port = n->port;
	if (bound != NULL)
		*bound = n->port;
	return 0;
}

int
mm_net_dial_tagged(mm_net_t *n, const struct sockaddr *sa, socklen_t len,
    const uint8_t *expect_id, uint64_t tag)
{
	(void)len;
	uint8_t ip[16];
	uint16_t port;
	int rc = sa_to_ip(sa, ip, &port);
	if (rc != 0)
		return rc;
	struct mm_conn *c = conn_new(n, 0);
	if (c == NULL)
		return -ENOMEM;
	c->tag = tag;
	if (expect_id != NULL) {
		memcpy(c->expect, expect_id, 32);
		c->has_expect = true;
	}
	memcpy(c->ip, ip, 16);
	mm_net_t *tg = addr_find(ip, port);
	c->peer_host = tg != NULL ? tg->host : UINT32_MAX;
	c->lat_ms = uniform(W.cfg.lat_min_ms, W.cfg.lat_max_ms);
	c->rtt_us = 2000u * c->lat_ms;
	n->st_dialled++;
	W.st.dials++;
	/* two round trips to ready; a dial nobody answers waits out the
	 * handshake timeout */
	uint64_t d = tg != NULL && tg->listening && !tg->down && path_up(n->host, tg->host) ?
	    4ull * c->lat_ms : n->cfg.handshake_timeout_ms;
	return wev_post(c, WEV_CONNECT, c->peer_host, d);
}

int
mm_net_dial(mm_net_t *n, const struct sockaddr *sa, socklen_t len,
    const uint8_t *expect_id)
{
	return mm_net_dial_tagged(n, sa, len, expect_id, 0);
}

uint64_t mm_conn_tag(const mm_conn_t *c) { return c->tag; }
uint64_t *mm_conn_owner_words(mm_conn_t *c) { return c->owner_words; }
mm_actor_t *mm_conn_actor(const mm_conn_t *c) { return c->self; }
uint32_t mm_conn_rtt_us(const mm_conn_t *c) { return c->state == ST_READY ? c->rtt_us : 0; }
int mm_conn_inbound(const mm_conn_t *c) { return c->inbound; }
const uint8_t *mm_conn_ip(const mm_conn_t *c) { return c->ip; }
uint16_t mm_conn_peer_port(const mm_conn_t *c) { return c->peer_port; }
mm_net_t *mm_conn_net(const mm_conn_t *c) { return c->net; }

const uint8_t *
mm_conn_peer_id(const mm_conn_t *c)
{
	return c->state == ST_READY ? c->peer_id : NULL;
}

int
mm_conn_send_frame(mm_conn_t *c, const uint8_t *frame, size_t len)
{
	if (c->state != ST_READY)
		return -EPIPE;
	if (c->tx_bytes + c->wlen + len > c->net->cfg.write_cap) {
		conn_close(c, MM_CLOSE_SLOW, "write queue over its cap: the peer does not read");
		return -ENOBUFS;
	}
	for (size_t off = 0; off + MM_FRAME_HDR <= len;) {
		const uint8_t *f = frame + off;
		size_t fl = MM_FRAME_HDR + (size_t)mm_frame_get_len(f);
		if (fl > len - off)
			fl = len - off;
		count(c->net, 1, f, (uint32_t)fl);
		off += fl;
	}
	wq_append(c, frame, len);
	return 0;
}

int
mm_conn_send(mm_conn_t *c, const mm_wire_msg_t *m)
{
	if (c->state != ST_READY)
		return -EPIPE;
	uint8_t buf[MM_FRAME_MAX_DEFAULT + 64];
	int n = mm_wire_encode(m, buf, sizeof(buf));
	if (n < 0)
		return n;
	return mm_conn_send_frame(c, buf, (size_t)n);
}

void
mm_conn_close(mm_conn_t *c, int reason, const char *why)
{
	conn_close(c, reason, why);
}

const uint8_t *mm_conn_proved_id(const mm_conn_t *c) { return c->proved ? c->peer_id : NULL; }

/* The simulated links deliver as the virtual clock says, one host's turn
 * at a time: no reads to pause, nothing to count (stats: held 0). */
void mm_conn_hold(mm_conn_t *c, uint32_t bytes) { (void)c; (void)bytes; }
void mm_conn_unhold(mm_actor_t *conn, uint32_t bytes) { (void)conn; (void)bytes; }


void
mm_net_set_rates(mm_net_t *n, uint64_t recv_rate, uint64_t send_rate)
{
	n->cfg.recv_rate = recv_rate;
	n->cfg.send_rate = send_rate;
}

void
mm_net_stats(const mm_net_t *n, mm_net_stats_t *out)
{
	memset(out, 0, sizeof(*out));
	out->open = n->nconns;
	for (struct mm_conn *c = n->conns; c != NULL; c = c->nnext) {
		if (c->inbound)
			out->open_in++;
		else
			out->open_out++;
		if (c->state == ST_READY)
			out->open_ready++;
	}
	out->accepted = n->st_accepted;
	out->dialled = n->st_dialled;
	out->ready = n->st_ready;
	out->refused = n->st_refused;
	out->frames_in = n->st_frames[0];
	out->frames_out = n->st_frames[1];
	out->bytes_in = n->st_bytes[0];
	out->bytes_out = n->st_bytes[1];
	memcpy(out->closes, n->st_closes, sizeof(out->closes));
	memcpy(out->type_frames, n->st_type_frames, sizeof(out->type_frames));
	memcpy(out->type_bytes, n->st_type_bytes, sizeof(out->type_bytes));
	out->max_conns = n->cfg.max_conns;
}

/* ---- faults and the true map ---------------------------------------------- */

uint32_t mm_simnet_host(const mm_net_t *n) { return n->host; }

void
mm_simnet_host_down(mm_net_t *n, int crash)
{
	n->down = true;
	if (!crash)
		return;
	for (struct mm_conn *c = n->conns; c != NULL; c = c->nnext)
		if (c->peer != NULL && c->peer->state != ST_CLOSED)
			(void)wev_post(c->peer, WEV_RESET, 0, c->lat_ms);
}

void mm_simnet_set_zone(mm_net_t *n, uint32_t zone) { n->zone = zone; }
void mm_simnet_partition(int on) { W.partitioned = on != 0; }

void
mm_simnet_set_reach(int (*reach)(uint32_t a, uint32_t b, void *arg), void *arg)
{
	W.reach = reach;
	W.reach_arg = arg;
}

unsigned
mm_simnet_links(const mm_net_t *n, uint32_t *out, unsigned cap)
{
	unsigned k = 0;
	for (struct mm_conn *c = n->conns; c != NULL; c = c->nnext)
		if (c->state == ST_READY && c->peer != NULL &&
		    c->peer->state == ST_READY && k < cap)
			out[k++] = c->peer_host;
	return k;
}

void
mm_simnet_stats(mm_simnet_stats_t *out)
{
	*out = W.st;
}
