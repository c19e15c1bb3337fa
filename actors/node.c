#include "node.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bans.h"
#include "log.h"

enum { N_PEER_UP = MM_MSG_USER + 1, N_PEER_DOWN, N_EVENT, N_BOOT_ADD };

#define MAX_PEERS 256
#define MAX_BOOT 64
#define REFRESH_TIMER 0 /* timer args: 0 refresh, 1 + i bootstrap i */

struct peer_msg {
	mm_actor_t *conn;   /* holds a reference */
	uint8_t id[32];
	int inbound;
	uint8_t ip[16];
	uint64_t tag;       /* 1 + bootstrap index, or 0 */
	mm_w_event_t ev;    /* N_EVENT */
};

enum { B_WAIT, B_DIALLING, B_UP };

struct boot {
	struct sockaddr_storage sa;
	socklen_t len;
	int state;
	int id_known;
	uint8_t id[32];
	uint32_t backoff_ms;
	mm_timer_t timer;
};

struct boot_add {
	struct sockaddr_storage sa;
	socklen_t len;
};

struct peer {
	mm_actor_t *conn;   /* NULL: free slot */
	uint8_t id[32];
	int inbound;
	uint64_t since_ms;
	uint32_t score;     /* misbehaviour points */
	uint8_t ip[16];
};

struct mm_node {
	mm_rt_t *rt;
	mm_node_config_t cfg;
	mm_identity_t id;
	mm_net_t *net;
	mm_ps_t *ps;
	mm_dedup_t *dedup;
	mm_gossip_t *gossip;
	mm_actor_t *actor;
	uint64_t start_ms;
	/* node actor only */
	struct peer peers[MAX_PEERS];
	int peers_hi;       /* slots [peers_hi, MAX_PEERS) have never been used:
	                     * loops over peers stop there (about the degree,
	                     * not 256, on every event) */
	mm_timer_t refresh;
	struct boot boot[MAX_BOOT];
	unsigned nboot;
	/* read by others */
	/* bans: written by the node actor, read by listeners (accept filter) */
	mm_bans_t *bans;
	pthread_mutex_t bans_mu;
	/* join sync log: a ring of the last sync_events frames (node actor) */
	mm_buf_t **log;
	uint32_t log_cap, log_next, log_n;
	atomic_uint npeers;
	_Atomic uint64_t st_up, st_down, st_dup, st_local, st_in, st_fwd, st_bad,
	    st_dropped, st_refresh, st_dials, st_syncs, st_sync_ev, st_full, st_bans, st_banned;
};

static uint64_t
unix_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint32_t
store_now(const mm_node_t *n)
{
	return (uint32_t)((mm_now_ms() - n->start_ms) / 1000u) + 1;
}

static void
bump(_Atomic uint64_t *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/* ---- callbacks: run in the connection actors -------------------------------- */

static void
tell_node(mm_node_t *n, uint32_t type, mm_conn_t *c, const uint8_t *id,
    const mm_w_event_t *ev)
{
	struct peer_msg *pm = calloc(1, sizeof(*pm));
	if (pm == NULL)
		return;
	pm->conn = mm_conn_actor(c);
	mm_actor_ref(pm->conn);
	if (id != NULL)
		memcpy(pm->id, id, 32);
	pm->inbound = mm_conn_inbound(c);
	memcpy(pm->ip, mm_conn_ip(c), 16);
	pm->tag = mm_conn_tag(c);
	if (ev != NULL)
		pm->ev = *ev;
	mm_msg_t m = {.type = type, .ptr = pm};
	/* Up and down must arrive: back-pressure would need the connection to
	 * wait, which it cannot; the node's mailbox is sized for every
	 * connection's up and down at once. Events may be dropped. */
	if (mm_send(n->actor, &m) != 0) {
		mm_actor_unref(pm->conn);
		free(pm);
		bump(&n->st_dropped);
	}
}

static void
cb_ready(mm_conn_t *c, const uint8_t id[32], void *arg)
{
	tell_node(arg, N_PEER_UP, c, id, NULL);
}

static void
cb_message(mm_conn_t *c, const mm_wire_msg_t *m, void *arg)
{
	if (m->type == MM_W_EVENT)
		tell_node(arg, N_EVENT, c, mm_conn_peer_id(c), &m->u.event);
}

static void
cb_close(mm_conn_t *c, int reason, const char *why, void *arg)
{
	(void)reason;
	(void)why;
	/* Also for connections that never became peers: the node matches the
	 * actor against its table and ignores the unknown ones. */
	tell_node(arg, N_PEER_DOWN, c, NULL, NULL);
}

/* ---- bans --------------------------------------------------------------------- */

static uint64_t unix_ms(void);

static int
cb_accept_filter(const uint8_t ip[16], void *arg)
{
	mm_node_t *n = arg;
	pthread_mutex_lock(&n->bans_mu);
	int banned = mm_bans_match_addr(n->bans, ip, unix_ms() / 1000) != NULL;
	pthread_mutex_unlock(&n->bans_mu);
	return banned;
}

int
mm_node_banned_id(mm_node_t *n, const uint8_t id[32])
{
	pthread_mutex_lock(&n->bans_mu);
	int banned = mm_bans_match_id(n->bans, id, unix_ms() / 1000) != NULL;
	pthread_mutex_unlock(&n->bans_mu);
	return banned;
}

static int
is_loopback(const uint8_t ip[16])
{
	static const uint8_t v4[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	static const uint8_t v6lo[16] = {[15] = 1};
	return (memcmp(ip, v4, 12) == 0 && ip[12] == 127) || memcmp(ip, v6lo, 16) == 0;
}

static void
ban_peer(mm_node_t *n, const uint8_t id[32], const uint8_t ip[16], const char *why)
{
	uint64_t now = unix_ms() / 1000;
	mm_ban_t b = {.kind = MM_BAN_ID, .created = now, .expires = now + n->cfg.ban_s};
	memcpy(b.key, id, 32);
	snprintf(b.reason, sizeof(b.reason), "%s", why);
	pthread_mutex_lock(&n->bans_mu);
	mm_bans_expire(n->bans, now);
	int rc = mm_bans_add(n->bans, &b);
	if (n->cfg.ban_addresses && !is_loopback(ip)) {
		mm_ban_t a = b;
		a.kind = MM_BAN_ADDR;
		a.plen = 128;
		memset(a.key, 0, sizeof(a.key));
		memcpy(a.key, ip, 16);
		if (rc == 0)
			rc = mm_bans_add(n->bans, &a);
	}
	pthread_mutex_unlock(&n->bans_mu);
	char hex[17];
	for (int i = 0; i < 8; i++)
		snprintf(hex + 2 * i, 3, "%02x", id[i]);
	if (rc != 0)
		mm_log(MM_LOG_WARN, "node: cannot ban %s (%s): ban list full", hex, why);
	else
		mm_log(MM_LOG_WARN, "node: banned %s for %us: %s", hex, n->cfg.ban_s, why);
	bump(&n->st_bans);
}

/* ---- the node actor --------------------------------------------------------- */

/* Keep one more reference to an accepted event's frame for the join sync. */
static void
log_frame(mm_node_t *n, mm_buf_t *b)
{
	if (n->log_cap == 0)
		return;
	mm_buf_ref(b);
	mm_buf_release(n->log[n->log_next]); /* the oldest, NULL until full */
	n->log[n->log_next] = b;
	n->log_next = (n->log_next + 1) % n->log_cap;
	if (n->log_n < n->log_cap)
		n->log_n++;
}

static mm_buf_t *
encode_buf(const mm_wire_msg_t *m)
{
	uint8_t tmp[2048]; /* the largest event is 1,260 bytes (test_wire) */
	int len = mm_wire_encode(m, tmp, sizeof(tmp));
	if (len < 0)
		return NULL;
	mm_buf_t *b = mm_buf_alloc((uint32_t)len);
	if (b == NULL)
		return NULL;
	memcpy(b->data, tmp, (size_t)len);
	b->len = (uint32_t)len;
	return b;
}

/* Encode once, send the same bytes to every peer but `except`, and keep
 * them in the join sync log. */
static void
broadcast(mm_node_t *n, const mm_wire_msg_t *m, mm_actor_t *except)
{
	mm_buf_t *b = encode_buf(m);
	if (b == NULL)
		return;
	for (int i = 0; i < n->peers_hi; i++) {
		struct peer *p = &n->peers[i];
		if (p->conn == NULL || p->conn == except)
			continue;
		mm_buf_ref(b);
		mm_msg_t s = {.type = MM_CONN_SEND_BUF | MM_MSG_F_BUF, .ptr = b};
		if (mm_send_or_drop(p->conn, &s) != 0)
			bump(&n->st_dropped);
	}
	log_frame(n, b);
	mm_buf_release(b);
}

/* Replay the log to a new peer, oldest first (per origin, the order of the
 * sequence numbers, so nothing arrives stale), packed into buffers of up to
 * SYNC_CHUNK bytes: a few mailbox slots, well under the write cap. */
#define SYNC_CHUNK 32768
static void
sync_peer(mm_node_t *n, mm_actor_t *conn)
{
	if (n->log_n == 0)
		return;
	uint32_t first = (n->log_next + n->log_cap - n->log_n) % n->log_cap;
	mm_buf_t *chunk = NULL;
	uint64_t sent = 0;
	for (uint32_t k = 0; k <= n->log_n; k++) {
		mm_buf_t *f = k < n->log_n ? n->log[(first + k) % n->log_cap] : NULL;
		if (chunk != NULL && (f == NULL || chunk->len + f->len > chunk->cap)) {
			mm_msg_t s = {.type = MM_CONN_SEND_BUF | MM_MSG_F_BUF, .ptr = chunk};
			if (mm_send_or_drop(conn, &s) != 0)
				bump(&n->st_dropped);
			chunk = NULL;
		}
		if (f == NULL)
			break;
		if (chunk == NULL &&
		    (chunk = mm_buf_alloc(f->len > SYNC_CHUNK ? f->len : SYNC_CHUNK)) == NULL)
			break;
		memcpy(chunk->data + chunk->len, f->data, f->len);
		chunk->len += f->len;
		sent++;
	}
	bump(&n->st_syncs);
	atomic_fetch_add_explicit(&n->st_sync_ev, sent, memory_order_relaxed);
}

static void
local_event(mm_node_t *n, int kind, const uint8_t *peer, int dir)
{
	mm_wire_msg_t m = {.type = MM_W_EVENT};
	if (mm_gossip_local(n->gossip, kind, peer, dir, unix_ms(), store_now(n),
	        &m.u.event) != 0)
		return;
	bump(&n->st_local);
	mm_log(MM_LOG_DEBUG, "node: own event %s %02x%02x%02x dir %d seq %u list %u",
	    kind == MM_PS_CONNECT ? "connect" : "disconnect", peer[0], peer[1],
	    peer[2], dir, m.u.event.seq, m.u.event.nnb);
	broadcast(n, &m, NULL);
}

static struct peer *
find_peer(mm_node_t *n, const uint8_t *id)
{
	for (int i = 0; i < n->peers_hi; i++)
		if (n->peers[i].conn != NULL && memcmp(n->peers[i].id, id, 32) == 0)
			return &n->peers[i];
	return NULL;
}

static void
close_conn(mm_actor_t *conn)
{
	mm_msg_t m = {.type = MM_CONN_CLOSE, .aux = MM_CLOSE_NORMAL};
	(void)mm_send(conn, &m);
}

static void
boot_dial(mm_node_t *n, unsigned i)
{
	struct boot *b = &n->boot[i];
	b->state = B_DIALLING;
	bump(&n->st_dials);
	if (mm_net_dial_tagged(n->net, (struct sockaddr *)&b->sa, b->len, NULL,
	        (uint64_t)i + 1) != 0) {
		b->state = B_WAIT;
		mm_timer_arm(&b->timer, b->backoff_ms);
	}
}

/* The address failed or its peer is gone: dial again after the backoff,
 * with jitter so that nodes that lost the same peer do not come back in
 * step, and double the backoff up to its cap. */
static void
boot_later(mm_node_t *n, struct boot *b)
{
	b->state = B_WAIT;
	uint64_t j = b->backoff_ms / 2;
	uint64_t d = b->backoff_ms - j / 2 + (j ? mm_random() % j : 0);
	mm_timer_arm(&b->timer, d);
	b->backoff_ms = b->backoff_ms * 2 > n->cfg.redial_max_ms ?
	    n->cfg.redial_max_ms : b->backoff_ms * 2;
}

/* A peer is gone with no connection left: redial it if it is a bootstrap. */
static void
boot_peer_gone(mm_node_t *n, const uint8_t *id)
{
	for (unsigned i = 0; i < n->nboot; i++) {
		struct boot *b = &n->boot[i];
		if (b->state == B_UP && b->id_known && memcmp(b->id, id, 32) == 0)
			boot_later(n, b);
	}
}

static struct peer *find_peer(mm_node_t *n, const uint8_t *id);

static void
boot_conn_event(mm_node_t *n, struct peer_msg *pm, int up)
{
	if (pm->tag == 0 || pm->tag > n->nboot)
		return;
	struct boot *b = &n->boot[pm->tag - 1];
	if (up) {
		b->state = B_UP;
		b->id_known = 1;
		memcpy(b->id, pm->id, 32);
		b->backoff_ms = n->cfg.redial_min_ms;
		return;
	}
	/* Our dial to it ended. If the peer is still connected another way
	 * (the other side of a simultaneous dial won), nothing to do: no
	 * storm of redials against a connected peer. */
	if (b->state == B_WAIT)
		return;
	if (b->id_known && find_peer(n, b->id) != NULL) {
		b->state = B_UP;
		return;
	}
	boot_later(n, b);
}

static void
peer_up(mm_node_t *n, struct peer_msg *pm)
{
	boot_conn_event(n, pm, 1);
	if (mm_node_banned_id(n, pm->id)) {
		bump(&n->st_banned);
		mm_msg_t m = {.type = MM_CONN_CLOSE, .aux = MM_WERR_BANNED};
		(void)mm_send(pm->conn, &m);
		mm_actor_unref(pm->conn);
		return;
	}
	struct peer *old = find_peer(n, pm->id);
	if (old != NULL) {
		/* Two connections to one peer: keep the one dialled by the lower
		 * id. Ours is outbound when we dialled. */
		int we_lower = memcmp(n->id.id, pm->id, 32) < 0;
		int keep_new = we_lower ? !pm->inbound : pm->inbound;
		bump(&n->st_dup);
		if (!keep_new) {
			close_conn(pm->conn);
			mm_actor_unref(pm->conn);
			return;
		}
		close_conn(old->conn);
		mm_actor_unref(old->conn);
		old->conn = pm->conn;
		sync_peer(n, old->conn); /* what was in flight on the old one */
		/* Same edge; if the kept connection runs the other way, say so:
		 * our earlier claim had the loser's direction, and with the
		 * other end's claim it would read as a conflict. */
		if (old->inbound != pm->inbound) {
			old->inbound = pm->inbound;
			local_event(n, MM_PS_CONNECT, pm->id,
			    pm->inbound ? MM_PS_IN : MM_PS_OUT);
		}
		return;
	}
	/* A link over the map's max_neighbours_temp would be refused by every
	 * map, ours included, as a lie: refuse the link instead. */
	if (atomic_load(&n->npeers) >= n->cfg.map.max_neighbours_temp) {
		bump(&n->st_full);
		mm_log(MM_LOG_INFO, "node: peer refused: %u links already (max %u)",
		    atomic_load(&n->npeers), n->cfg.map.max_neighbours_temp);
		close_conn(pm->conn);
		mm_actor_unref(pm->conn);
		return;
	}
	struct peer *p = NULL;
	for (int i = 0; i < MAX_PEERS && p == NULL; i++)
		if (n->peers[i].conn == NULL)
			p = &n->peers[i];
	if (p == NULL) {
		close_conn(pm->conn);
		mm_actor_unref(pm->conn);
		return;
	}
	if (p - n->peers >= n->peers_hi)
		n->peers_hi = (int)(p - n->peers) + 1;
	p->conn = pm->conn;
	memcpy(p->id, pm->id, 32);
	p->inbound = pm->inbound;
	p->since_ms = mm_now_ms();
	p->score = 0;
	memcpy(p->ip, pm->ip, 16);
	atomic_fetch_add(&n->npeers, 1);
	bump(&n->st_up);
	/* The log first, then our new event: the peer must get our events in
	 * sequence order, or the older ones would arrive stale. */
	sync_peer(n, p->conn);
	local_event(n, MM_PS_CONNECT, pm->id, pm->inbound ? MM_PS_IN : MM_PS_OUT);
}

static void
peer_down(mm_node_t *n, struct peer_msg *pm)
{
	for (int i = 0; i < n->peers_hi; i++) {
		struct peer *p = &n->peers[i];
		if (p->conn != pm->conn)
			continue;
		mm_actor_unref(p->conn);
		p->conn = NULL;
		atomic_fetch_sub(&n->npeers, 1);
		bump(&n->st_down);
		local_event(n, MM_PS_DISCONNECT, p->id, p->inbound ? MM_PS_IN : MM_PS_OUT);
		boot_peer_gone(n, p->id);
		break;
	}
	boot_conn_event(n, pm, 0);
	mm_actor_unref(pm->conn); /* the message's reference */
}

/* Points for a refused event (see node.h), and the error code to close
 * with when they reach the ban score. */
static void
misbehaved(mm_node_t *n, struct peer *p, int verdict)
{
	uint32_t pts = 10;
	int code = MM_WERR_BAD_PARAMS;
	if (verdict == MM_G_BAD_SIG) {
		pts = 100;
		code = MM_WERR_BAD_SIG;
	} else if (verdict == MM_G_BAD_POW) {
		pts = 100;
		code = MM_WERR_BAD_POW;
	}
	p->score += pts;
	if (p->score < n->cfg.ban_score)
		return;
	ban_peer(n, p->id, p->ip, mm_gossip_verdict_name(verdict));
	mm_msg_t m = {.type = MM_CONN_CLOSE, .aux = (uint32_t)code};
	(void)mm_send(p->conn, &m);
	p->score = 0; /* its close will come as a peer down */
}

static void
event_in(mm_node_t *n, struct peer_msg *pm)
{
	/* Only from peers in the table: a connection refused at ready (banned,
	 * over the degree, the losing duplicate) may still have events in
	 * flight; they are dropped unread. */
	struct peer *from = NULL;
	for (int i = 0; i < n->peers_hi && from == NULL; i++)
		if (n->peers[i].conn == pm->conn)
			from = &n->peers[i];
	if (from == NULL) {
		mm_actor_unref(pm->conn);
		return;
	}
	mm_wire_msg_t fwd = {.type = MM_W_EVENT};
	bump(&n->st_in);
	int v = mm_gossip_receive(n->gossip, &pm->ev, unix_ms(), store_now(n),
	    &fwd.u.event);
	if (MM_LOG_DEBUG <= mm__log_level) {
		uint8_t o[32];
		mm_id_of(pm->ev.pub, o);
		mm_log(MM_LOG_DEBUG, "node: event %02x%02x%02x %s %02x%02x%02x dir %u "
		    "seq %u list %u: %s", o[0], o[1], o[2],
		    pm->ev.kind == MM_PS_CONNECT ? "connect" : "disconnect",
		    pm->ev.peer[0], pm->ev.peer[1], pm->ev.peer[2], pm->ev.dir,
		    pm->ev.seq, pm->ev.has_nb ? pm->ev.nnb : 0, mm_gossip_verdict_name(v));
	}
	if (v == MM_G_FORWARD) {
		bump(&n->st_fwd);
		broadcast(n, &fwd, pm->conn);
	} else if (v == MM_G_DONE) {
		/* Applied, hops exhausted: not forwarded, but a newcomer still
		 * needs it; logged with ttl 0 so that it goes no further. */
		mm_wire_msg_t last = {.type = MM_W_EVENT};
		last.u.event = pm->ev;
		last.u.event.ttl = 0;
		mm_buf_t *b = encode_buf(&last);
		if (b != NULL) {
			log_frame(n, b);
			mm_buf_release(b);
		}
	} else if (v < 0) {
		bump(&n->st_bad);
		mm_log(MM_LOG_WARN, "node: event refused: %s", mm_gossip_verdict_name(v));
		misbehaved(n, from, v);
	}
	mm_actor_unref(pm->conn);
}

static void
refresh_links(mm_node_t *n)
{
	for (int i = 0; i < n->peers_hi; i++)
		if (n->peers[i].conn != NULL)
			local_event(n, MM_PS_CONNECT, n->peers[i].id,
			    n->peers[i].inbound ? MM_PS_IN : MM_PS_OUT);
	bump(&n->st_refresh);
	mm_timer_arm(&n->refresh, n->cfg.refresh_ms);
}

static void
node_fn(mm_actor_t *self, const mm_msg_t *m)
{
	mm_node_t *n = mm_actor_state(self);
	struct peer_msg *pm = m->ptr;
	switch (m->type) {
	case MM_MSG_START:
		mm_timer_init(&n->refresh, self, REFRESH_TIMER);
		mm_timer_arm(&n->refresh, n->cfg.refresh_ms);
		return;
	case MM_MSG_TIMER:
		if (m->arg == REFRESH_TIMER)
			refresh_links(n);
		else if (m->arg <= n->nboot)
			boot_dial(n, (unsigned)m->arg - 1);
		return;
	case N_BOOT_ADD: {
		struct boot_add *ba = m->ptr;
		if (n->nboot < MAX_BOOT) {
			unsigned i = n->nboot++;
			struct boot *b = &n->boot[i];
			b->sa = ba->sa;
			b->len = ba->len;
			b->backoff_ms = n->cfg.redial_min_ms;
			mm_timer_init(&b->timer, self, (uint64_t)i + 1);
			boot_dial(n, i);
		}
		free(ba);
		return;
	}
	case N_PEER_UP: peer_up(n, pm); break;
	case N_PEER_DOWN: peer_down(n, pm); break;
	case N_EVENT: event_in(n, pm); break;
	case MM_MSG_STOP:
		mm_timer_cancel(&n->refresh);
		for (unsigned i = 0; i < n->nboot; i++)
			mm_timer_cancel(&n->boot[i].timer);
		for (int i = 0; i < n->peers_hi; i++)
			if (n->peers[i].conn != NULL) {
				mm_actor_unref(n->peers[i].conn);
				n->peers[i].conn = NULL;
			}
		return;
	default:
		return;
	}
	free(pm);
}

static void
node_drop(const mm_msg_t *m)
{
	if (m->type == N_BOOT_ADD) {
		free(m->ptr);
		return;
	}
	struct peer_msg *pm = m->ptr;
	if (pm != NULL) {
		mm_actor_unref(pm->conn);
		free(pm);
	}
}

/* ---- public ------------------------------------------------------------------ */

void
mm_node_config_default(mm_node_config_t *c)
{
	memset(c, 0, sizeof(*c));
	mm_net_config_default(&c->net);
	mm_gossip_config_default(&c->gossip);
	mm_ps_config_default(&c->map);
	c->refresh_ms = 600000;
	c->redial_min_ms = 500;
	c->redial_max_ms = 60000;
	c->sync_events = 2048;
	c->ban_score = 100;
	c->ban_s = 86400;
	c->max_bans = 4096;
	c->ban_addresses = 1;
}

int
mm_node_create(mm_rt_t *rt, const mm_node_config_t *cfg, mm_node_t **out,
    char *err, size_t errlen)
{
	mm_node_t *n = calloc(1, sizeof(*n));
	if (n == NULL)
		return -ENOMEM;
	n->rt = rt;
	n->cfg = *cfg;
	n->start_ms = mm_now_ms();
	int rc = -EINVAL;
	if (cfg->net.id == NULL || cfg->refresh_ms == 0 || cfg->redial_min_ms == 0 ||
	    cfg->redial_max_ms < cfg->redial_min_ms) {
		snprintf(err, errlen, "node: an identity and a refresh interval are "
		    "required");
		goto fail;
	}
	n->id = *cfg->net.id;
	if (cfg->sync_events > 1u << 20) {
		snprintf(err, errlen, "node: sync_events above 1048576");
		goto fail;
	}
	if (cfg->ban_score == 0 || cfg->max_bans == 0) {
		snprintf(err, errlen, "node: ban_score and max_bans must be above 0");
		goto fail;
	}
	pthread_mutex_init(&n->bans_mu, NULL);
	if ((n->bans = mm_bans_new(cfg->max_bans)) == NULL) {
		rc = -ENOMEM;
		snprintf(err, errlen, "node: no memory for the ban list");
		goto fail;
	}
	n->log_cap = cfg->sync_events;
	if (n->log_cap != 0 && (n->log = calloc(n->log_cap, sizeof(*n->log))) == NULL) {
		rc = -ENOMEM;
		snprintf(err, errlen, "node: no memory for the sync log");
		goto fail;
	}
	mm_dedup_config_t dc;
	mm_dedup_config_default(&dc);
	if ((rc = mm_ps_create(&cfg->map, &n->ps)) != 0 ||
	    (rc = mm_dedup_create(&dc, &n->dedup)) != 0 ||
	    (rc = mm_gossip_create(&cfg->gossip, cfg->net.id, n->ps, n->dedup,
	        &n->gossip)) != 0) {
		snprintf(err, errlen, "node: cannot create the map (%d)", rc);
		goto fail;
	}
	mm_net_config_t nc = cfg->net;
	nc.on_ready = cb_ready;
	nc.on_message = cb_message;
	nc.on_close = cb_close;
	nc.accept_filter = cb_accept_filter;
	nc.arg = n;
	if ((rc = mm_net_create(rt, &nc, &n->net, err, errlen)) != 0)
		goto fail;
	/* Mailbox: every connection's up and down at once, plus events. */
	mm_actor_opts_t o = {.worker = 0, .mailbox_cap = 4 * MAX_PEERS + 1024,
	    .drop = node_drop, .name = "node"};
	n->actor = mm_actor_spawn(rt, node_fn, n, &o);
	if (n->actor == NULL) {
		rc = -errno;
		goto fail;
	}
	*out = n;
	return 0;
fail:
	mm_node_destroy(n);
	return rc;
}

void
mm_node_destroy(mm_node_t *n)
{
	if (n == NULL)
		return;
	if (n->actor != NULL)
		mm_actor_unref(n->actor);
	mm_net_destroy(n->net);
	mm_gossip_destroy(n->gossip);
	mm_dedup_destroy(n->dedup);
	mm_ps_destroy(n->ps);
	for (uint32_t i = 0; i < n->log_cap && n->log != NULL; i++)
		mm_buf_release(n->log[i]);
	free(n->log);
	if (n->bans != NULL) {
		mm_bans_free(n->bans);
		pthread_mutex_destroy(&n->bans_mu);
	}
	free(n);
}

int
mm_node_listen(mm_node_t *n, const char *host, uint16_t port, uint16_t *bound)
{
	return mm_net_listen(n->net, host, port, bound);
}

int
mm_node_dial(mm_node_t *n, const struct sockaddr *sa, socklen_t len)
{
	return mm_net_dial(n->net, sa, len, NULL);
}

int
mm_node_bootstrap(mm_node_t *n, const struct sockaddr *sa, socklen_t len)
{
	if (len > sizeof(struct sockaddr_storage))
		return -EINVAL;
	struct boot_add *ba = calloc(1, sizeof(*ba));
	if (ba == NULL)
		return -ENOMEM;
	memcpy(&ba->sa, sa, len);
	ba->len = len;
	mm_msg_t m = {.type = N_BOOT_ADD, .ptr = ba};
	int rc = mm_send(n->actor, &m);
	if (rc != 0)
		free(ba);
	return rc;
}

const mm_ps_t *
mm_node_map(const mm_node_t *n)
{
	return n->ps;
}

unsigned
mm_node_peers(const mm_node_t *n)
{
	return atomic_load(&((mm_node_t *)n)->npeers);
}

void
mm_node_stats(const mm_node_t *n, mm_node_stats_t *o)
{
	mm_node_t *w = (mm_node_t *)n;
#define LD(x) atomic_load_explicit(&w->x, memory_order_relaxed)
	o->peers_up = LD(st_up);
	o->peers_down = LD(st_down);
	o->duplicates_closed = LD(st_dup);
	o->events_local = LD(st_local);
	o->refreshes = LD(st_refresh);
	o->dials = LD(st_dials);
	o->events_in = LD(st_in);
	o->events_forwarded = LD(st_fwd);
	o->events_bad = LD(st_bad);
	o->frames_dropped = LD(st_dropped);
	o->syncs = LD(st_syncs);
	o->refused_full = LD(st_full);
	o->bans = LD(st_bans);
	o->refused_banned = LD(st_banned);
	o->sync_events_sent = LD(st_sync_ev);
#undef LD
}
