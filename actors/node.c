#include "node.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bans.h"
#include "direct.h"
#include "frame.h"
#include "log.h"
#include "psquery.h"
#include "selector.h"
#include "siphash.h"
#include "snapshot.h"

enum { N_PEER_UP = MM_MSG_USER + 1, N_PEER_DOWN, N_EVENT, N_BOOT_ADD,
	N_GET_PEERS, N_PEERS, N_FULL, N_DIGEST, N_WANT, N_IHAVE, N_IWANT, N_DIRECT, N_DFAIL, N_SEND,
	N_BCAST, N_SUBS, N_PUBLISH, N_SUBSCRIBE, N_REQUEST, N_RTT, N_DRAINED, N_DUMP, N_ENFORCE,
	/* operator commands */
	N_BOOT_DEL, N_DISCONNECT, N_GOODBYE, N_RECONF,
	/* gossip shard -> node */
	N_FWD, N_LOGONLY, N_VERDICT,
	/* node -> gossip shard */
	G_EVENT, G_LOCAL, G_SEAL, G_FORGET };
#define MAX_SHARDS 8

#define MAX_PEERS 256
#define MAX_BOOT 64
/* timer args: 0 refresh, 1 + i bootstrap i, then these */
#define REFRESH_TIMER 0
#define SELECT_TIMER 1000
#define ANALYSE_TIMER 1002
#define ANNOUNCE_TIMER 1007
#define PX_TIMER 1003
#define SNAP_TIMER 1004
#define AE_TIMER 1005
#define REQ_TIMER 1006
#define IHAVE_TIMER 1008
/* (each a distinct value: node_fn tells its timers apart by it) */
/* dial tags: 1 + i for bootstrap i; ADDR_TAG | gen << 16 | slot for the
 * address book's slot (gen tells a late answer from a reused slot) */
#define ADDR_TAG (1ull << 32)
#define PX_ANSWER_MAX 16 /* entries in our peers answers (seed 004: never all) */
#define DIALS_PER_ROUND 3
/* Dials into another component: after ACROSS_FAILS failures in a row, a
 * pause (book_dial_done) */
#define ACROSS_FAILS 3
#define ACROSS_PAUSE_MS 5000ull
#define ACROSS_PAUSE_MAX_MS 60000ull
/* An address known this long whose peer has no live record in the map
 * counts as thin (selector.h), unless we once saw that peer well linked
 * (known_long): an honest peer is in every map within seconds of its
 * first link. */
#define THIN_GRACE_MS 60000

struct px_ent {
	uint8_t id[32];
	uint8_t ip[16];
	uint16_t port;
};

/* A routed message (direct, broadcast, failure notice) on its way from a
 * connection to the node actor: only its own member of the wire union
 * (a whole mm_wire_msg_t is 3 KB, the largest member 300 bytes: thousands
 * of these can wait in the node's mailbox under a flood), its bytes after
 * it. */
struct routed {
	unsigned type;
	union {
		mm_w_direct_t direct;
		mm_w_bcast_t bcast;
		mm_w_dfail_t dfail;
	} u;
};

/* The wire message of a routed copy, for encoding (the bytes stay in r). */
static void
routed_msg(const struct routed *r, mm_wire_msg_t *out)
{
	out->type = r->type;
	out->req = 0;
	if (r->type == MM_W_DIRECT)
		out->u.direct = r->u.direct;
	else if (r->type == MM_W_BCAST)
		out->u.bcast = r->u.bcast;
	else
		out->u.dfail = r->u.dfail;
}

struct peer_msg {
	mm_actor_t *conn;   /* holds a reference */
	uint32_t held;      /* bytes charged to conn (post_held) */
	uint8_t id[32];
	int inbound;
	uint8_t ip[16];
	uint64_t tag;       /* 1 + bootstrap index, or 0 */
	uint16_t port;      /* N_PEER_UP: the port its hello advertised */
	uint32_t req;       /* N_GET_PEERS: request id, limit */
	uint16_t limit;
	struct px_ent *px;  /* N_PEERS: entries with an address (malloc'd) */
	unsigned npx;
	mm_buf_t *buf;      /* N_FWD, N_LOGONLY: the encoded event (a reference) */
	uint8_t origin[32]; /* and its origin and seq (the log's index) */
	uint32_t oseq;
	uint8_t *blob;      /* N_DIGEST, N_WANT, N_IHAVE, N_IWANT: the records
	                     * (malloc'd) */
	uint32_t blen;
	struct routed *wm;  /* N_DIRECT, N_DFAIL, N_BCAST: a copy, bytes after it */
	int verdict;        /* N_VERDICT; G_LOCAL: kind (inbound: dir) */
	uint8_t defer;      /* G_LOCAL: apply, sign later (G_SEAL) */
	uint8_t sealed;     /* N_FWD: the answer to G_SEAL (buf NULL: none) */
	unsigned shard;     /* N_EVENT: the gossip shard of its origin */
	int sig;            /* N_EVENT: its signature verified on the
	                     * link's worker, 1 good, 0 bad; -1 not yet */
	/* Last: messages from connections that carry no event are allocated
	 * without it (PM_SHORT): an event is 1.2 KB, and thousands of routed
	 * messages can wait in the node's mailbox under a flood. */
	mm_w_event_t ev;    /* N_EVENT, N_FWD, N_LOGONLY */
};
#define PM_SHORT offsetof(struct peer_msg, ev)

enum { B_WAIT, B_DIALLING, B_UP, B_REMOVED /* by a reload: slot kept */ };

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
	uint16_t misb[MM_NODE_CAUSES]; /* misbehaviour events by cause */
	uint8_t ip[16];
	uint16_t port;
	/* token buckets: tokens in millionths, refilled from *_ms */
	uint64_t ev_tok, ev_ms, rq_tok, rq_ms;
	uint64_t dm_tok, dm_ms; /* direct messages and broadcasts */
	uint32_t rtt_us;    /* last round trip measured (0: none yet) */
	/* the topics it wants from us (SipHash of each; all: "*") */
	uint8_t sub_all, nsub;
	uint64_t *sub;      /* nsub of them; NULL until it names a topic (512
	                     * bytes a slot inline, 128 KB a node, for a
	                     * message most peers never send) */
	uint64_t asked_ms;  /* our last get_peers or digest to it: never more
	                     * often than its bucket refills (req_refill_ms) */
	uint64_t digest_ms; /* our last digest to it: its want is answered
	                     * within 30 s, once */
	/* lazy push: the (origin, seq) entries of an ihave waiting for the
	 * flush (IHAVE_MAX of 36 bytes, allocated at the first; freed when
	 * the link goes), and the bucket for the events its iwants ask */
	uint8_t *ih;
	uint16_t nih;
	uint64_t sv_tok, sv_ms;
	/* what we push to it: shaped under the event budget it applies to us
	 * (out_budget) */
	uint64_t out_tok, out_ms;
	/* events it asked for (iwant, want) beyond what one answer queues
	 * (a quarter of the write cap, serve_ids): their origins, served once the connection has
	 * written out what went before (MM_CONN_DRAIN, N_DRAINED) */
	uint8_t *owed;
	uint32_t nowed;
	uint8_t drain_out;  /* an MM_CONN_DRAIN is on its way */
	/* (origin, seq) entries of its ihaves that we lacked but did not ask
	 * for yet (our budget for the link had no room: ask_missing); asked
	 * at the ihave timer as the room comes back. At most TOASK_MAX, grown
	 * by doubling: 36 KB at most a link, whatever a peer announces */
	uint8_t *toask;
	uint32_t ntoask, toask_cap;
	/* banned: its close is on the way; what it sent meanwhile is dropped
	 * unread, and counts no more (one ban, not one per 100 points of its
	 * backlog) */
	uint8_t doomed;
};
/* entries per ihave frame: 2.3 KB a link at most while it waits */
#define IHAVE_MAX 64
#define TOASK_MAX MM_WIRE_DIGEST_MAX /* one ihave frame's entries */

/* Address book entry. verified: we completed a handshake with this id at
 * this address (else it came from someone's peers list). */
struct addr {
	uint8_t used, verified, dialling, fails;
	uint8_t across;     /* the dial in flight goes into another component */
	uint16_t port, gen;
	uint8_t id[32];
	uint8_t ip[16];
	uint64_t next_ms;   /* not dialled before */
	uint64_t seen_ms;   /* last heard of */
	uint64_t barred_ms; /* dropped by the selector: its inbound links
	                     * are refused before this */
	uint64_t first_ms;  /* when the entry was made */
	uint8_t full_seen;  /* seen in our map with degree/2 confirmed links or
	                     * more: a node that comes back (a restart, churn)
	                     * is not taken for a lone attacker (known_long) */
};

/* A gossip shard (seed §3.2): the events of the origins whose PeerStore
 * shard it owns (mm_ps_shard_of), with its own dedup ring and gossip
 * engine; the costly verify runs here, spread over the workers. One
 * origin's events always reach the same shard, in order. */
struct gshard {
	mm_node_t *n;
	unsigned idx;
	mm_actor_t *actor;
	mm_gossip_t *g;
	mm_dedup_t *d;
	mm_timer_t gc;
	uint64_t verified_seen, stale_seen; /* the engine's counts, published */
};

struct mm_node {
	mm_rt_t *rt;
	mm_node_config_t cfg;
	mm_identity_t id;
	mm_net_t *net;
	mm_ps_t *ps;
	struct gshard shard[MAX_SHARDS];
	unsigned nshards, own_shard;
	mm_actor_t *actor;
	uint64_t start_ms;
	/* node actor only */
	struct peer peers[MAX_PEERS];
	int peers_hi;       /* slots [peers_hi, MAX_PEERS) have never been used:
	                     * loops over peers stop there (about the degree,
	                     * not 256, on every event) */
	mm_timer_t refresh;
	/* Our own events, throttled (cfg.announce_ms): the first after a
	 * quiet period is signed and goes at once; later changes are applied
	 * to our map but signed only at the window's end, as one event, since
	 * it carries our whole list (own_dirty: changes held). */
	mm_timer_t announce_t;
	int own_dirty;
	int bye_wait;       /* goodbye waits for the held changes' event */
	uint64_t own_last_ms;
	struct boot boot[MAX_BOOT];
	unsigned nboot;
	mm_timer_t select_t, analyse_t, px_t, snap_t, ae_t, ihave_t;
	/* A newcomer admitted by evicting an inbound link (evict_for): it
	 * waits here, holding its connection's reference, until the evicted
	 * link's peer down frees the slot. */
	struct {
		mm_actor_t *conn, *evicted;
		uint8_t id[32], ip[16];
		uint16_t port;
	} wait_in;
	char *snap_path;
	struct addr *book;  /* addr_max entries */
	unsigned nbook;
	mm_psq_t *q;        /* query scratch (selection, analysis) */
	struct rcache *rc;  /* routes from us, per destination (our_path) */
	uint32_t links_gen; /* bumped when a link comes up or goes down */
	uint8_t *cls;       /* the last analysis: mm_psq_bridge_side classes */
	uint32_t ncls;      /* (0: none, e.g. we have no confirmed link yet) */
	uint32_t ncls_cap;
	/* Records forgotten as unreachable (cfg.unreachable_s): our
	 * component's size then (0: none pending), so that when it grows
	 * again (a partition healed) we re-announce our links to the side
	 * that forgot us too; and whether the last analysis forgot any. */
	uint32_t forgot_comp;
	int forgot_last;
	uint32_t req_next;
	/* direct messages: replay filter at the destination (node actor), and
	 * the last messages we sent, to name them in failure notices. Made at
	 * the first direct message or broadcast (ring()): 2 MB each by
	 * default, which a node that never sees either need not hold. */
	mm_dedup_t *ddedup, *bdedup;
	mm_dedup_config_t dd_cfg[2]; /* theirs, keys drawn at creation */
	/* our topics (node actor): delivered to us; announced to every link
	 * with "*" too when we relay every topic (cfg.relay_topics) */
	char topics[MM_WIRE_SUBS_MAX][MM_WIRE_TOPIC_MAX + 1];
	unsigned ntopics;
#define SENT_MAX 1024
	struct sent {
		uint8_t ref[32];
		uint64_t handle;
	} *sent;            /* SENT_MAX of them, made at our first direct message */
	uint32_t sent_next;
	/* introductions: our advertised address (set by mm_node_listen with a
	 * specific host), the peers we asked lately, the budget for answering */
	pthread_mutex_t adv_mu;
	uint8_t adv_ip[16];
	uint16_t adv_port;
	int adv_fixed;      /* set by mm_node_advertise: listening does not change it */
#define INTRO_RING 64
	struct intro_sent {
		uint8_t id[32];
		uint64_t ms;
	} intro[INTRO_RING];
	uint32_t intro_next;
	uint64_t intro_tok, intro_ms;
	/* our requests in flight (node actor) */
#define REQ_MAX 1024
#define REQ_TICK_MS 50
	struct pend {
		uint8_t used;
		uint8_t dst[32];
		uint64_t id, handle, deadline;
		mm_response_cb cb;
		void *arg;
	} *pend;            /* REQ_MAX of them, made at our first request (80 KB
	                     * a node that never asks, e.g. each simulated one) */
	unsigned npend;
	int req_timer_on;
	mm_timer_t req_t;
	uint64_t last_replace_ms;
	unsigned sel_reserve; /* inbound slots kept for our own dials (select_round) */
	unsigned sel_own;     /* links that count and are not thin (select_round) */
	int stopping;       /* said goodbye: no dials, no new links */
	int pressure;       /* the runtime's memory pressure (MM_MSG_PRESSURE) */
	/* protected peers (operator): never dropped by the selector, admitted
	 * above max_degree (up to the map's claim limit) */
	pthread_mutex_t prot_mu;
	uint8_t prot[MM_NODE_PROTECT_MAX][32];
	unsigned nprot;
	/* misbehaviour by cause (wire error code), round trips */
	_Atomic uint64_t st_misb[MM_NODE_CAUSES];
	_Atomic uint64_t rtt_hist[MM_NODE_RTT_BUCKETS + 1], rtt_sum_us;
	/* read by others */
	/* bans: written by the node actor, read by listeners (accept filter) */
	mm_bans_t *bans;
	pthread_mutex_t bans_mu;
	/* join sync log: a ring of the last sync_events frames (node actor),
	 * with each frame's origin and seq (anti-entropy); compacted when full
	 * (log_compact), log_hold inserts apart at least */
	mm_buf_t **log;
	struct logm {
		uint8_t id[32];
		uint32_t seq;
		uint8_t full;   /* the event carries its origin's whole list */
	} *logm;
	uint32_t log_cap, log_next, log_n, log_hold;
	_Atomic uint32_t st_log_cap; /* log_cap, for stats */
	/* the size of the join sync selection's origin table, made for each
	 * selection (log_sync_select): 160 KB a node kept for a moment's use
	 * was a tenth of a simulated node's memory */
	uint32_t sync_cap;
	/* lazy push: the log's newest slot of each origin (for iwant), a
	 * lossy index: an entry is (the id's first 8 bytes, 1 + slot), good
	 * while that slot still holds that origin; probes are bounded, an
	 * origin that falls out of it is served by anti-entropy instead. */
	struct lix {
		uint64_t key;
		uint32_t slot1;
	} *lix;
	uint32_t lix_cap;
	/* the key of the hashes that index tables by ids, topics and
	 * payloads others choose (lix, wanted, the join sync's origins,
	 * topics, broadcast keys): drawn at creation, so nobody can aim ids at one bucket or
	 * craft a payload whose hash matches another's; read-only after */
	uint64_t hk0, hk1;
	/* origins asked for lately (iwant): not asked again of another link
	 * within IWANT_RETRY_MS, while that answer may be on its way */
#define WANTED_N 1024
#define IWANT_RETRY_MS 1000
	struct wanted {
		uint64_t key;
		uint32_t seq;
		uint64_t ms;
	} wanted[WANTED_N];
	atomic_uint npeers;
	_Atomic uint32_t a_comp, a_iso, a_largest, a_bridges, a_art, a_book;
	_Atomic uint64_t links_digest;
	_Atomic uint64_t st_snaps, st_snap_peers, st_snap_bans;
	_Atomic uint64_t st_ae_sent, st_ae_wanted, st_ae_served, st_evdup, st_mapfull;
	_Atomic uint64_t st_shaped, st_ask_deferred;
	_Atomic uint64_t st_ih_sent, st_ih_rx, st_iw_sent, st_iw_served, st_iw_over;
	_Atomic uint64_t st_sync_ih, st_paced;
	_Atomic uint64_t st_verify, st_stale, st_refused_mem, st_evicted;
	atomic_int a_pressure;
	atomic_uint a_degree, a_max_degree, a_max_inbound; /* for the metrics */
	_Atomic uint64_t st_intro_out, st_intro_in, st_intro_dial;
	_Atomic uint64_t st_rq_out, st_rq_in, st_rq_timeout, st_rq_late;
	_Atomic uint64_t st_bpub, st_bdeliv, st_bfwd, st_bdup, st_bbad, st_brx, st_subs;
	_Atomic uint64_t st_dsent, st_drelayed, st_ddelivered, st_drewrite, st_dbad,
	    st_ddup, st_ddropped, st_dfail, st_route_bfs, st_route_hit;
	_Atomic uint64_t st_dl_room, st_dl_full, st_dl_thin, st_dl_comp, st_dl_repl,
	    st_dl_comp_fail;
	/* Dials into another component that failed in a row, and no more of
	 * them before across_next_ms (see book_dial_done) */
	unsigned across_fails;
	uint64_t across_next_ms;
	_Atomic uint64_t st_barred, st_refused_thin, st_refused_young, st_kicks_thin, st_kicks, st_px_sent, st_px_ans, st_px_rx, st_rate, st_gc_ph,
	    st_gc_rec, st_gc_unreach;
	_Atomic uint64_t st_up, st_down, st_dup, st_local, st_in, st_fwd, st_bad,
	    st_dropped, st_coalesced, st_signed, st_refresh, st_dials, st_syncs, st_sync_ev, st_full, st_bans, st_banned;
};

/* through the runtime: the simulator's clock is virtual */
static uint64_t
unix_ms(void)
{
	return mm_wall_ms();
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

static uint64_t topic_hash(const mm_node_t *n, const uint8_t *t, uint32_t len);

/* ---- callbacks: run in the connection actors -------------------------------- */

/* The references to connection actors that the peer table holds: at stop,
 * and at destroy for a node that never got its stop (the simulator's
 * crashes, mm_sim_kill_groups). */
static void
release_peers(mm_node_t *n)
{
	if (n->wait_in.conn != NULL) {
		mm_actor_unref(n->wait_in.conn);
		n->wait_in.conn = NULL;
	}
	for (int i = 0; i < n->peers_hi; i++) {
		if (n->peers[i].conn != NULL) {
			mm_actor_unref(n->peers[i].conn);
			n->peers[i].conn = NULL;
		}
		free(n->peers[i].ih);
		n->peers[i].ih = NULL;
		n->peers[i].nih = 0;
		free(n->peers[i].owed);
		n->peers[i].owed = NULL;
		n->peers[i].nowed = 0;
		free(n->peers[i].toask);
		n->peers[i].toask = NULL;
		n->peers[i].ntoask = n->peers[i].toask_cap = 0;
		free(n->peers[i].sub);
		n->peers[i].sub = NULL;
		n->peers[i].nsub = 0;
	}
}

static struct peer_msg *
new_pm_sized(mm_conn_t *c, const uint8_t *id, size_t size)
{
	struct peer_msg *pm = calloc(1, size);
	if (pm == NULL)
		return NULL;
	pm->conn = mm_conn_actor(c);
	mm_actor_ref(pm->conn);
	if (id != NULL)
		memcpy(pm->id, id, 32);
	pm->inbound = mm_conn_inbound(c);
	memcpy(pm->ip, mm_conn_ip(c), 16);
	pm->tag = mm_conn_tag(c);
	pm->port = mm_conn_peer_port(c);
	return pm;
}

static void
free_pm(struct peer_msg *pm)
{
	if (pm->held != 0)
		mm_conn_unhold(pm->conn, pm->held);
	if (pm->conn != NULL)
		mm_actor_unref(pm->conn);
	mm_buf_release(pm->buf);
	free(pm->blob);
	free(pm->wm);
	free(pm->px);
	free(pm);
}

static void
post(mm_node_t *n, uint32_t type, struct peer_msg *pm)
{
	if (pm == NULL)
		return;
	mm_msg_t m = {.type = type, .ptr = pm};
	/* Up and down must arrive: back-pressure would need the connection to
	 * wait, which it cannot; the node's mailbox is sized for every
	 * connection's up and down at once. Events may be dropped. */
	if (mm_send(n->actor, &m) != 0) {
		free_pm(pm);
		bump(&n->st_dropped);
	}
}

/* A message from a connection, with what it allocates (bytes), charged
 * to that connection until freed: a connection stops reading while the
 * node holds too much of what it sent (mm_conn_hold). A peer that sends
 * faster than the node handles, or a node slowed down (a small machine, a
 * sanitizer), leaves the backlog in TCP, not in the node's memory: the
 * node's mailbox takes thousands of messages, each up to a frame. */
static void
post_held(mm_node_t *n, uint32_t type, mm_conn_t *c, struct peer_msg *pm, size_t bytes)
{
	if (pm != NULL) {
		pm->held = (uint32_t)bytes;
		mm_conn_hold(c, pm->held);
	}
	post(n, type, pm);
}

/* Without the event (PM_SHORT): for every message that carries none. */
static struct peer_msg *
new_pm(mm_conn_t *c, const uint8_t *id)
{
	return new_pm_sized(c, id, PM_SHORT);
}

static void
tell_node(mm_node_t *n, uint32_t type, mm_conn_t *c, const uint8_t *id)
{
	post(n, type, new_pm(c, id));
}

static void
cb_ready(mm_conn_t *c, const uint8_t id[32], void *arg)
{
	tell_node(arg, N_PEER_UP, c, id);
}

static void
cb_rtt(mm_conn_t *c, uint32_t rtt_us, void *arg)
{
	struct peer_msg *pm = new_pm(c, NULL);
	if (pm != NULL)
		pm->verdict = (int)(rtt_us > INT32_MAX ? INT32_MAX : rtt_us);
	post(arg, N_RTT, pm);
}

static void
cb_drained(mm_conn_t *c, void *arg)
{
	post(arg, N_DRAINED, new_pm(c, NULL));
}

static int
is_loopback(const uint8_t ip[16]);

/* A peers list, copied out of the frame (it dies with the callback): only
 * entries with a usable address. Ids and addresses in it are someone's
 * say-so: the node dials them expecting that id, and the handshake proves
 * it or the entry loses. Loopback addresses only count from a loopback
 * peer (a remote peer cannot mean our own host). */
static void
peers_in(mm_node_t *n, mm_conn_t *c, const mm_w_peers_t *p)
{
	struct peer_msg *pm = new_pm(c, mm_conn_peer_id(c));
	if (pm == NULL)
		return;
	if (p->count > 0 && (pm->px = calloc(p->count, sizeof(*pm->px))) == NULL) {
		free_pm(pm);
		return;
	}
	static const uint8_t zero[16];
	int from_lo = is_loopback(pm->ip);
	for (unsigned i = 0; i < p->count; i++) {
		const mm_w_peer_t *e = &p->peer[i];
		if (!e->has_addr || e->port == 0 || memcmp(e->ip, zero, 16) == 0 ||
		    (is_loopback(e->ip) && !from_lo))
			continue;
		struct px_ent *x = &pm->px[pm->npx++];
		memcpy(x->id, e->id, 32);
		memcpy(x->ip, e->ip, 16);
		x->port = e->port;
	}
	post_held(n, N_PEERS, c, pm, PM_SHORT + (size_t)p->count * sizeof(*pm->px));
}

/* A direct message or failure notice outlives its frame: one allocation
 * holding the message and its byte strings. */
static void
take_bytes(mm_bytes_t *b, uint8_t **at)
{
	if (b->len != 0)
		memcpy(*at, b->ptr, b->len);
	b->ptr = *at;
	*at += b->len;
}

static size_t
routed_size(const mm_wire_msg_t *m)
{
	if (m->type == MM_W_DIRECT && m->u.direct.raw_len != 0)
		return sizeof(struct routed) + m->u.direct.raw_len;
	return sizeof(struct routed) + (m->type == MM_W_DIRECT ?
	    (size_t)m->u.direct.route.len + m->u.direct.route0.len + m->u.direct.data.len :
	    m->type == MM_W_BCAST ? (size_t)m->u.bcast.topic.len + m->u.bcast.data.len :
	    m->u.dfail.route.len);
}

static struct routed *
copy_routed(const mm_wire_msg_t *m)
{
	struct routed *w = malloc(routed_size(m));
	if (w == NULL)
		return NULL;
	w->type = m->type;
	if (m->type == MM_W_DIRECT)
		w->u.direct = m->u.direct;
	else if (m->type == MM_W_BCAST)
		w->u.bcast = m->u.bcast;
	else
		w->u.dfail = m->u.dfail;
	uint8_t *at = (uint8_t *)(w + 1);
	if (m->type == MM_W_DIRECT && m->u.direct.raw_len != 0) {
		/* the frame itself (a relay may send it on as it is), the byte
		 * strings pointing into the copy */
		const mm_w_direct_t *d = &m->u.direct;
		memcpy(at, d->raw, d->raw_len);
		w->u.direct.route.ptr = at + (d->route.ptr - d->raw);
		w->u.direct.data.ptr = at + (d->data.ptr - d->raw);
		w->u.direct.raw = at;
	} else if (m->type == MM_W_DIRECT) {
		take_bytes(&w->u.direct.route, &at);
		take_bytes(&w->u.direct.route0, &at);
		take_bytes(&w->u.direct.data, &at);
	} else if (m->type == MM_W_BCAST) {
		take_bytes(&w->u.bcast.topic, &at);
		take_bytes(&w->u.bcast.data, &at);
	} else {
		take_bytes(&w->u.dfail.route, &at);
	}
	return w;
}

static int event_budget(const mm_node_t *n, uint64_t *tok, uint64_t *last_ms,
    uint64_t now);

static void
cb_message(mm_conn_t *c, const mm_wire_msg_t *m, void *arg)
{
	mm_node_t *n = arg;
	struct peer_msg *pm;
	switch (m->type) {
	case MM_W_EVENT: {
		/* A duplicate dies here, on the connection's worker: a probe of
		 * its shard's dedup ring, before two mailbox hops (node actor,
		 * shard). What the probe misses, the shard's own check catches. */
		unsigned si = 0;
		uint8_t origin[32];
		if (n->nshards > 1) { /* the origin's id is SHA-256(pub) */
			mm_id_of(m->u.event.pub, origin);
			si = mm_ps_shard_of(n->ps, origin);
		}
		uint64_t now = unix_ms();
		if (mm_gossip_probe(n->shard[si].g, &m->u.event, (uint32_t)now)) {
			bump(&n->st_in);
			bump(&n->st_evdup);
			return;
		}
		/* With several workers the verify is done here too, on the
		 * link's worker: the verifies spread by link, not by the
		 * origin's shard (a few busy origins would load one worker),
		 * and the event crosses to the shard with its verdict. Within a
		 * bucket of the link's own event budget, kept on this worker:
		 * what is over it goes unverified to the node actor, which
		 * charges the link's budget proper and drops it there. */
		int sig = -1;
		if (n->nshards > 1) {
			uint64_t *w = mm_conn_owner_words(c), nowm = mm_now_ms();
			int hit;
			/* The bucket starts empty at the link's first event (not
			 * full, as the node actor's does): the node may not have
			 * taken this link (full, banned: it closes it) and drops
			 * its events unread; they must not get a burst of
			 * verifies first. */
			if (w[1] == 0)
				w[1] = nowm;
			if (event_budget(n, &w[0], &w[1], nowm) == 0 &&
			    (sig = mm_gossip_preverify(n->shard[si].g, &m->u.event, origin,
			    now, &hit)) >= 0 && !hit)
				bump(&n->st_verify);
		}
		if ((pm = new_pm_sized(c, mm_conn_peer_id(c), sizeof(*pm))) != NULL) {
			pm->ev = m->u.event;
			pm->shard = si;
			pm->sig = sig;
		}
		post_held(n, N_EVENT, c, pm, sizeof(*pm));
		return;
	}
	case MM_W_GET_PEERS:
		if ((pm = new_pm(c, mm_conn_peer_id(c))) != NULL) {
			pm->req = m->req;
			pm->limit = m->u.get_peers.limit;
		}
		post_held(n, N_GET_PEERS, c, pm, PM_SHORT);
		return;
	case MM_W_PEERS:
		peers_in(n, c, &m->u.peers);
		return;
	case MM_W_DIGEST:
	case MM_W_WANT:
	case MM_W_IHAVE:
	case MM_W_IWANT: {
		const mm_bytes_t *b = m->type == MM_W_DIGEST ? &m->u.digest.ents :
		    m->type == MM_W_WANT ? &m->u.want.ids : m->type == MM_W_IHAVE ?
		    &m->u.ihave.ents : &m->u.iwant.ids;
		if ((pm = new_pm(c, mm_conn_peer_id(c))) == NULL)
			return;
		if (b->len != 0 && (pm->blob = malloc(b->len)) == NULL) {
			free_pm(pm);
			return;
		}
		if (b->len != 0)
			memcpy(pm->blob, b->ptr, b->len);
		pm->blen = b->len;
		post_held(n, m->type == MM_W_DIGEST ? N_DIGEST : m->type == MM_W_WANT ?
		    N_WANT : m->type == MM_W_IHAVE ? N_IHAVE : N_IWANT, c, pm,
		    PM_SHORT + (size_t)b->len);
		return;
	}
	case MM_W_DIRECT:
	case MM_W_DFAIL:
	case MM_W_BCAST:
		if ((pm = new_pm(c, mm_conn_peer_id(c))) == NULL)
			return;
		if ((pm->wm = copy_routed(m)) == NULL) {
			free_pm(pm);
			return;
		}
		post_held(n, m->type == MM_W_DIRECT ? N_DIRECT : m->type == MM_W_DFAIL ?
		    N_DFAIL : N_BCAST, c, pm, PM_SHORT + routed_size(m));
		return;
	case MM_W_SUBS:
		if ((pm = new_pm(c, mm_conn_peer_id(c))) == NULL)
			return;
		/* the topics' hashes only: that is all the node compares */
		pm->npx = m->u.subs.count;
		if ((pm->blob = malloc(8u * (pm->npx ? pm->npx : 1) + 1)) == NULL) {
			free_pm(pm);
			return;
		}
		pm->blob[0] = 0;
		for (unsigned i = 0; i < m->u.subs.count; i++) {
			const mm_bytes_t *t = &m->u.subs.topic[i];
			if (t->len == 1 && t->ptr[0] == '*')
				pm->blob[0] = 1;
			uint64_t h = topic_hash(n, t->ptr, t->len);
			memcpy(pm->blob + 1 + 8 * i, &h, 8);
		}
		post_held(n, N_SUBS, c, pm, PM_SHORT + 8u * (pm->npx ? pm->npx : 1) + 1);
		return;
	case MM_W_ERROR:
		if (m->u.error.code == MM_WERR_FULL || m->u.error.code == MM_WERR_SHUTDOWN)
			post(n, N_FULL, new_pm(c, mm_conn_peer_id(c)));
		return;
	default:
		return;
	}
}

static void ban_peer(mm_node_t *n, const uint8_t *id, const uint8_t ip[16],
    const char *why);

/* A protocol fault the connection layer found (a bad frame, bad msgpack,
 * bad parameters, a message out of order, too many unknown commands, a
 * hello whose proof of work or identity binding fails), before the peer
 * is told: counted by cause and banned, its id if its hello proved one
 * and its address (docs/PROTOCOL.md §5), so that its next connection is
 * refused. Not a wrong version or network (another network's node is not
 * hostile), nor a node we dialled that proved another id than the one we
 * expected there (an address that changed hands). */
static void
cb_fault(mm_conn_t *c, int code, const char *why, void *arg)
{
	mm_node_t *n = arg;
	if (code == MM_WERR_VERSION || code == MM_WERR_NETWORK ||
	    (code == MM_WERR_BAD_ID && !mm_conn_inbound(c)))
		return;
	bump(&n->st_misb[(unsigned)code % MM_NODE_CAUSES]);
	char what[96];
	snprintf(what, sizeof(what), "%s: %s", mm_close_reason_name(code), why);
	ban_peer(n, mm_conn_proved_id(c), mm_conn_ip(c), what);
}

static void
cb_close(mm_conn_t *c, int reason, const char *why, void *arg)
{
	(void)reason;
	(void)why;
	/* Also for connections that never became peers: the node matches the
	 * actor against its table and ignores the unknown ones. */
	tell_node(arg, N_PEER_DOWN, c, NULL);
}

/* ---- bans --------------------------------------------------------------------- */

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

/* Ban a peer id and, if ban_addresses and it is not loopback, its
 * address; id NULL: the address alone (a peer whose hello never proved an
 * id). Thread-safe: the node actor and connection callbacks call it. */
static void
ban_peer(mm_node_t *n, const uint8_t *id, const uint8_t ip[16], const char *why)
{
	uint64_t now = unix_ms() / 1000;
	mm_ban_t b = {.kind = MM_BAN_ID, .created = now, .expires = now + n->cfg.ban_s};
	snprintf(b.reason, sizeof(b.reason), "%s", why);
	int by_addr = n->cfg.ban_addresses && !is_loopback(ip);
	if (id == NULL && !by_addr)
		return;
	char who[INET6_ADDRSTRLEN + 24] = "";
	if (id != NULL)
		for (int i = 0; i < 8; i++)
			snprintf(who + 2 * i, 3, "%02x", id[i]);
	else if (mm_ip_text(ip, who, sizeof(who)) != 0)
		snprintf(who, sizeof(who), "an address");
	pthread_mutex_lock(&n->bans_mu);
	mm_bans_expire(n->bans, now);
	int rc = 0;
	if (id != NULL) {
		memcpy(b.key, id, 32);
		rc = mm_bans_add(n->bans, &b);
	}
	if (by_addr && rc == 0) {
		mm_ban_t a = b;
		a.kind = MM_BAN_ADDR;
		a.plen = 128;
		memset(a.key, 0, sizeof(a.key));
		memcpy(a.key, ip, 16);
		rc = mm_bans_add(n->bans, &a);
	}
	pthread_mutex_unlock(&n->bans_mu);
	if (rc != 0)
		mm_log(MM_LOG_WARN, "node: cannot ban %s (%s): ban list full", who, why);
	else
		mm_log(MM_LOG_WARN, "node: banned %s for %us: %s", who, n->cfg.ban_s, why);
	bump(&n->st_bans);
}

/* ---- the node actor --------------------------------------------------------- */

static struct peer *find_peer(mm_node_t *n, const uint8_t *id);
static mm_buf_t *encode_buf(const mm_wire_msg_t *m);

/* ---- the log's index by origin (lazy push: what an iwant asks for) ---- */

#define LIX_PROBES 8

/* An id's key in the node's tables. Ids are SHA-256 outputs, but of keys
 * anyone can generate: with plain id bytes an identity-grinding attacker
 * could aim many at one bucket (long probe runs, entries pushed out), so
 * the hash is keyed with the node's secret (hk0, hk1). */
static uint64_t
id_key(const mm_node_t *n, const uint8_t *id)
{
	return mm_siphash13(n->hk0, n->hk1, id, 32);
}

/* Does this entry still name the slot holding its origin's newest frame?
 * A slot overwritten by another origin's frame makes it stale. */
static int
lix_live(const mm_node_t *n, const struct lix *e)
{
	return e->slot1 != 0 && id_key(n, n->logm[e->slot1 - 1].id) == e->key;
}

static void
lix_put(mm_node_t *n, const uint8_t *origin, uint32_t slot)
{
	uint64_t k = id_key(n, origin);
	uint32_t mask = n->lix_cap - 1, h = (uint32_t)k & mask;
	struct lix *spare = NULL;
	for (uint32_t i = 0; i < LIX_PROBES; i++) {
		struct lix *e = &n->lix[(h + i) & mask];
		if (e->key == k && e->slot1 != 0) { /* its entry: the newer slot */
			e->slot1 = slot + 1;
			return;
		}
		if (spare == NULL && !lix_live(n, e))
			spare = e;
	}
	if (spare == NULL) /* every probe live: the first one loses its origin */
		spare = &n->lix[h];
	spare->key = k;
	spare->slot1 = slot + 1;
}

/* The log slot of this origin's newest frame, or -1. */
static int
lix_get(const mm_node_t *n, const uint8_t *id)
{
	uint64_t k = id_key(n, id);
	uint32_t mask = n->lix_cap - 1, h = (uint32_t)k & mask;
	for (uint32_t i = 0; i < LIX_PROBES; i++) {
		const struct lix *e = &n->lix[(h + i) & mask];
		if (e->key == k && lix_live(n, e))
			return memcmp(n->logm[e->slot1 - 1].id, id, 32) == 0 ?
			    (int)(e->slot1 - 1) : -1;
	}
	return -1;
}

static int log_sync_select(mm_node_t *n, uint8_t *sel);

/* Lay the log out again in ncap slots, oldest first, and rebuild the two
 * indexes at their size for ncap. sel NULL: keep the newest min(log_n,
 * ncap) frames (growing, shrinking); else keep the frames with sel[slot]
 * set, at most ncap of them (compaction). 0 when done; on ENOMEM
 * nothing changes. */
static int
log_resize(mm_node_t *n, uint32_t ncap, const uint8_t *sel)
{
	uint32_t cap = n->log_cap, keep = n->log_n < ncap ? n->log_n : ncap;
	uint32_t scap = 16;
	while (scap < 2 * ncap) /* at most half full */
		scap *= 2;
	mm_buf_t **nl = calloc(ncap, sizeof(*nl));
	struct logm *nm = calloc(ncap, sizeof(*nm));
	struct lix *lx = calloc(scap, sizeof(*lx));
	if (nl == NULL || nm == NULL || lx == NULL) {
		free(nl);
		free(nm);
		free(lx);
		return -1;
	}
	uint32_t first = (n->log_next + cap - n->log_n) % cap; /* the oldest */
	uint32_t drop = n->log_n - keep, j = 0;
	for (uint32_t k = 0; k < n->log_n; k++) {
		uint32_t slot = (first + k) % cap;
		if (sel != NULL ? !sel[slot] || j == ncap : k < drop) {
			mm_buf_release(n->log[slot]);
			continue;
		}
		nl[j] = n->log[slot];
		nm[j++] = n->logm[slot];
	}
	keep = j;
	free(n->log);
	free(n->logm);
	free(n->lix);
	n->log = nl;
	n->logm = nm;
	n->lix = lx;
	n->sync_cap = n->lix_cap = scap;
	n->log_cap = ncap;
	n->log_n = keep;
	n->log_next = keep % ncap;
	n->log_hold = 0;
	for (uint32_t i = 0; i < keep; i++) /* oldest first: the newest slot wins */
		lix_put(n, nm[i].id, i);
	atomic_store_explicit(&n->st_log_cap, ncap, memory_order_relaxed);
	return 0;
}

/* The full log's frames to keep fill more than 7/8 of it: more origins are
 * active than it holds (at 2,500 nodes the default 2,048 frames held
 * about 1,800 origins' newest frames, and the quietest were lost again).
 * Double it, up to sync_events_max, while memory pressure is low and the
 * frames it would keep (at their mean size so far) leave RSS below 3/4
 * of the budget, short of the high level (80%); at high pressure it
 * shrinks back (log_shed). 0 when grown. */
static int
log_grow(mm_node_t *n)
{
	uint32_t cap = n->log_cap, ncap = cap * 2;
	if (ncap > n->cfg.sync_events_max)
		ncap = n->cfg.sync_events_max;
	if (ncap <= cap || n->log_n < cap || n->pressure != MM_PRESSURE_OK)
		return -1;
	if (n->cfg.mem_shed) {
		mm_mem_stats_t ms;
		mm_rt_mem(n->rt, &ms);
		uint64_t bytes = 0;
		for (uint32_t i = 0; i < cap; i++)
			bytes += n->log[i] != NULL ? n->log[i]->len : 0;
		uint64_t more = bytes / cap * (ncap - cap);
		if (!ms.forced && ms.budget > 0 && ms.rss + more > ms.budget / 4 * 3)
			return -1;
	}
	if (log_resize(n, ncap, NULL) != 0)
		return -1;
	mm_log(MM_LOG_INFO, "node: join sync log grown to %u frames (more active "
	    "origins than 7/8 of %u)", ncap, cap);
	return 0;
}

/* Memory pressure high: a log grown past sync_events goes back to it,
 * keeping its newest frames. */
static void
log_shed(mm_node_t *n)
{
	uint32_t was = n->log_cap;
	if (was <= n->cfg.sync_events || log_resize(n, n->cfg.sync_events, NULL) != 0)
		return;
	mm_log(MM_LOG_WARN, "node: memory pressure: join sync log shrunk from %u to "
	    "%u frames", was, n->log_cap);
}

/* The log is full: keep only the frames a join sync would send (each
 * origin's newest whole list and the deltas after it), in their order,
 * so that the quiet origins' newest frames stay. A plain ring lost them:
 * in a 500-node run (meshmap sim --nodes 500 --duration 60) the joins'
 * traffic rolled the 2,048-frame ring over, and the last nodes to join
 * never learnt the early nodes whose last event was older: no log could
 * serve it (join sync, anti-entropy, iwant), so 5 maps stayed 2% short
 * until the origins' refresh (refresh_ms, 10 min). When compacting would
 * free less than an eighth of the ring (more origins than it holds), the
 * log grows instead (log_grow); where it cannot, the oldest frames go as
 * before, and the next try waits that many inserts. */
static void
log_compact(mm_node_t *n)
{
	uint32_t cap = n->log_cap;
	if (n->log == NULL || n->log_n < cap)
		return;
	uint8_t *sel = malloc(cap);
	if (sel == NULL)
		return;
	if (log_sync_select(n, sel) != 0) {
		free(sel);
		return;
	}
	uint32_t keep = 0;
	for (uint32_t i = 0; i < cap; i++)
		keep += sel[i] != 0;
	if (cap - keep < cap / 8) {
		if (log_grow(n) != 0)
			n->log_hold = cap / 8;
	} else {
		(void)log_resize(n, cap, sel); /* on ENOMEM the oldest frame goes */
	}
	free(sel);
}

/* Keep one more reference to an accepted event's frame for the join sync. */
static void
log_frame(mm_node_t *n, mm_buf_t *b, const uint8_t *origin, uint32_t seq, int full)
{
	if (n->log_cap == 0)
		return;
	if (n->log_n == n->log_cap) {
		if (n->log_hold > 0)
			n->log_hold--;
		else
			log_compact(n);
	}
	mm_buf_ref(b);
	mm_buf_release(n->log[n->log_next]); /* the oldest, NULL until full */
	n->log[n->log_next] = b;
	memcpy(n->logm[n->log_next].id, origin, 32);
	n->logm[n->log_next].seq = seq;
	n->logm[n->log_next].full = (uint8_t)(full != 0);
	lix_put(n, origin, n->log_next);
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
	return mm_buf_copy(tmp, (uint32_t)len);
}

static void send_buf(mm_node_t *n, mm_actor_t *conn, mm_buf_t *b);

static void
put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t
get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A message of `size` bytes of records (digest, want, ihave, iwant),
 * encoded into a buffer of its own and queued on conn. -1: not sent. */
static int
send_records(mm_node_t *n, mm_actor_t *conn, const mm_wire_msg_t *m, size_t size)
{
	mm_buf_t *b = mm_buf_alloc((uint32_t)size + 64);
	int len = b != NULL ? mm_wire_encode(m, b->data, b->cap) : -ENOMEM;
	if (len < 0) {
		mm_buf_release(b);
		return -1;
	}
	b->len = (uint32_t)len;
	send_buf(n, conn, b);
	return 0;
}

static int out_budget(const mm_node_t *n, struct peer *p, uint64_t now);
static void out_charge(const mm_node_t *n, struct peer *p, uint64_t k, uint64_t now);
static struct peer *peer_of_conn(mm_node_t *n, mm_actor_t *conn);

/* ne (origin, seq) entries in one ihave frame on conn (counted in
 * ihave_entries_sent). 0 when queued. */
static int
send_ihave(mm_node_t *n, mm_actor_t *conn, uint8_t *ents, unsigned ne)
{
	mm_wire_msg_t m = {.type = MM_W_IHAVE};
	m.u.ihave.ents = (mm_bytes_t){ents, ne * MM_WIRE_DIGEST_ENT};
	if (send_records(n, conn, &m, m.u.ihave.ents.len) != 0)
		return -1;
	atomic_fetch_add_explicit(&n->st_ih_sent, ne, memory_order_relaxed);
	return 0;
}

/* A link's waiting ihave entries, in one frame: if the link's budget for
 * us has room (out_budget), else they wait for the next flush. 1 when
 * sent or nothing waits. */
static int
ihave_flush_peer(mm_node_t *n, struct peer *p)
{
	unsigned ne = p->nih;
	if (ne == 0 || p->conn == NULL) {
		p->nih = 0;
		return 1;
	}
	if (out_budget(n, p, mm_now_ms()) != 0) {
		if (!mm_timer_armed(&n->ihave_t))
			mm_timer_arm(&n->ihave_t, n->cfg.ihave_ms);
		return 0;
	}
	p->nih = 0;
	(void)send_ihave(n, p->conn, p->ih, ne);
	return 1;
}

static void serve_owed(mm_node_t *n, struct peer *p);
static void ask_later(mm_node_t *n, struct peer *p);
static void
ihave_flush(mm_node_t *n)
{
	for (int i = 0; i < n->peers_hi; i++) {
		struct peer *p = &n->peers[i];
		ihave_flush_peer(n, p);
		if (p->nowed > 0 && !p->drain_out) /* its MM_CONN_DRAIN was dropped */
			serve_owed(n, p);
		if (p->ntoask > 0)
			ask_later(n, p);
	}
}

/* Tell a link we hold (origin, seq), in the next ihave: at once when the
 * batch is full, else within ihave_ms. Out of memory: it goes without;
 * the link's other neighbours or anti-entropy bring it. */
static void
ihave_add(mm_node_t *n, struct peer *p, const uint8_t *origin, uint32_t seq)
{
	if (p->ih == NULL &&
	    (p->ih = malloc((size_t)IHAVE_MAX * MM_WIRE_DIGEST_ENT)) == NULL)
		return;
	if (p->nih == IHAVE_MAX && !ihave_flush_peer(n, p)) {
		/* the link's budget for us is spent and a frame waits: this one
		 * goes without (anti-entropy brings it) */
		bump(&n->st_shaped);
		return;
	}
	uint8_t *e = p->ih + (size_t)p->nih++ * MM_WIRE_DIGEST_ENT;
	memcpy(e, origin, 32);
	put_be32(e + 32, seq);
	if (p->nih == IHAVE_MAX)
		ihave_flush_peer(n, p);
	else if (!mm_timer_armed(&n->ihave_t))
		mm_timer_arm(&n->ihave_t, n->cfg.ihave_ms);
}

/* The same bytes to every link but `except`, and into the join sync log.
 * Lazy push (cfg.gossip_eager): an event we relay goes whole to that many
 * links picked at random for each event, and the others get its (origin,
 * seq) in an ihave; they ask for it (iwant) if no other copy reached
 * them. Our own events (except NULL) go whole to every link. Each node
 * then receives about gossip_eager whole copies of each event instead of
 * one per neighbour (the flood's duplicates were 90% of all events, see
 * docs/RESULTS-SIM.md). */
static void
broadcast_buf(mm_node_t *n, mm_buf_t *b, mm_actor_t *except, const uint8_t *origin,
    uint32_t seq, int full)
{
	uint8_t eager[MAX_PEERS];
	int lazy = except != NULL && n->cfg.gossip_eager != 0;
	if (lazy) {
		uint8_t idx[MAX_PEERS];
		unsigned k = 0, e = n->cfg.gossip_eager;
		for (int i = 0; i < n->peers_hi; i++)
			if (n->peers[i].conn != NULL && n->peers[i].conn != except)
				idx[k++] = (uint8_t)i;
		if (k <= e) {
			lazy = 0;
		} else {
			memset(eager, 0, (size_t)n->peers_hi);
			for (unsigned j = 0; j < e; j++) { /* a partial shuffle */
				unsigned r = j + (unsigned)(mm_random() % (k - j));
				uint8_t t = idx[j];
				idx[j] = idx[r];
				idx[r] = t;
				eager[idx[j]] = 1;
			}
		}
	}
	uint64_t now = mm_now_ms();
	for (int i = 0; i < n->peers_hi; i++) {
		struct peer *p = &n->peers[i];
		if (p->conn == NULL || p->conn == except)
			continue;
		if (lazy && !eager[i]) {
			ihave_add(n, p, origin, seq);
			continue;
		}
		if (out_budget(n, p, now) != 0) {
			/* over what the link takes from us: announced instead */
			bump(&n->st_shaped);
			ihave_add(n, p, origin, seq);
			continue;
		}
		mm_buf_ref(b);
		mm_msg_t s = {.type = MM_CONN_SEND_BUF | MM_MSG_F_BUF, .ptr = b};
		if (mm_send_or_drop(p->conn, &s) != 0)
			bump(&n->st_dropped);
	}
	log_frame(n, b, origin, seq, full);
}

/* Frames packed into buffers of up to SYNC_CHUNK bytes on their way to
 * one connection: a few mailbox slots, well under the write cap. */
#define SYNC_CHUNK 32768
struct chunker {
	mm_node_t *n;
	mm_actor_t *conn;
	mm_buf_t *chunk;
};

static void
chunk_flush(struct chunker *c)
{
	if (c->chunk == NULL)
		return;
	mm_msg_t s = {.type = MM_CONN_SEND_BUF | MM_MSG_F_BUF, .ptr = c->chunk};
	if (mm_send_or_drop(c->conn, &s) != 0)
		bump(&c->n->st_dropped);
	c->chunk = NULL;
}

/* 0, or -1 when no buffer could be had (nothing more goes). */
static int
chunk_put(struct chunker *c, const mm_buf_t *f)
{
	if (c->chunk != NULL && c->chunk->len + f->len > c->chunk->cap)
		chunk_flush(c);
	if (c->chunk == NULL &&
	    (c->chunk = mm_buf_alloc(f->len > SYNC_CHUNK ? f->len : SYNC_CHUNK)) == NULL)
		return -1;
	memcpy(c->chunk->data + c->chunk->len, f->data, f->len);
	c->chunk->len += f->len;
	return 0;
}

/* Send log frames to a peer, oldest first (per origin, the order of the
 * sequence numbers, so nothing arrives stale), packed by chunk_put.
 * sel: NULL for every frame, else sel[slot] != 0 for the chosen ones.
 * At most limit frames and limit_bytes bytes: of the chosen, every
 * origin's whole list first (newest first while they fit), then the
 * deltas, newest first; sel is narrowed to those. A chatty origin's
 * deltas must not push the others' whole lists out: a plain "newest
 * first" did, in netns_gossip (a flood's deltas filled a 375-frame cap
 * and the newcomer's map missed the honest nodes' lists).
 * Returns the frames sent. */
static uint64_t
send_log(mm_node_t *n, mm_actor_t *conn, uint8_t *sel, uint64_t limit,
    uint64_t limit_bytes)
{
	if (n->log_n == 0)
		return 0;
	uint32_t first = (n->log_next + n->log_cap - n->log_n) % n->log_cap;
	if (sel != NULL && (limit != UINT64_MAX || limit_bytes != UINT64_MAX)) {
		uint64_t fit = 0, bytes = 0;
		for (int pass = 0; pass < 2; pass++)
			for (uint32_t k = n->log_n; k-- > 0;) {
				uint32_t slot = (first + k) % n->log_cap;
				if (!sel[slot] || (pass == 0) != (n->logm[slot].full != 0))
					continue;
				/* the first always fits: a frame larger than
				 * the bound would otherwise never go */
				if (fit < limit &&
				    (fit == 0 || bytes + n->log[slot]->len <= limit_bytes)) {
					fit++;
					bytes += n->log[slot]->len;
					sel[slot] = 2;
				}
			}
		for (uint32_t k = 0; k < n->log_n; k++) {
			uint32_t slot = (first + k) % n->log_cap;
			sel[slot] = sel[slot] == 2;
		}
	}
	struct chunker ck = {.n = n, .conn = conn};
	uint64_t sent = 0;
	for (uint32_t k = 0; k < n->log_n; k++) {
		uint32_t slot = (first + k) % n->log_cap;
		if (sel != NULL && !sel[slot])
			continue;
		if (chunk_put(&ck, n->log[slot]) != 0)
			break;
		sent++;
	}
	chunk_flush(&ck);
	return sent;
}

/* What a new peer needs from the log: an event that carries its origin's
 * whole neighbour list makes every older event of that origin redundant
 * (the newest is the whole truth); deltas newer than it still count.
 * Newest first, through a table of the origins seen (open addressing, at
 * most half full), made for this call: sel[slot] set for the frames to
 * send. Without it a bootstrap node replayed its whole log, ~500 KB, to
 * every newcomer (bench/RESULTS.md). 0, or -1 (no memory). */
static int
log_sync_select(mm_node_t *n, uint8_t *sel)
{
	struct sync_ent {
		uint8_t id[32];
		uint8_t used, sawfull;
	} *tab = calloc(n->sync_cap, sizeof(*tab));
	if (tab == NULL)
		return -1;
	memset(sel, 0, n->log_cap);
	uint32_t mask = n->sync_cap - 1;
	for (uint32_t k = 0; k < n->log_n; k++) {
		uint32_t slot = (n->log_next + n->log_cap - 1 - k) % n->log_cap;
		const struct logm *e = &n->logm[slot];
		uint32_t h = (uint32_t)id_key(n, e->id);
		struct sync_ent *t = &tab[h & mask];
		while (t->used && memcmp(t->id, e->id, 32) != 0)
			t = &tab[(uint32_t)(t - tab + 1) & mask];
		if (!t->used) { /* the newest of its origin */
			t->used = 1;
			memcpy(t->id, e->id, 32);
			t->sawfull = e->full;
			sel[slot] = 1;
		} else if (!t->sawfull) { /* only deltas are newer: still needed */
			t->sawfull = e->full;
			sel[slot] = 1;
		}
	}
	free(tab);
	return 0;
}

/* Replay the log to a new peer (join sync): every origin's newest whole
 * list and the deltas after it. What the caps below leave out is
 * announced instead, in ihave frames of (origin, seq): the peer asks for
 * what its map lacks (iwant), once across its links, and our answers go
 * out paced by the connection (serve_ids). */
static void
sync_peer(mm_node_t *n, mm_actor_t *conn)
{
	struct peer *p = peer_of_conn(n, conn);
	uint32_t cap = n->log_cap ? n->log_cap : 1;
	uint8_t *sel = NULL;
	if (n->log != NULL &&
	    ((sel = malloc(cap)) == NULL || log_sync_select(n, sel) != 0)) {
		/* not the whole log unselected: it could pass the write cap */
		free(sel);
		mm_log(MM_LOG_WARN, "node: no memory for a join sync: the new link "
		    "gets what it lacks by anti-entropy");
		return;
	}
	uint8_t *all = sel != NULL ? malloc(cap) : NULL;
	if (all != NULL)
		memcpy(all, sel, cap);
	/* The new peer's budget for us starts full (event_burst); the join
	 * sync takes at most the shaper's share of it (3/4), so that it is
	 * never over the budget however far the log has grown. And at most
	 * half the connection's write cap in bytes, all queued at once: at
	 * 1,750 nodes a whole sync (about 600 bytes an origin) passed the
	 * 1 MiB cap and every newcomer's first link was cut as a slow reader
	 * (meshmap sim --nodes 2500, docs/RESULTS-SIM.md). */
	uint64_t sent = send_log(n, conn, sel, (uint64_t)n->cfg.event_burst * 3 / 4,
	    n->cfg.net.write_cap / 2);
	uint64_t now = mm_now_ms();
	if (p != NULL)
		out_charge(n, p, sent, now);
	/* the rest: one entry per origin whose newest frame stayed out (an
	 * iwant is answered with the origin's newest frame) */
	uint8_t *ents = all != NULL && p != NULL ?
	    malloc((size_t)MM_WIRE_DIGEST_MAX * MM_WIRE_DIGEST_ENT) : NULL;
	unsigned ne = 0;
	uint64_t frames = 0, announced = 0;
	for (uint32_t k = 0; ents != NULL && k <= n->log_n; k++) {
		uint32_t slot = (n->log_next + n->log_cap - n->log_n + k) % n->log_cap;
		if (k < n->log_n && (!all[slot] || sel[slot] ||
		    lix_get(n, n->logm[slot].id) != (int)slot))
			continue;
		if (ne > 0 && (k == n->log_n || ne == MM_WIRE_DIGEST_MAX)) {
			if (send_ihave(n, conn, ents, ne) == 0) {
				frames++;
				announced += ne;
			}
			ne = 0;
		}
		if (k == n->log_n)
			break;
		uint8_t *e = ents + (size_t)ne++ * MM_WIRE_DIGEST_ENT;
		memcpy(e, n->logm[slot].id, 32);
		put_be32(e + 32, n->logm[slot].seq);
	}
	if (frames > 0) {
		out_charge(n, p, frames, now);
		atomic_fetch_add_explicit(&n->st_sync_ih, announced, memory_order_relaxed);
	}
	free(ents);
	free(all);
	free(sel);
	/* counted last: a reader that sees the sync sees what it announced */
	atomic_fetch_add_explicit(&n->st_sync_ev, sent, memory_order_release);
	atomic_fetch_add_explicit(&n->st_syncs, 1, memory_order_release);
}

/* Our own event is signed and applied by the shard that owns our record;
 * it comes back as N_FWD and goes to every link then (after any join sync
 * already queued, so a new peer gets our events in order). Must arrive:
 * back-pressure, not drop (the node actor is never the shard's caller
 * twice at once, and the shard's mailbox is large). */
static void
local_event(mm_node_t *n, int kind, const uint8_t *peer, int dir)
{
	struct peer_msg *pm = calloc(1, sizeof(*pm));
	if (pm == NULL)
		return;
	memcpy(pm->id, peer, 32);
	pm->verdict = kind;
	pm->inbound = dir;
	/* The throttle (cfg.announce_ms): signed now, or held to the end of
	 * the window, where the newest list goes as one event (own_flush). */
	uint64_t now = mm_now_ms(), w = n->cfg.announce_ms;
	if (w == 0 || (!n->own_dirty && !mm_timer_armed(&n->announce_t) &&
	    (n->own_last_ms == 0 || now - n->own_last_ms >= w))) {
		n->own_last_ms = now;
	} else {
		pm->defer = 1;
		if (n->own_dirty)
			bump(&n->st_coalesced);
		n->own_dirty = 1;
		if (!mm_timer_armed(&n->announce_t)) {
			uint64_t since = now - n->own_last_ms;
			mm_timer_arm(&n->announce_t, since < w ? w - since : 1);
		}
	}
	mm_msg_t m = {.type = G_LOCAL, .ptr = pm};
	if (mm_send(n->shard[n->own_shard].actor, &m) != 0) {
		free(pm);
		bump(&n->st_dropped);
	}
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

/* ---- token buckets ------------------------------------------------------------ */

/* Take one token from a bucket of burst tokens refilled at rate_u
 * millionths of a token a millisecond (*tok in millionths). Returns 0 if
 * a token was there. */
#define TOKEN 1000000ull
static void
bucket_refill(uint64_t *tok, uint64_t *last_ms, uint64_t now, uint64_t rate_u,
    uint64_t burst)
{
	uint64_t cap = burst * TOKEN;
	if (now > *last_ms) {
		uint64_t add = (now - *last_ms) * rate_u;
		*tok = *tok >= cap || add >= cap - *tok ? cap : *tok + add;
		*last_ms = now;
	}
}

static int
bucket_take(uint64_t *tok, uint64_t *last_ms, uint64_t now, uint64_t rate_u,
    uint64_t burst)
{
	bucket_refill(tok, last_ms, now, rate_u, burst);
	if (*tok < TOKEN)
		return -1;
	*tok -= TOKEN;
	return 0;
}

/* One token of a link's event budget (cfg.event_rate a second, bursts of
 * cfg.event_burst): events and ihave frames it sends, ids it asks of us. */
static int
event_budget(const mm_node_t *n, uint64_t *tok, uint64_t *last_ms, uint64_t now)
{
	return bucket_take(tok, last_ms, now, (uint64_t)n->cfg.event_rate * TOKEN / 1000u,
	    n->cfg.event_burst);
}

/* Whole tokens left in a link's event budget now: what we may still ask
 * of it (want, iwant) without the answers going over the budget we
 * apply to it. */
static uint64_t
event_room(const mm_node_t *n, struct peer *p, uint64_t now)
{
	bucket_refill(&p->ev_tok, &p->ev_ms, now, (uint64_t)n->cfg.event_rate * TOKEN / 1000u,
	    n->cfg.event_burst);
	return p->ev_tok / TOKEN;
}

/* Egress shaping: one token of what we push to a link (whole events,
 * ihave frames). The link applies the same budget to us (event_rate,
 * event_burst: the network's nodes share them), counted from when our
 * frames reach it, which a network delay and a busy turn bunch up; we
 * keep under 7/8 of its rate and 3/4 of its burst, so that an honest
 * relay passing on what an attacker pours in is never over the budget
 * itself. What does not fit goes in an ihave (the link asks for it if
 * nobody else brings it) and waits for the next flush. */
static uint64_t
out_burst(const mm_node_t *n)
{
	uint64_t burst = (uint64_t)n->cfg.event_burst * 3 / 4;
	return burst ? burst : 1;
}

static uint64_t
out_rate_u(const mm_node_t *n)
{
	return (uint64_t)n->cfg.event_rate * 7 * TOKEN / 8000u;
}

static int
out_budget(const mm_node_t *n, struct peer *p, uint64_t now)
{
	return bucket_take(&p->out_tok, &p->out_ms, now, out_rate_u(n), out_burst(n));
}

/* Frames the link asked for (a join's sync, answers to want and iwant)
 * count against its budget for us too: taken from the shaper, down to
 * empty, so that pushes after them wait. */
static void
out_charge(const mm_node_t *n, struct peer *p, uint64_t k, uint64_t now)
{
	bucket_refill(&p->out_tok, &p->out_ms, now, out_rate_u(n), out_burst(n));
	p->out_tok = k * TOKEN >= p->out_tok ? 0 : p->out_tok - k * TOKEN;
}

/* ---- address book ------------------------------------------------------------- */

static struct addr *
book_find(mm_node_t *n, const uint8_t *id)
{
	for (unsigned i = 0; i < n->nbook; i++)
		if (n->book[i].used && memcmp(n->book[i].id, id, 32) == 0)
			return &n->book[i];
	return NULL;
}

/* Remember id at ip:port. A verified address (we shook hands there)
 * replaces what we had; a hearsay one only fills a gap or replaces other
 * hearsay. When the book is full, hearsay makes room by evicting the
 * hearsay entry that failed most (then the oldest); a verified address may
 * also evict the oldest verified entry not being dialled. */
static void
book_put(mm_node_t *n, const uint8_t *id, const uint8_t ip[16], uint16_t port,
    int verified)
{
	if (port == 0 || memcmp(id, n->id.id, 32) == 0)
		return;
	uint64_t now = mm_now_ms();
	struct addr *a = book_find(n, id);
	if (a != NULL) {
		if (verified || !a->verified) {
			if (memcmp(a->ip, ip, 16) != 0 || a->port != port)
				a->fails = 0;
			memcpy(a->ip, ip, 16);
			a->port = port;
			a->verified |= (uint8_t)verified;
		}
		a->seen_ms = now;
		return;
	}
	if (n->nbook < n->cfg.addr_max) {
		a = &n->book[n->nbook++];
	} else {
		for (unsigned i = 0; i < n->nbook; i++) {
			struct addr *b = &n->book[i];
			if (!b->used) {
				a = b;
				break;
			}
			if (b->dialling || (b->verified && !verified) || b->barred_ms > now)
				continue;
			if (a == NULL || b->verified < a->verified ||
			    (b->verified == a->verified && (b->fails > a->fails ||
			    (b->fails == a->fails && b->seen_ms < a->seen_ms))))
				a = b;
		}
		if (a == NULL)
			return;
	}
	uint16_t gen = a->gen;
	memset(a, 0, sizeof(*a));
	a->used = 1;
	a->gen = (uint16_t)(gen + 1);
	memcpy(a->id, id, 32);
	memcpy(a->ip, ip, 16);
	a->port = port;
	a->verified = (uint8_t)verified;
	a->seen_ms = a->first_ms = now;
}

static struct addr *
book_of_tag(mm_node_t *n, uint64_t tag)
{
	if (!(tag & ADDR_TAG))
		return NULL;
	unsigned slot = (unsigned)(tag & 0xffff);
	if (slot >= n->nbook || !n->book[slot].used ||
	    n->book[slot].gen != (uint16_t)(tag >> 16))
		return NULL;
	return &n->book[slot];
}

static uint64_t
jitter(uint64_t ms)
{
	uint64_t j = ms / 2;
	return ms - j / 2 + (j ? mm_random() % j : 0);
}

/* Our dial to a book entry ended; up: whether it became a link. */
static void
book_dial_done(mm_node_t *n, struct addr *a, int up)
{
	if (!a->dialling)
		return;
	a->dialling = 0;
	if (a->across) {
		/* Dials into another component: a partition's far side, or a
		 * group of nodes that all left, whose links among themselves
		 * stay confirmed in the maps until they are forgotten (every
		 * dial there fails). After 3 failures in a row, a pause of 5 s,
		 * doubling to 60 s, until one succeeds: a partition's far side,
		 * healed, is still found at once by one of the many nodes
		 * trying, each on its own pause. */
		a->across = 0;
		if (up) {
			n->across_fails = 0;
		} else {
			bump(&n->st_dl_comp_fail);
			if (++n->across_fails >= ACROSS_FAILS) {
				unsigned k = n->across_fails - ACROSS_FAILS;
				uint64_t p = ACROSS_PAUSE_MS << (k < 4 ? k : 4);
				n->across_next_ms = mm_now_ms() +
				    jitter(p < ACROSS_PAUSE_MAX_MS ? p : ACROSS_PAUSE_MAX_MS);
			}
		}
	}
	if (up) {
		a->fails = 0;
		a->verified = 1;
		return;
	}
	a->fails++;
	/* Hearsay that keeps failing is probably false: forget it. */
	if (a->fails >= (a->verified ? 8 : 3)) {
		a->used = 0;
		return;
	}
	uint64_t back = 1000ull << (a->fails < 10 ? a->fails : 10);
	a->next_ms = mm_now_ms() + jitter(back < 600000 ? back : 600000);
}

static int
sockaddr_of(const uint8_t ip[16], uint16_t port, struct sockaddr_storage *ss,
    socklen_t *len)
{
	static const uint8_t v4[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	memset(ss, 0, sizeof(*ss));
	if (memcmp(ip, v4, 12) == 0) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		memcpy(&s4->sin_addr, ip + 12, 4);
		*len = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		memcpy(&s6->sin6_addr, ip, 16);
		*len = sizeof(*s6);
	}
	return 0;
}

static void
book_dial(mm_node_t *n, struct addr *a)
{
	struct sockaddr_storage ss;
	socklen_t len;
	sockaddr_of(a->ip, a->port, &ss, &len);
	if (n->stopping || n->pressure >= MM_PRESSURE_HIGH)
		return;
	uint64_t tag = ADDR_TAG | (uint64_t)a->gen << 16 | (uint64_t)(a - n->book);
	a->dialling = 1;
	bump(&n->st_dials);
	if (mm_net_dial_tagged(n->net, (struct sockaddr *)&ss, len, a->id, tag) != 0)
		book_dial_done(n, a, 0);
}

/* ---- peer exchange (seed 002 step 2, seed 004) --------------------------------- */

static void
send_buf(mm_node_t *n, mm_actor_t *conn, mm_buf_t *b)
{
	mm_msg_t s = {.type = MM_CONN_SEND_BUF | MM_MSG_F_BUF, .ptr = b};
	if (mm_send_or_drop(conn, &s) != 0)
		bump(&n->st_dropped);
}

static void
ask_peers(mm_node_t *n, struct peer *p)
{
	uint64_t now = mm_now_ms();
	if (p->asked_ms != 0 && now - p->asked_ms < n->cfg.req_refill_ms)
		return; /* it would count against us */
	p->asked_ms = now;
	mm_wire_msg_t m = {.type = MM_W_GET_PEERS, .req = ++n->req_next};
	if (m.req == 0)
		m.req = ++n->req_next;
	m.u.get_peers.limit = PX_ANSWER_MAX;
	mm_buf_t *b = encode_buf(&m);
	if (b == NULL)
		return;
	send_buf(n, p->conn, b);
	bump(&n->st_px_sent);
}

/* A random subset (at most limit, at most PX_ANSWER_MAX) of the addresses
 * we verified ourselves whose peer is up: linked to us now, or holding a
 * confirmed edge in our map. Never the asker, never the whole book. */
static void
answer_peers(mm_node_t *n, mm_actor_t *conn, const uint8_t *asker, uint32_t req,
    unsigned limit)
{
	if (limit > PX_ANSWER_MAX)
		limit = PX_ANSWER_MAX;
	unsigned pick[PX_ANSWER_MAX], have = 0, seen = 0;
	for (unsigned i = 0; i < n->nbook; i++) {
		struct addr *a = &n->book[i];
		if (!a->used || !a->verified || memcmp(a->id, asker, 32) == 0)
			continue;
		if (find_peer(n, a->id) == NULL) {
			mm_pidx_t x = mm_ps_lookup(n->ps, a->id), tmp[1];
			if (x == MM_PIDX_NONE || mm_ps_confirmed(n->ps, x, tmp, 1) == 0)
				continue;
		}
		/* reservoir sampling: every eligible entry equally likely */
		seen++;
		if (have < limit)
			pick[have++] = i;
		else if (mm_random() % seen < limit)
			pick[mm_random() % limit] = i;
	}
	mm_wire_msg_t *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return;
	m->type = MM_W_PEERS;
	m->req = req;
	mm_pidx_t nbi[MM_PS_MAX_NB];
	uint8_t dirs[MM_PS_MAX_NB];
	uint8_t (*nbid)[MM_WIRE_NB_MAX][32] = calloc(have ? have : 1, sizeof(*nbid));
	if (nbid == NULL) {
		free(m);
		return;
	}
	for (unsigned k = 0; k < have; k++) {
		struct addr *a = &n->book[pick[k]];
		mm_w_peer_t *e = &m->u.peers.peer[k];
		e->id = a->id;
		mm_pidx_t x = mm_ps_lookup(n->ps, a->id);
		unsigned nn = x == MM_PIDX_NONE ? 0 :
		    mm_ps_neighbours(n->ps, x, nbi, dirs, MM_WIRE_NB_MAX);
		unsigned w = 0;
		for (unsigned j = 0; j < nn; j++) {
			const uint8_t *id = mm_ps_id(n->ps, nbi[j]);
			if (id == NULL)
				continue;
			memcpy(nbid[k][w], id, 32);
			e->dirs |= (uint32_t)(dirs[j] & 1) << w;
			w++;
		}
		e->seq = x == MM_PIDX_NONE ? 0 : mm_ps_seq(n->ps, x);
		e->nnb = (uint8_t)w;
		e->nb = &nbid[k][0][0];
		e->has_addr = 1;
		memcpy(e->ip, a->ip, 16);
		e->port = a->port;
	}
	m->u.peers.count = (uint16_t)have;
	/* 16 entries of up to 32 ids: about 17 KB */
	mm_buf_t *b = mm_buf_alloc(PX_ANSWER_MAX * (MM_WIRE_NB_MAX * 32 + 96) + 64);
	int len = b != NULL ? mm_wire_encode(m, b->data, b->cap) : -ENOMEM;
	free(nbid);
	free(m);
	if (len < 0) {
		mm_buf_release(b);
		mm_log(MM_LOG_WARN, "node: cannot encode a peers answer (%d)", len);
		return;
	}
	b->len = (uint32_t)len;
	/* counted before the send, so that whoever sees the answer arrive
	 * also sees it counted */
	bump(&n->st_px_ans);
	send_buf(n, conn, b);
}

static struct peer *
peer_of_conn(mm_node_t *n, mm_actor_t *conn)
{
	for (int i = 0; i < n->peers_hi; i++)
		if (n->peers[i].conn == conn)
			return &n->peers[i];
	return NULL;
}

static void misbehaved(mm_node_t *n, struct peer *p, uint32_t pts, int code,
    const char *why);

/* The link a request came in on, if it is still a link and the request
 * fits its budget (one bucket for get_peers and digest); else NULL, and
 * the excess is scored. */
static struct peer *
request_from(mm_node_t *n, struct peer_msg *pm, const char *what)
{
	struct peer *p = peer_of_conn(n, pm->conn);
	if (p == NULL)
		return NULL;
	if (bucket_take(&p->rq_tok, &p->rq_ms, mm_now_ms(),
	        TOKEN / n->cfg.req_refill_ms, n->cfg.req_burst) != 0) {
		bump(&n->st_rate);
		misbehaved(n, p, 10, MM_WERR_RATE, what);
		return NULL;
	}
	return p;
}

static void
get_peers_in(mm_node_t *n, struct peer_msg *pm)
{
	if (request_from(n, pm, "get_peers over the request rate") == NULL)
		return;
	answer_peers(n, pm->conn, pm->id, pm->req, pm->limit);
}

static void
peers_list_in(mm_node_t *n, struct peer_msg *pm)
{
	/* From a link or from a peer that has just refused us (no slot): both
	 * are peers that completed a handshake with us. */
	bump(&n->st_px_rx);
	for (unsigned i = 0; i < pm->npx; i++)
		book_put(n, pm->px[i].id, pm->px[i].ip, pm->px[i].port, 0);
}

static void
full_in(mm_node_t *n, struct peer_msg *pm)
{
	struct addr *a = book_find(n, pm->id);
	if (a != NULL)
		a->next_ms = mm_now_ms() + jitter(n->cfg.full_backoff_ms);
	/* A bootstrap node too: its link came up (which reset its backoff)
	 * only to be refused. Without this a node short of links redialled a
	 * full bootstrap every second or so, and each try cost a join sync
	 * and two events that every node received (meshmap sim, 60 nodes,
	 * 30% crash: 1,544 refusals at the bootstrap in a 126-s run). */
	for (unsigned i = 0; i < n->nboot; i++) {
		struct boot *b = &n->boot[i];
		if (b->state != B_REMOVED && b->id_known && memcmp(b->id, pm->id, 32) == 0 &&
		    b->backoff_ms < n->cfg.full_backoff_ms)
			b->backoff_ms = n->cfg.full_backoff_ms;
	}
}

/* ---- neighbour selection (selector.h) ------------------------------------------- */

/* Close a link with "no slot" (error 14: the peer waits before it dials
 * again), and do not redial it for full_backoff_ms either. */
static void
close_no_slot(mm_node_t *n, struct peer *p)
{
	struct addr *a = book_find(n, p->id);
	if (a != NULL) /* it would come back at once otherwise */
		a->next_ms = mm_now_ms() + jitter(n->cfg.full_backoff_ms);
	mm_msg_t m = {.type = MM_CONN_CLOSE, .aux = MM_WERR_FULL};
	(void)mm_send(p->conn, &m);
}

/* The selector drops a link; the peer may not link again (either way)
 * for full_backoff_ms. Before, a dropped peer could dial straight back
 * in, and each time it was young again and shielded by min_link_ms: lone
 * eclipse attackers kept half of a victim's links that way. */
static void
kick(mm_node_t *n, struct peer *p, int thin)
{
	bump(&n->st_kicks);
	if (thin)
		bump(&n->st_kicks_thin);
	mm_log(MM_LOG_INFO, "node: dropping neighbour %02x%02x%02x%02x (%s)",
	    p->id[0], p->id[1], p->id[2], p->id[3],
	    thin ? "thin: few confirmed neighbours" : "worst overlap");
	struct addr *a = book_find(n, p->id);
	if (a != NULL)
		a->barred_ms = mm_now_ms() + jitter(n->cfg.full_backoff_ms);
	close_no_slot(n, p);
}

/* Eclipse defence: a peer with fewer confirmed neighbours than this in
 * our map is "thin" (0: the rule is off). A lone eclipse attacker links
 * to its victims only, so it looks like the best neighbour there is: room,
 * no overlap (docs/RESULTS-SIM.md, "Eclipse attempts"). Half the target,
 * and only once the map holds 4 x target records: in a network too small
 * for everyone to reach the target, every peer would be thin. */
static unsigned
thin_below(mm_node_t *n)
{
	mm_ps_stats_t st;
	mm_ps_stats(n->ps, &st);
	return st.records >= 4u * n->cfg.degree ? n->cfg.degree / 2 : 0;
}

/* An address we have known for THIN_GRACE_MS whose peer we never saw
 * with degree/2 confirmed links: if it is thin now, it has had its chance
 * to link (a lone eclipse attacker looks like this; a node that was once
 * well linked and comes back after a restart does not). */
static int
known_long(const struct addr *a, uint64_t now)
{
	return !a->full_seen && now - a->first_ms >= THIN_GRACE_MS;
}

/* Close a new link with "no slot" (error 14), after a peers answer, as a
 * full node does: an honest node refused here (one we dropped that came
 * back after a restart, through us as its bootstrap) learns where else to
 * go; without it, it waited out its bootstrap's backoff with no link at
 * all (meshmap sim --churn). */
static void
refuse_link(mm_node_t *n, struct peer_msg *pm)
{
	answer_peers(n, pm->conn, pm->id, 0, PX_ANSWER_MAX);
	mm_msg_t m = {.type = MM_CONN_CLOSE, .aux = MM_WERR_FULL};
	(void)mm_send(pm->conn, &m);
	mm_actor_unref(pm->conn);
}

/* Is the peer of record x (MM_PIDX_NONE: none) thin under tb? */
static int
is_thin(mm_node_t *n, mm_pidx_t x, unsigned tb)
{
	mm_pidx_t tmp[MM_PS_MAX_NB];
	return tb != 0 && (x == MM_PIDX_NONE || !mm_ps_live(n->ps, x) ||
	    mm_ps_confirmed(n->ps, x, tmp, MM_PS_MAX_NB) < tb);
}

/* Mark the book's addresses whose peer our map shows with tb confirmed
 * links or more (once: the mark stays). */
static void
note_full(mm_node_t *n, unsigned tb)
{
	if (tb == 0)
		return;
	for (unsigned i = 0; i < n->nbook; i++) {
		struct addr *a = &n->book[i];
		if (a->used && !a->full_seen && !is_thin(n, mm_ps_lookup(n->ps, a->id), tb))
			a->full_seen = 1;
	}
}

/* Connection introduction (seed §3.4, the relayed SDP messages): a peer
 * our map knows but whose address we do not (it does not listen, or
 * nobody shared it) is asked, by a direct message along the map, to dial
 * us at our advertised address. One per round, never the same peer twice
 * within INTRO_AGAIN_MS; only with an advertised address. */
#define INTRO_AGAIN_MS 60000
static int post_send(mm_node_t *n, const uint8_t *dst, const uint8_t *route,
    unsigned nroute, const uint8_t *hdr, unsigned hlen, const void *data, uint32_t len,
    int reroute, uint64_t *handle);

static void
introduce(mm_node_t *n, const mm_pidx_t *nb, unsigned nnb, unsigned target,
    unsigned tb)
{
	uint8_t hdr[19];
	pthread_mutex_lock(&n->adv_mu);
	int have = n->adv_port != 0;
	memcpy(hdr + 1, n->adv_ip, 16);
	hdr[17] = (uint8_t)(n->adv_port >> 8);
	hdr[18] = (uint8_t)n->adv_port;
	pthread_mutex_unlock(&n->adv_mu);
	if (!have)
		return;
	hdr[0] = MM_DK_INTRO;
	/* candidates: a bounded scan of the map from a random place */
	uint32_t span = mm_ps_span(n->ps);
	if (span == 0)
		return;
	mm_sel_cand_t c[64];
	unsigned nc = 0;
	uint32_t start = (uint32_t)(mm_random() % span);
	uint64_t now = mm_now_ms();
	mm_pidx_t tmp[MM_PS_MAX_NB];
	for (uint32_t k = 0; k < span && k < 4096 && nc < 64; k++) {
		mm_pidx_t x = (start + k) % span;
		const uint8_t *id = mm_ps_id(n->ps, x);
		if (id == NULL || !mm_ps_live(n->ps, x) || memcmp(id, n->id.id, 32) == 0 ||
		    mm_ps_confirmed(n->ps, x, tmp, 1) == 0 || find_peer(n, id) != NULL ||
		    book_find(n, id) != NULL || mm_node_banned_id(n, id))
			continue;
		int recent = 0;
		for (unsigned i = 0; i < INTRO_RING; i++)
			recent |= n->intro[i].ms != 0 && now - n->intro[i].ms < INTRO_AGAIN_MS &&
			    memcmp(n->intro[i].id, id, 32) == 0;
		if (recent)
			continue;
		c[nc].idx = x;
		c[nc].tag = x;
		c[nc].id = NULL;
		c[nc].known_long = 0;
		nc++;
	}
	if (nc == 0)
		return;
	mm_sel_policy_t pol = {.kind = n->cfg.select_policy, .self = n->id.id,
	    .thin_below = tb};
	mm_sel_rank_policy(&pol, n->ps, nb, nnb, target, n->ncls ? n->cls : NULL, n->ncls,
	    c, nc, mm_random());
	if (!c[0].room || c[0].thin)
		return;
	const uint8_t *dst = mm_ps_id(n->ps, c[0].idx);
	if (dst == NULL)
		return;
	struct intro_sent *r = &n->intro[n->intro_next++ % INTRO_RING];
	memcpy(r->id, dst, 32);
	r->ms = now;
	bump(&n->st_intro_out);
	(void)post_send(n, dst, NULL, 0, hdr, sizeof(hdr), NULL, 0, 1, NULL);
}

/* ---- operator controls: protected peers, addresses compared -------------------- */

static int
is_protected(mm_node_t *n, const uint8_t id[32])
{
	pthread_mutex_lock(&n->prot_mu);
	int yes = 0;
	for (unsigned i = 0; i < n->nprot && !yes; i++)
		yes = memcmp(n->prot[i], id, 32) == 0;
	pthread_mutex_unlock(&n->prot_mu);
	return yes;
}

/* Same family, address and port (what mm_parse_hostport fills in). */
static int
same_sockaddr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
		return x->sin6_port == y->sin6_port &&
		    memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
	}
	return 0;
}

/* A bootstrap address's peer is redialled by the bootstrap logic (one
 * dial in flight per address): the selector leaves it alone. */
static int
is_boot_id(const mm_node_t *n, const uint8_t *id)
{
	for (unsigned i = 0; i < n->nboot; i++)
		if (n->boot[i].state != B_REMOVED && n->boot[i].id_known &&
		    memcmp(n->boot[i].id, id, 32) == 0)
			return 1;
	return 0;
}

static void
select_round(mm_node_t *n)
{
	uint64_t now = mm_now_ms();
	unsigned target = n->cfg.degree, max = n->cfg.max_degree;
	if (n->stopping)
		return;
	mm_pidx_t nb[MAX_PEERS];
	uint8_t elig[MAX_PEERS];
	uint64_t since[MAX_PEERS];
	struct peer *pp[MAX_PEERS];
	/* deg: every link (the overlap is about all of them); cnt: the links
	 * that count towards the degree (in relay mode, those we dialled: the
	 * inbound ones are for newcomers and are never dropped here); own:
	 * those of them that are not thin (thin_below). A link is judged
	 * once it is min_link_ms old. */
	unsigned deg = 0, cnt = 0, own = 0;
	unsigned tb = thin_below(n);
	note_full(n, tb);
	int thin = -1; /* the youngest thin link that may be dropped */
	unsigned nthin = 0;
	for (int i = 0; i < n->peers_hi; i++) {
		struct peer *p = &n->peers[i];
		if (p->conn == NULL)
			continue;
		int counts = !n->cfg.relay || !p->inbound;
		int old = now - p->since_ms >= n->cfg.min_link_ms;
		int prot = is_protected(n, p->id);
		pp[deg] = p;
		nb[deg] = mm_ps_lookup(n->ps, p->id);
		elig[deg] = counts && old && !prot;
		since[deg] = p->since_ms;
		int th = elig[deg] && is_thin(n, nb[deg], tb);
		if (th && (thin < 0 || since[deg] > since[thin]))
			thin = (int)deg;
		nthin += (unsigned)th;
		cnt += (unsigned)counts;
		own += (unsigned)(counts && !th);
		deg++;
	}
	unsigned wo = 0;
	mm_sel_policy_t pol = {.kind = n->cfg.select_policy, .self = n->id.id,
	    .thin_below = tb};
	int w = mm_sel_worst_policy(&pol, n->ps, nb, deg, elig, since, &wo);
	n->sel_own = own;
	n->sel_reserve = nthin > 0 && own < target ?
	    (nthin < target - own ? nthin : target - own) : 0;
	/* A thin link goes first, as soon as we have the target without it
	 * or need its slot to dial; over the target otherwise, the worst. */
	if (thin >= 0 && (own >= target || cnt >= max)) {
		kick(n, pp[thin], 1);
		return;
	}
	if (own > target) {
		if (w >= 0)
			kick(n, pp[w], 0);
		return;
	}
	unsigned inflight = 0, used = 0;
	for (unsigned i = 0; i < n->nbook; i++) {
		inflight += n->book[i].used && n->book[i].dialling;
		used += n->book[i].used;
	}
	atomic_store_explicit(&n->a_book, used, memory_order_relaxed);
	if (cnt + inflight >= max || deg + inflight >= n->cfg.map.max_neighbours_temp)
		return;
	mm_sel_cand_t *c = malloc(sizeof(*c) * (n->nbook ? n->nbook : 1));
	if (c == NULL)
		return;
	unsigned nc = 0;
	for (unsigned i = 0; i < n->nbook; i++) {
		struct addr *a = &n->book[i];
		if (!a->used || a->dialling || a->next_ms > now || find_peer(n, a->id) != NULL ||
		    is_boot_id(n, a->id) || mm_node_banned_id(n, a->id))
			continue;
		c[nc].idx = mm_ps_lookup(n->ps, a->id);
		c[nc].tag = i;
		c[nc].id = a->id;
		c[nc].known_long = known_long(a, now);
		nc++;
	}
	if (nc == 0) {
		/* Nobody left to try: ask a random neighbour for more, and ask a
		 * peer we know only from the map to dial us. */
		if (deg > 0 && own < target) {
			unsigned k = (unsigned)(mm_random() % deg);
			ask_peers(n, pp[k]);
			introduce(n, nb, deg, target, tb);
		}
		free(c);
		return;
	}
	mm_sel_rank_policy(&pol, n->ps, nb, deg, target, n->ncls ? n->cls : NULL, n->ncls,
	    c, nc, mm_random());
	if (own + inflight < target) {
		/* Candidates with room first (the ranking puts them there); a
		 * full one only while we are short of half the target or to
		 * join another component: dialling full peers from 11 links
		 * only moves the gap around the network. */
		unsigned want = target - own - inflight, dialled = 0, across = 0;
		for (unsigned i = 0; i < nc && dialled < want && dialled < DIALS_PER_ROUND; i++) {
			/* While thin links hold our slots, full peers too: the
			 * gap is theirs to move (the peer drops its worst and
			 * someone with room fills it), not ours to keep. A thin
			 * peer (ranked last) only while we are short of half. */
			if (((!c[i].room && nthin == 0) || c[i].thin) && !c[i].other_comp &&
			    own * 2 >= target)
				break;
			/* One dial a round into another component: after a crash
			 * the dead region is one (until it is forgotten), and
			 * every dial there fails; the rest go to peers with room.
			 * With three a round the survivors of a 30% crash kept
			 * 10.2 to 10.6 links of 12 until the dead were forgotten,
			 * 150 s later (meshmap sim, 300 nodes). */
			if (c[i].other_comp && (across++ > 0 || now < n->across_next_ms))
				continue;
			if (c[i].other_comp)
				mm_log(MM_LOG_WARN, "node: partition repair: dialling a peer "
				    "in another component of the map");
			bump(c[i].other_comp ? &n->st_dl_comp : c[i].thin ? &n->st_dl_thin :
			    c[i].room ? &n->st_dl_room : &n->st_dl_full);
			n->book[c[i].tag].across = c[i].other_comp;
			book_dial(n, &n->book[c[i].tag]);
			dialled++;
		}
		if (dialled == 0) {
			if (nthin > 0 && deg > 0) /* its candidates are thin: more */
				ask_peers(n, pp[mm_random() % deg]);
			introduce(n, nb, deg, target, tb);
		}
	} else if (inflight == 0 && (c[0].other_comp ? now >= n->across_next_ms :
	    (w >= 0 && c[0].room && !c[0].thin && c[0].overlap + n->cfg.replace_margin <= wo &&
	    (n->last_replace_ms == 0 || now - n->last_replace_ms >= n->cfg.replace_ms)))) {
		/* At the target: a candidate clearly better than our worst
		 * neighbour (or a bridge to another component). Link first; the
		 * next rounds drop the worst. Only to a candidate with room (a
		 * full one would have to drop someone in turn), and at most one
		 * replacement per replace_ms: each one moves two links. */
		n->last_replace_ms = now;
		mm_log(MM_LOG_INFO, "node: replacing a neighbour (overlap %u) by a "
		    "candidate (overlap %u%s)", wo, c[0].overlap,
		    c[0].other_comp ? ", another component" : "");
		bump(c[0].other_comp ? &n->st_dl_comp : &n->st_dl_repl);
		n->book[c[0].tag].across = c[0].other_comp;
		book_dial(n, &n->book[c[0].tag]);
	}
	free(c);
}

/* Keep the address book fresh: ask one random neighbour. Without it a
 * node would only know the peers its neighbours knew when each link came
 * up, and could not reach across a partition. */
static void
px_round(mm_node_t *n)
{
	struct peer *pp[MAX_PEERS];
	unsigned k = 0;
	for (int i = 0; i < n->peers_hi; i++)
		if (n->peers[i].conn != NULL)
			pp[k++] = &n->peers[i];
	if (k > 0)
		ask_peers(n, pp[mm_random() % k]);
}

/* ---- anti-entropy (seed 004) --------------------------------------------------------- */

/* The newest frame of each origin in the log: *slot_of_newest, by log
 * slot, set for those; returns how many. */
static unsigned
log_newest(mm_node_t *n, uint8_t *newest)
{
	memset(newest, 0, n->log_cap);
	if (n->log_n == 0)
		return 0;
	/* newest first; an origin already taken is skipped (sorted ids) */
	uint8_t (*seen)[32] = malloc((size_t)n->log_n * 32);
	if (seen == NULL)
		return 0;
	unsigned ns = 0;
	for (uint32_t k = 0; k < n->log_n; k++) {
		uint32_t slot = (n->log_next + n->log_cap - 1 - k) % n->log_cap;
		const uint8_t *id = n->logm[slot].id;
		/* binary search in the sorted prefix, then insert */
		unsigned lo = 0, hi = ns;
		while (lo < hi) {
			unsigned mid = (lo + hi) / 2;
			int c = memcmp(seen[mid], id, 32);
			if (c == 0) {
				lo = UINT32_MAX;
				break;
			}
			if (c < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo == UINT32_MAX)
			continue;
		memmove(seen[lo + 1], seen[lo], (size_t)(ns - lo) * 32);
		memcpy(seen[lo], id, 32);
		ns++;
		newest[slot] = 1;
	}
	free(seen);
	return ns;
}

/* Every ae_ms: tell one random neighbour the newest (origin, seq) we can
 * deliver (at most 1024 origins, the most recent first); it asks for what
 * its map lacks (want) and we send those frames. What gossip dropped (a
 * full mailbox, a copy that arrived with ttl 0) is repaired this way. */
static void
ae_round(mm_node_t *n)
{
	struct peer *pp[MAX_PEERS];
	unsigned k = 0;
	uint64_t now = mm_now_ms();
	for (int i = 0; i < n->peers_hi; i++)
		if (n->peers[i].conn != NULL && (n->peers[i].asked_ms == 0 ||
		    now - n->peers[i].asked_ms >= n->cfg.req_refill_ms))
			pp[k++] = &n->peers[i];
	if (k == 0 || n->log_n == 0)
		return;
	struct peer *p = pp[mm_random() % k];
	uint8_t *newest = malloc(n->log_cap);
	uint8_t *ents = malloc((size_t)MM_WIRE_DIGEST_MAX * MM_WIRE_DIGEST_ENT);
	if (newest == NULL || ents == NULL) {
		free(newest);
		free(ents);
		return;
	}
	log_newest(n, newest);
	unsigned ne = 0;
	for (uint32_t j = 0; j < n->log_n && ne < MM_WIRE_DIGEST_MAX; j++) {
		uint32_t slot = (n->log_next + n->log_cap - 1 - j) % n->log_cap;
		if (!newest[slot])
			continue;
		uint8_t *e = ents + (size_t)ne++ * MM_WIRE_DIGEST_ENT;
		memcpy(e, n->logm[slot].id, 32);
		put_be32(e + 32, n->logm[slot].seq);
	}
	mm_wire_msg_t m = {.type = MM_W_DIGEST};
	m.u.digest.ents = (mm_bytes_t){ents, ne * MM_WIRE_DIGEST_ENT};
	int rc = send_records(n, p->conn, &m, m.u.digest.ents.len);
	free(newest);
	free(ents);
	if (rc != 0)
		return;
	p->asked_ms = p->digest_ms = now;
	bump(&n->st_ae_sent);
}

/* Of (origin, seq) entries (digest, ihave), the origins whose seq is above
 * our map's (or that it lacks), asked of conn in one message of `type`
 * (want, iwant). recent: skip the origins asked of any link at that seq or
 * higher within IWANT_RETRY_MS (the answer may be on its way), and note
 * the others. At most `most` (st_ask_deferred counts the rest). Returns
 * how many were asked. */
/* Keep an ihave entry to ask for at the ihave timer (ask_later). Full or
 * out of memory: it goes without (anti-entropy brings it). */
static void
toask_add(mm_node_t *n, struct peer *p, const uint8_t *e)
{
	if (p->ntoask == p->toask_cap) {
		uint32_t nc = p->toask_cap ? p->toask_cap * 2 : 64;
		if (nc > TOASK_MAX)
			return;
		uint8_t *t = realloc(p->toask, (size_t)nc * MM_WIRE_DIGEST_ENT);
		if (t == NULL)
			return;
		p->toask = t;
		p->toask_cap = nc;
	}
	memcpy(p->toask + (size_t)p->ntoask++ * MM_WIRE_DIGEST_ENT, e, MM_WIRE_DIGEST_ENT);
	if (!mm_timer_armed(&n->ihave_t))
		mm_timer_arm(&n->ihave_t, n->cfg.ihave_ms);
}

static unsigned
ask_missing(mm_node_t *n, mm_actor_t *conn, const uint8_t *ents, unsigned ne, int type,
    int recent, uint64_t most, struct peer *later)
{
	unsigned nw = 0;
	uint8_t *ids = malloc((size_t)(ne ? ne : 1) * (32 + sizeof(mm_pidx_t)));
	if (ids == NULL)
		return 0;
	mm_pidx_t *xs = (mm_pidx_t *)(ids + (size_t)(ne ? ne : 1) * 32);
	mm_ps_lookup_many(n->ps, ents, MM_WIRE_DIGEST_ENT, ne, xs);
	uint64_t now = mm_now_ms();
	for (unsigned i = 0; i < ne; i++) {
		const uint8_t *e = ents + (size_t)i * MM_WIRE_DIGEST_ENT;
		uint32_t seq = get_be32(e + 32);
		if (memcmp(e, n->id.id, 32) == 0)
			continue; /* nobody knows our record better than we do */
		mm_pidx_t x = xs[i];
		if (x != MM_PIDX_NONE && mm_ps_seq(n->ps, x) >= seq)
			continue;
		if (nw >= most) { /* the answers would go over its budget */
			bump(&n->st_ask_deferred);
			if (later != NULL)
				toask_add(n, later, e);
			continue;
		}
		if (recent) {
			uint64_t k = id_key(n, e);
			struct wanted *w = &n->wanted[(k ^ k >> 32) % WANTED_N];
			if (w->key == k && w->seq >= seq && now - w->ms < IWANT_RETRY_MS)
				continue;
			w->key = k;
			w->seq = seq;
			w->ms = now;
		}
		memcpy(ids + (size_t)nw++ * 32, e, 32);
	}
	if (nw > 0) {
		mm_wire_msg_t m = {.type = (uint8_t)type};
		if (type == MM_W_WANT)
			m.u.want.ids = (mm_bytes_t){ids, nw * 32};
		else
			m.u.iwant.ids = (mm_bytes_t){ids, nw * 32};
		if (send_records(n, conn, &m, (size_t)nw * 32) != 0)
			nw = 0;
	}
	free(ids);
	return nw;
}

/* A neighbour's digest: ask for every origin it has newer than our map. */
static void
digest_in(mm_node_t *n, struct peer_msg *pm)
{
	struct peer *p = request_from(n, pm, "digest over the request rate");
	if (p == NULL)
		return;
	/* at most half the room left in the link's event budget: the
	 * answers count against it, and its pushes need the rest; what is
	 * left out is asked at a later round */
	unsigned nw = ask_missing(n, pm->conn, pm->blob, pm->blen / MM_WIRE_DIGEST_ENT,
	    MM_W_WANT, 0, event_room(n, p, mm_now_ms()) / 2, NULL);
	atomic_fetch_add_explicit(&n->st_ae_wanted, nw, memory_order_relaxed);
}

/* Asked events (want, iwant): the newest frame we hold of each origin in
 * ids, at most a quarter of the write cap queued per answer; the origins
 * left over wait in the link's owed list until the connection has written
 * out what went before (MM_CONN_DRAIN, then serve_owed). A newcomer asking
 * a join sync's remainder (2,500 origins: 1.5 MB of frames) would
 * otherwise pass write_cap and be cut as a slow reader. The owed list
 * holds at most event_burst origins (what its asks may cost); beyond it
 * they are not served (asked again at a later digest or ihave). Returns
 * the frames queued now. */
struct served {
	uint32_t slot, age; /* age: 0 for the log's oldest frame */
	uint8_t full;
};

/* Selection order: whole lists first, then newest first (send_log's). */
static int
served_pick(const void *a, const void *b)
{
	const struct served *x = a, *y = b;
	if (x->full != y->full)
		return x->full ? -1 : 1;
	return x->age > y->age ? -1 : x->age < y->age;
}

static int
served_age(const void *a, const void *b)
{
	const struct served *x = a, *y = b;
	return x->age < y->age ? -1 : x->age > y->age;
}

static uint64_t
serve_ids(mm_node_t *n, struct peer *p, const uint8_t *ids, uint32_t nids)
{
	if (nids == 0 || n->log_n == 0 || p->conn == NULL)
		return 0;
	/* Only the slots asked for: an iwant names a few origins, the log
	 * holds thousands of frames, and a walk of the whole log per answer
	 * was 7% of a 400-node simulation's CPU. */
	struct served *sv = malloc((size_t)nids * sizeof(*sv));
	if (sv == NULL)
		return 0;
	uint32_t first = (n->log_next + n->log_cap - n->log_n) % n->log_cap, ns = 0;
	for (uint32_t i = 0; i < nids; i++) {
		int slot = lix_get(n, ids + (size_t)i * 32);
		if (slot < 0)
			continue; /* gone from the log */
		sv[ns].slot = (uint32_t)slot;
		sv[ns].age = ((uint32_t)slot + n->log_cap - first) % n->log_cap;
		sv[ns].full = n->logm[slot].full != 0;
		ns++;
	}
	qsort(sv, ns, sizeof(*sv), served_pick);
	uint32_t w = 0; /* unique slots, in selection order */
	for (uint32_t i = 0; i < ns; i++)
		if (w == 0 || sv[i].slot != sv[w - 1].slot)
			sv[w++] = sv[i];
	ns = w;
	uint64_t cap = n->cfg.net.write_cap / 4, bytes = 0;
	uint32_t fit = 0; /* the first always fits (send_log's rule) */
	while (fit < ns && (fit == 0 || bytes + n->log[sv[fit].slot]->len <= cap))
		bytes += n->log[sv[fit++].slot]->len;
	/* the rest is owed (by id: its slot may be reused meanwhile) */
	for (uint32_t i = fit; i < ns && p->nowed < n->cfg.event_burst; i++) {
		if (p->owed == NULL &&
		    (p->owed = malloc((size_t)n->cfg.event_burst * 32)) == NULL)
			break;
		memcpy(p->owed + (size_t)p->nowed++ * 32, n->logm[sv[i].slot].id, 32);
	}
	qsort(sv, fit, sizeof(*sv), served_age); /* sent oldest first */
	struct chunker ck = {.n = n, .conn = p->conn};
	uint64_t sent = 0;
	for (uint32_t i = 0; i < fit && chunk_put(&ck, n->log[sv[i].slot]) == 0; i++)
		sent++;
	chunk_flush(&ck);
	free(sv);
	out_charge(n, p, sent, mm_now_ms());
	if (p->nowed > 0 && !p->drain_out) {
		mm_msg_t m = {.type = MM_CONN_DRAIN};
		if (mm_send_or_drop(p->conn, &m) == 0)
			p->drain_out = 1;
		else if (!mm_timer_armed(&n->ihave_t)) /* tried again at its flush */
			mm_timer_arm(&n->ihave_t, n->cfg.ihave_ms);
	}
	return sent;
}

/* The link has taken what we queued before (N_DRAINED), or the ihave
 * timer tries again: the next part of what it asked. */
static void
serve_owed(mm_node_t *n, struct peer *p)
{
	p->drain_out = 0;
	if (p->nowed == 0 || p->conn == NULL)
		return;
	uint8_t *ids = p->owed;
	uint32_t k = p->nowed;
	p->owed = NULL;
	p->nowed = 0;
	uint64_t sent = serve_ids(n, p, ids, k);
	free(ids);
	atomic_fetch_add_explicit(&n->st_paced, sent, memory_order_relaxed);
}

/* The answer to our digest: the newest frame we hold of each origin asked. */
static void
want_in(mm_node_t *n, struct peer_msg *pm)
{
	struct peer *p = peer_of_conn(n, pm->conn);
	if (p == NULL)
		return;
	uint64_t now = mm_now_ms();
	if (p->digest_ms == 0 || now - p->digest_ms > 30000) {
		misbehaved(n, p, 10, MM_WERR_ORDER, "want without a digest");
		return;
	}
	p->digest_ms = 0; /* one answer per digest */
	uint64_t sent = serve_ids(n, p, pm->blob, pm->blen / 32);
	atomic_fetch_add_explicit(&n->st_ae_served, sent, memory_order_relaxed);
}

/* A neighbour's ihave: ask it (iwant) for the origins whose seq is above
 * our map's, unless we asked someone for that one within IWANT_RETRY_MS
 * (its copy may be on the way). One event token per frame: the entries
 * cost a map lookup each, no verify. */
static void
ihave_in(mm_node_t *n, struct peer_msg *pm)
{
	struct peer *p = peer_of_conn(n, pm->conn);
	if (p == NULL)
		return;
	uint64_t now = mm_now_ms();
	if (event_budget(n, &p->ev_tok, &p->ev_ms, now) != 0) {
		bump(&n->st_rate);
		misbehaved(n, p, 1, MM_WERR_RATE, "ihave over the event rate");
		return;
	}
	unsigned ne = pm->blen / MM_WIRE_DIGEST_ENT;
	atomic_fetch_add_explicit(&n->st_ih_rx, ne, memory_order_relaxed);
	unsigned nw = ask_missing(n, pm->conn, pm->blob, ne, MM_W_IWANT, 1,
	    event_room(n, p, now) / 2, p);
	atomic_fetch_add_explicit(&n->st_iw_sent, nw, memory_order_relaxed);
}

/* The ihave timer: what a link's ihaves offered that our budget for it
 * had no room to ask for then (a join sync's announced remainder beyond
 * half the burst), asked now as far as the room allows; what we have
 * meanwhile is skipped, the rest waits for the next round. Without it
 * only anti-entropy brought those origins (at most 1,024 a round). */
static void
ask_later(mm_node_t *n, struct peer *p)
{
	uint8_t *ents = p->toask;
	uint32_t ne = p->ntoask;
	p->toask = NULL;
	p->ntoask = p->toask_cap = 0;
	if (p->conn != NULL) {
		unsigned nw = ask_missing(n, p->conn, ents, ne, MM_W_IWANT, 1,
		    event_room(n, p, mm_now_ms()) / 2, p);
		atomic_fetch_add_explicit(&n->st_iw_sent, nw, memory_order_relaxed);
	}
	free(ents);
}

/* A neighbour's iwant: the newest frame we hold of each origin, from the
 * log, as we logged it. Each id asked costs a token of its own bucket
 * (event_rate, event_burst: what we would accept from it), asked or not
 * by an ihave of ours: over it the id is not served, 1 point a frame. */
static void
iwant_in(mm_node_t *n, struct peer_msg *pm)
{
	struct peer *p = peer_of_conn(n, pm->conn);
	if (p == NULL)
		return;
	unsigned nw = pm->blen / 32, over = 0, ok = 0;
	if (nw == 0 || n->log_n == 0)
		return;
	uint64_t now = mm_now_ms();
	for (unsigned i = 0; i < nw; i++) {
		if (event_budget(n, &p->sv_tok, &p->sv_ms, now) != 0) {
			over++;
			continue;
		}
		/* the ids within the budget, packed in place */
		if (ok != i)
			memmove(pm->blob + (size_t)ok * 32, pm->blob + (size_t)i * 32, 32);
		ok++;
	}
	uint64_t sent = serve_ids(n, p, pm->blob, ok);
	atomic_fetch_add_explicit(&n->st_iw_served, sent, memory_order_relaxed);
	if (over > 0) {
		atomic_fetch_add_explicit(&n->st_iw_over, over, memory_order_relaxed);
		bump(&n->st_rate);
		misbehaved(n, p, 1, MM_WERR_RATE, "iwant over the event rate");
	}
}

/* ---- direct messages (seed §3.4; direct.h) ---------------------------------------- */

static void
put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t
get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

struct req_post {
	uint8_t dst[32];
	uint32_t timeout_ms;
	mm_response_cb cb;
	void *arg;
	uint32_t len;
	uint8_t data[];
};

struct pend;
static void req_done(mm_node_t *n, struct pend *p, int status, const uint8_t *data,
    uint32_t len);
static int post_send(mm_node_t *n, const uint8_t *dst, const uint8_t *route,
    unsigned nroute, const uint8_t *hdr, unsigned hlen, const void *data, uint32_t len,
    int reroute, uint64_t *handle);

/* Encode a routed message into a buffer of its own and queue it on conn. */
static int
send_routed(mm_node_t *n, mm_actor_t *conn, const mm_wire_msg_t *m)
{
	size_t cap = 2048 + (m->type == MM_W_DIRECT ? (size_t)m->u.direct.data.len : 0);
	mm_buf_t *b = mm_buf_alloc((uint32_t)cap);
	if (b == NULL)
		return -ENOMEM;
	int len = mm_wire_encode(m, b->data, b->cap);
	if (len < 0) {
		mm_buf_release(b);
		return len;
	}
	b->len = (uint32_t)len;
	send_buf(n, conn, b);
	return 0;
}

/* A relayed direct message whose only change is `at` (already raised in
 * d): the frame as it came with that one byte rewritten, instead of a
 * decode-encode round (the fast reader's frames: mm_w_direct_t.raw). */
static int
send_direct_raw(mm_node_t *n, mm_actor_t *conn, const mm_w_direct_t *d)
{
	mm_buf_t *b = mm_buf_alloc(MM_FRAME_HDR + d->raw_len);
	if (b == NULL)
		return -ENOMEM;
	mm_frame_put_len(b->data, d->raw_len);
	memcpy(b->data + MM_FRAME_HDR, d->raw, d->raw_len);
	b->data[MM_FRAME_HDR + d->at_off] = d->at; /* a positive fixint, < 16 */
	b->len = MM_FRAME_HDR + d->raw_len;
	send_buf(n, conn, b);
	return 0;
}

/* Remember which message a failure notice will name (SHA-256 of its
 * signature) and the handle its sender got: a ring of the last SENT_MAX. */
static void
sent_remember(mm_node_t *n, const uint8_t sig[64], uint64_t handle)
{
	if (n->sent == NULL && (n->sent = calloc(SENT_MAX, sizeof(*n->sent))) == NULL)
		return; /* a failure notice for it will name nothing we know */
	struct sent *e = &n->sent[n->sent_next++ % SENT_MAX];
	mm_sha256(sig, 64, e->ref);
	e->handle = handle;
}

static void
direct_failed(mm_node_t *n, uint64_t handle, uint32_t code, const uint8_t *relay)
{
	bump(&n->st_dfail);
	for (unsigned i = 0; i < REQ_MAX && n->npend > 0; i++)
		if (n->pend[i].used && n->pend[i].handle == handle) {
			req_done(n, &n->pend[i], MM_RQ_UNREACHABLE, NULL, 0);
			return; /* ours, not the application's datagram */
		}
	if (n->cfg.on_direct_fail != NULL)
		n->cfg.on_direct_fail(n->cfg.direct_arg, handle, code, relay);
}

/* Our shortest path to dst over confirmed edges, as ids (ours first) in
 * ids[16 x 32]: its number of nodes, or < 0 if there is none. BFS: fewest
 * hops; between first hops that reach dst in as few, the lowest RTT. */
#define RTT_TRIES 4 /* first hops compared by RTT, beyond the BFS's own */
static int
path_compute(mm_node_t *n, const uint8_t *dst, uint8_t *ids)
{
	mm_pidx_t path[MM_WIRE_ROUTE_MAX], alt[MM_WIRE_ROUTE_MAX];
	mm_pidx_t a = mm_ps_lookup(n->ps, n->id.id), b = mm_ps_lookup(n->ps, dst);
	int k = a == MM_PIDX_NONE || b == MM_PIDX_NONE ? -ENOENT :
	    mm_ps_path(n->ps, n->q, a, b, path, MM_WIRE_ROUTE_MAX);
	if (k >= 3) {
		/* Ties towards low RTT: the BFS's first hop against our lowest-RTT
		 * links that are not it; one more BFS per link compared. */
		struct peer *cand[RTT_TRIES + 1];
		unsigned hops[RTT_TRIES + 1], nc = 0;
		uint32_t rtt[RTT_TRIES + 1];
		const uint8_t *first = mm_ps_id(n->ps, path[1]);
		struct peer *fp = first != NULL ? find_peer(n, first) : NULL;
		cand[nc] = fp;
		hops[nc] = fp != NULL ? (unsigned)k - 1 : 0;
		rtt[nc++] = fp != NULL ? fp->rtt_us : 0;
		for (unsigned t = 0; t < RTT_TRIES; t++) {
			struct peer *best = NULL;
			for (int i = 0; i < n->peers_hi; i++) {
				struct peer *p = &n->peers[i];
				int taken = 0;
				for (unsigned j = 0; j < nc; j++)
					taken |= cand[j] == p;
				if (p->conn == NULL || p->rtt_us == 0 || taken)
					continue;
				if (best == NULL || p->rtt_us < best->rtt_us)
					best = p;
			}
			if (best == NULL || (fp != NULL && fp->rtt_us != 0 && best->rtt_us >= fp->rtt_us))
				break; /* nobody faster than the BFS's choice */
			mm_pidx_t x = mm_ps_lookup(n->ps, best->id);
			int k2 = x == MM_PIDX_NONE ? -ENOENT :
			    mm_ps_path(n->ps, n->q, x, b, alt, MM_WIRE_ROUTE_MAX - 1);
			cand[nc] = best;
			hops[nc] = k2 > 0 && k2 + 1 <= k ? (unsigned)k2 : 0;
			rtt[nc++] = best->rtt_us;
		}
		int w = mm_route_pick(hops, rtt, nc);
		if (w > 0) { /* another first hop: its path */
			mm_pidx_t x = mm_ps_lookup(n->ps, cand[w]->id);
			int k2 = mm_ps_path(n->ps, n->q, x, b, alt, MM_WIRE_ROUTE_MAX - 1);
			if (k2 > 0) { /* alt starts with x */
				memcpy(path + 1, alt, sizeof(mm_pidx_t) * (size_t)k2);
				k = k2 + 1;
			}
		}
	}
	for (int i = 0; i < k; i++) {
		const uint8_t *id = mm_ps_id(n->ps, path[i]);
		if (id == NULL)
			return -ENOENT;
		memcpy(ids + 32 * i, id, 32);
	}
	return k;
}

/* Routes from us, kept per destination. A BFS over a 100k-peer map takes
 * about 2 ms (bench/README.md, store), path_compute runs up to six, and a
 * route is needed for every message we send and every rewritable message
 * we relay: uncached, a relay of application messages would manage a few
 * hundred a second. An entry holds for RCACHE_MS and only while our links
 * are those it was computed with; a route a little staler than the map
 * costs at worst a failure notice (failure tolerance over guarantees).
 * Direct-mapped by the destination's first bytes: 64 x ~560 B. Not a ck
 * hash table: fixed size, one owner (the node actor), eviction by
 * overwrite is all it needs. */
#define RCACHE_N 64
#define RCACHE_MS 1000
struct rcache {
	uint8_t dst[32];
	uint64_t until_ms;  /* 0: empty */
	uint32_t gen;
	int k;
	uint8_t ids[32 * MM_WIRE_ROUTE_MAX];
};

static int
our_path(mm_node_t *n, const uint8_t *dst, uint8_t *ids)
{
	struct rcache *e = &n->rc[(dst[0] | (unsigned)dst[1] << 8) % RCACHE_N];
	uint64_t now = mm_now_ms();
	if (e->until_ms > now && e->gen == n->links_gen && memcmp(e->dst, dst, 32) == 0) {
		bump(&n->st_route_hit);
		if (e->k > 0)
			memcpy(ids, e->ids, 32u * (unsigned)e->k);
		return e->k;
	}
	int k = path_compute(n, dst, ids);
	bump(&n->st_route_bfs);
	memcpy(e->dst, dst, 32);
	e->until_ms = now + RCACHE_MS;
	e->gen = n->links_gen;
	e->k = k;
	if (k > 0)
		memcpy(e->ids, ids, 32u * (unsigned)k);
	return k;
}

/* Our own message: the route given, or our shortest path. */
static void
send_in(mm_node_t *n, struct peer_msg *pm)
{
	uint8_t route[32 * MM_WIRE_ROUTE_MAX];
	unsigned nr = 0;
	const uint8_t *data = pm->blob + pm->npx * 32u;
	uint32_t len = pm->blen - pm->npx * 32u;
	if (pm->npx != 0) { /* explicit route, ours first */
		nr = pm->npx;
		memcpy(route, pm->blob, 32u * nr);
	} else {
		int k = our_path(n, pm->id, route);
		nr = k > 1 ? (unsigned)k : 0;
	}
	struct peer *next = nr >= 2 ? find_peer(n, route + 32) : NULL;
	mm_wire_msg_t m = {.type = MM_W_DIRECT};
	if (next == NULL || mm_direct_make(&n->id, route, nr, pm->verdict, pm->tag,
	        unix_ms(), data, len, &m.u.direct) != 0) {
		direct_failed(n, pm->tag, MM_DFAIL_NO_ROUTE, n->id.id);
		return;
	}
	sent_remember(n, m.u.direct.sig, pm->tag);
	if (send_routed(n, next->conn, &m) == 0)
		bump(&n->st_dsent);
}

/* The link an application message (direct or broadcast) came in on, if
 * it is still a link and the message fits its budget; else NULL (and the
 * excess is scored). */
static struct peer *
message_from(mm_node_t *n, struct peer_msg *pm, const char *what)
{
	struct peer *from = peer_of_conn(n, pm->conn);
	if (from == NULL)
		return NULL;
	if (bucket_take(&from->dm_tok, &from->dm_ms, mm_now_ms(),
	        (uint64_t)n->cfg.direct_rate * TOKEN / 1000u, n->cfg.direct_burst) != 0) {
		bump(&n->st_rate);
		misbehaved(n, from, 1, MM_WERR_RATE, what);
		return NULL;
	}
	return from;
}

/* Someone asks us to dial it back: if we want links and it is not one
 * already, at most one a second (bursts of 5: no dialling on command). */
static void
intro_in(mm_node_t *n, const uint8_t origin[32], const uint8_t *data, uint32_t len,
    const uint8_t *from_ip)
{
	bump(&n->st_intro_in);
	if (len < 19 || find_peer(n, origin) != NULL || mm_node_banned_id(n, origin) ||
	    atomic_load(&n->npeers) >= n->cfg.degree ||
	    bucket_take(&n->intro_tok, &n->intro_ms, mm_now_ms(), TOKEN / 1000u, 5) != 0)
		return;
	uint16_t port = (uint16_t)(data[17] << 8 | data[18]);
	/* a loopback address only when the message came in over loopback
	 * (else a far node could make us dial our own local services) */
	if (port == 0 || (is_loopback(data + 1) && !is_loopback(from_ip)))
		return;
	book_put(n, origin, data + 1, port, 0);
	struct addr *a = book_find(n, origin);
	if (a == NULL || a->dialling)
		return;
	a->next_ms = 0;
	bump(&n->st_intro_dial);
	book_dial(n, a);
}

/* ---- request / response over direct messages (seed 001) ---------------------------- */

static void
req_done(mm_node_t *n, struct pend *p, int status, const uint8_t *data, uint32_t len)
{
	p->used = 0;
	n->npend--;
	p->cb(p->arg, status, data, len);
}

static void
send_error(mm_node_t *n, const uint8_t *to, uint64_t id, uint32_t code, const char *msg)
{
	(void)mm_node_respond(n, to, id, code, msg, (uint32_t)strlen(msg));
}

/* A verified direct message for us: by its first byte, a datagram for
 * the application, a request for the handler, or the answer to one of
 * our requests. */
static void
deliver(mm_node_t *n, const uint8_t origin[32], const uint8_t *data, uint32_t len,
    int rewritten, const uint8_t *from_ip)
{
	if (len < 1)
		return;
	uint8_t kind = data[0];
	if (kind == MM_DK_DATAGRAM) {
		if (n->cfg.on_direct != NULL)
			n->cfg.on_direct(n->cfg.direct_arg, origin, data + 1, len - 1, rewritten);
		return;
	}
	if (kind == MM_DK_INTRO) {
		intro_in(n, origin, data, len, from_ip);
		return;
	}
	if (len < 9)
		return;
	uint64_t id = get_be64(data + 1);
	if (kind == MM_DK_REQUEST) {
		bump(&n->st_rq_in);
		if (n->cfg.on_request != NULL)
			n->cfg.on_request(n->cfg.direct_arg, origin, id, data + 9, len - 9);
		else
			send_error(n, origin, id, MM_RQ_ENOHANDLER, "no request handler");
		return;
	}
	if (kind != MM_DK_RESPONSE && kind != MM_DK_ERROR)
		return;
	for (unsigned i = 0; i < REQ_MAX && n->npend > 0; i++) {
		struct pend *p = &n->pend[i];
		if (!p->used || p->id != id || memcmp(p->dst, origin, 32) != 0)
			continue;
		if (kind == MM_DK_RESPONSE) {
			req_done(n, p, 0, data + 9, len - 9);
		} else if (len >= 13) {
			uint32_t code = (uint32_t)data[9] << 24 | (uint32_t)data[10] << 16 |
			    (uint32_t)data[11] << 8 | data[12];
			req_done(n, p, code ? (int)(code & 0x7fffffff) : MM_RQ_ENOHANDLER,
			    data + 13, len - 13);
		}
		return;
	}
	bump(&n->st_rq_late); /* timed out already, or not ours */
}

static void
request_in(mm_node_t *n, struct req_post *r)
{
	unsigned inflight = 0, freeslot = REQ_MAX;
	if (n->pend == NULL && (n->pend = calloc(REQ_MAX, sizeof(*n->pend))) == NULL) {
		r->cb(r->arg, MM_RQ_BUSY, NULL, 0);
		return;
	}
	for (unsigned i = 0; i < REQ_MAX; i++) {
		if (n->pend[i].used)
			inflight += memcmp(n->pend[i].dst, r->dst, 32) == 0;
		else if (freeslot == REQ_MAX)
			freeslot = i;
	}
	if (inflight >= n->cfg.req_inflight_max || freeslot == REQ_MAX) {
		r->cb(r->arg, MM_RQ_BUSY, NULL, 0);
		return;
	}
	struct pend *p = &n->pend[freeslot];
	p->used = 1;
	n->npend++;
	memcpy(p->dst, r->dst, 32);
	p->id = mm_random();
	p->cb = r->cb;
	p->arg = r->arg;
	p->deadline = mm_now_ms() + r->timeout_ms;
	uint8_t hdr[9];
	hdr[0] = MM_DK_REQUEST;
	put_be64(hdr + 1, p->id);
	bump(&n->st_rq_out);
	if (post_send(n, r->dst, NULL, 0, hdr, 9, r->data, r->len, 1, &p->handle) != 0)
		req_done(n, p, MM_RQ_UNREACHABLE, NULL, 0);
	else if (!n->req_timer_on) {
		n->req_timer_on = 1;
		mm_timer_arm(&n->req_t, REQ_TICK_MS);
	}
}

/* Every REQ_TICK_MS while requests are pending: time out the late ones. */
static void
req_tick(mm_node_t *n)
{
	uint64_t now = mm_now_ms();
	for (unsigned i = 0; i < REQ_MAX && n->npend > 0; i++)
		if (n->pend[i].used && n->pend[i].deadline <= now) {
			bump(&n->st_rq_timeout);
			req_done(n, &n->pend[i], MM_RQ_TIMEOUT, NULL, 0);
		}
	n->req_timer_on = n->npend > 0;
	if (n->req_timer_on)
		mm_timer_arm(&n->req_t, REQ_TICK_MS);
}

/* The direct (0) or broadcast (1) dedup ring, made at its first use;
 * NULL if there is no memory for it (the message is then dropped:
 * without the ring a replay could not be told from the first copy). */
static mm_dedup_t *
ring(mm_node_t *n, int which)
{
	mm_dedup_t **r = which == 0 ? &n->ddedup : &n->bdedup;
	if (*r == NULL && mm_dedup_create(&n->dd_cfg[which], r) != 0) {
		*r = NULL;
		mm_log(MM_LOG_WARN, "node: no memory for the %s dedup ring: message dropped",
		    which == 0 ? "direct message" : "broadcast");
	}
	return *r;
}

static void
direct_in(mm_node_t *n, struct peer_msg *pm)
{
	struct peer *from = message_from(n, pm, "direct messages over their rate");
	if (from == NULL)
		return;
	mm_w_direct_t *d = &pm->wm->u.direct;
	int v = mm_direct_hop_check(d, n->id.id, from->id);
	if (v != MM_D_OK) {
		bump(&n->st_dbad);
		mm_log(MM_LOG_WARN, "node: direct message refused: %s", mm_direct_verdict_name(v));
		misbehaved(n, from, 10, MM_WERR_BAD_PARAMS, mm_direct_verdict_name(v));
		return;
	}
	unsigned nr = d->route.len / 32;
	const uint8_t *dst = d->route.ptr + d->route.len - 32;
	if (d->at == nr - 1) {
		/* For us: a replay is dropped before any verify; a message is
		 * recorded only once it verified (a forgery raced ahead cannot
		 * get the genuine one dropped). */
		uint32_t now32 = (uint32_t)mm_now_ms();
		mm_dedup_t *dd = ring(n, 0);
		if (dd == NULL)
			return;
		if (mm_dedup_seen_bytes(dd, d->sig, 64, now32)) {
			bump(&n->st_ddup);
			return;
		}
		v = mm_direct_verify(d, n->cfg.gossip.difficulty, unix_ms(),
		    n->cfg.direct_max_age_ms);
		if (v != MM_D_OK) {
			bump(&n->st_dbad);
			mm_log(MM_LOG_WARN, "node: direct message refused: %s",
			    mm_direct_verdict_name(v));
			misbehaved(n, from, 10, MM_WERR_BAD_SIG, mm_direct_verdict_name(v));
			return;
		}
		mm_dedup_add_bytes(dd, d->sig, 64, now32);
		bump(&n->st_ddelivered);
		uint8_t origin[32];
		mm_id_of(d->pub, origin);
		deliver(n, origin, d->data.ptr, d->data.len, d->has_rw, from->ip);
		return;
	}
	/* A relay. The next hop, unless our map knows a strictly shorter way
	 * (or the next hop is gone) and the origin allowed one rewrite. */
	const uint8_t *nexthop = d->route.ptr + 32u * (d->at + 1u);
	struct peer *next = find_peer(n, nexthop);
	unsigned remaining = nr - 1u - d->at; /* hops from us to dst */
	uint8_t path[32 * MM_WIRE_ROUTE_MAX], buf[32 * MM_WIRE_ROUTE_MAX];
	const uint8_t *suffix = path + 32; /* our path without us */
	unsigned ns = 0;
	if (d->rr && !d->has_rw) {
		int k = our_path(n, dst, path);
		if (k >= 2 && (next == NULL || (unsigned)(k - 1) < remaining))
			ns = (unsigned)k - 1;
	}
	mm_wire_msg_t out = {.type = MM_W_DIRECT};
	if (ns != 0 && find_peer(n, suffix) != NULL &&
	    mm_direct_rewrite(&n->id, d, suffix, ns, buf, &out.u.direct) == 0) {
		next = find_peer(n, suffix);
		bump(&n->st_drewrite);
		mm_log(MM_LOG_INFO, "node: direct message rerouted (%u hops left instead of %u%s)",
		    ns, remaining, find_peer(n, nexthop) == NULL ? ", next hop gone" : "");
	} else {
		out.u.direct = *d;
	}
	if (next == NULL) {
		/* Failure tolerance over guarantees: drop, and tell the origin. */
		mm_wire_msg_t f = {.type = MM_W_DFAIL};
		if (mm_direct_fail(&n->id, d, MM_DFAIL_UNREACHABLE, buf, &f.u.dfail) == 0)
			(void)send_routed(n, from->conn, &f);
		bump(&n->st_ddropped);
		return;
	}
	out.u.direct.at++;
	if ((out.u.direct.raw_len != 0 ? send_direct_raw(n, next->conn, &out.u.direct) :
	    send_routed(n, next->conn, &out)) == 0)
		bump(&n->st_drelayed);
}

static void
dfail_in(mm_node_t *n, struct peer_msg *pm)
{
	struct peer *from = peer_of_conn(n, pm->conn);
	if (from == NULL)
		return;
	mm_w_dfail_t *f = &pm->wm->u.dfail;
	const uint8_t *r = f->route.ptr;
	unsigned nr = f->route.len / 32;
	if (memcmp(r + 32u * f->at, n->id.id, 32) != 0 ||
	    memcmp(r + 32u * (f->at - 1u), from->id, 32) != 0) {
		misbehaved(n, from, 10, MM_WERR_BAD_PARAMS, "failure notice: not the next hop");
		return;
	}
	if (f->at + 1u < nr) { /* on its way back: relay it, never reroute */
		struct peer *next = find_peer(n, r + 32u * (f->at + 1u));
		if (next != NULL) {
			mm_wire_msg_t out;
			routed_msg(pm->wm, &out);
			out.u.dfail.at++;
			(void)send_routed(n, next->conn, &out);
		}
		return;
	}
	if (mm_dfail_verify(f, n->cfg.gossip.difficulty) != MM_D_OK) {
		misbehaved(n, from, 10, MM_WERR_BAD_SIG, "failure notice: bad signature");
		return;
	}
	for (unsigned i = 0; i < SENT_MAX && n->sent != NULL; i++)
		if (memcmp(n->sent[i].ref, f->ref, 32) == 0) {
			direct_failed(n, n->sent[i].handle, f->code, r);
			return;
		}
}

/* ---- broadcast on topics (seed 002 step 3) ------------------------------------------- */

static uint64_t
topic_hash(const mm_node_t *n, const uint8_t *t, uint32_t len)
{
	return mm_siphash13(n->hk0, n->hk1, t, len);
}

static int
peer_wants(const struct peer *p, uint64_t th)
{
	if (p->sub_all)
		return 1;
	for (unsigned i = 0; i < p->nsub; i++)
		if (p->sub[i] == th)
			return 1;
	return 0;
}

static int
we_deliver(const mm_node_t *n, const mm_bytes_t *topic)
{
	for (unsigned i = 0; i < n->ntopics; i++)
		if (strlen(n->topics[i]) == topic->len &&
		    memcmp(n->topics[i], topic->ptr, topic->len) == 0)
			return 1;
	return 0;
}

/* Our topics to one link (or every link: p NULL). */
static void
send_subs(mm_node_t *n, struct peer *only)
{
	mm_wire_msg_t *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return;
	m->type = MM_W_SUBS;
	unsigned k = 0;
	if (n->cfg.relay_topics)
		m->u.subs.topic[k++] = (mm_bytes_t){(const uint8_t *)"*", 1};
	for (unsigned i = 0; i < n->ntopics && k < MM_WIRE_SUBS_MAX; i++)
		m->u.subs.topic[k++] = (mm_bytes_t){(const uint8_t *)n->topics[i],
		    (uint32_t)strlen(n->topics[i])};
	m->u.subs.count = (uint16_t)k;
	mm_buf_t *b = mm_buf_alloc(MM_WIRE_SUBS_MAX * (MM_WIRE_TOPIC_MAX + 2) + 64);
	int len = b != NULL ? mm_wire_encode(m, b->data, b->cap) : -ENOMEM;
	free(m);
	if (len < 0) {
		mm_buf_release(b);
		return;
	}
	b->len = (uint32_t)len;
	for (int i = 0; i < n->peers_hi; i++) {
		struct peer *p = &n->peers[i];
		if (p->conn == NULL || (only != NULL && p != only))
			continue;
		mm_buf_ref(b);
		send_buf(n, p->conn, b);
	}
	mm_buf_release(b);
}

static void
subs_in(mm_node_t *n, struct peer_msg *pm)
{
	struct peer *p = peer_of_conn(n, pm->conn);
	if (p == NULL)
		return;
	bump(&n->st_subs);
	p->sub_all = pm->blob[0];
	p->nsub = 0;
	if (pm->npx == 0)
		return;
	uint64_t *t = realloc(p->sub, 8u * pm->npx);
	if (t == NULL) {
		mm_log(MM_LOG_WARN, "node: no memory for a peer's %u topics: it gets "
		    "none until it names them again", (unsigned)pm->npx);
		return;
	}
	p->sub = t;
	p->nsub = (uint8_t)pm->npx;
	memcpy(p->sub, pm->blob + 1, 8u * pm->npx);
}

/* A broadcast to every link that wants its topic, but the one it came from
 * and its origin: encoded once, the same bytes to all. */
static void
bcast_forward(mm_node_t *n, const mm_wire_msg_t *m, const struct peer *from)
{
	const mm_w_bcast_t *b = &m->u.bcast;
	uint64_t th = topic_hash(n, b->topic.ptr, b->topic.len);
	uint8_t origin[32];
	mm_id_of(b->pub, origin);
	mm_buf_t *buf = NULL;
	for (int i = 0; i < n->peers_hi; i++) {
		struct peer *p = &n->peers[i];
		if (p->conn == NULL || p == from || !peer_wants(p, th) ||
		    memcmp(p->id, origin, 32) == 0)
			continue;
		if (buf == NULL) {
			buf = mm_buf_alloc(b->data.len + 512);
			int len = buf != NULL ? mm_wire_encode(m, buf->data, buf->cap) : -ENOMEM;
			if (len < 0) {
				mm_buf_release(buf);
				return;
			}
			buf->len = (uint32_t)len;
		}
		mm_buf_ref(buf);
		send_buf(n, p->conn, buf);
		bump(&n->st_bfwd);
	}
	mm_buf_release(buf);
}

/* The key a broadcast is known by: its signature and a keyed hash of its
 * payload (a copy with a genuine signature and other bytes is another
 * message, so a forgery raced ahead cannot shadow the genuine one). */
static void
bcast_key(const mm_node_t *n, const mm_w_bcast_t *b, uint8_t key[72])
{
	memcpy(key, b->sig, 64);
	uint64_t h = mm_siphash13(n->hk0, n->hk1 ^ 0x6263617374ull,
	    b->data.ptr != NULL ? b->data.ptr : key, b->data.len);
	memcpy(key + 64, &h, 8);
}

static void
bcast_in(mm_node_t *n, struct peer_msg *pm)
{
	struct peer *from = message_from(n, pm, "broadcasts over their rate");
	if (from == NULL)
		return;
	mm_w_bcast_t *b = &pm->wm->u.bcast;
	bump(&n->st_brx);
	uint8_t key[72];
	bcast_key(n, b, key);
	uint32_t now32 = (uint32_t)mm_now_ms();
	mm_dedup_t *bd = ring(n, 1);
	if (bd == NULL)
		return;
	if (we_deliver(n, &b->topic)) {
		/* ours: verified before it is delivered or passed on */
		if (mm_dedup_seen_bytes(bd, key, sizeof(key), now32)) {
			bump(&n->st_bdup);
			return;
		}
		uint8_t sb[MM_WIRE_BCAST_SIGNED_LEN];
		mm_wire_bcast_signed_bytes(b, sb);
		uint64_t now = unix_ms();
		if (b->ts + n->cfg.direct_max_age_ms < now || b->ts > now + n->cfg.direct_max_age_ms ||
		    !mm_pow_ok(b->pub, b->pow, n->cfg.gossip.difficulty) ||
		    mm_id_verify(b->pub, sb, sizeof(sb), b->sig) != 1) {
			bump(&n->st_bbad);
			misbehaved(n, from, 10, MM_WERR_BAD_SIG, "bad broadcast");
			return;
		}
		mm_dedup_add_bytes(bd, key, sizeof(key), now32);
		bump(&n->st_bdeliv);
		if (n->cfg.on_bcast != NULL) {
			uint8_t origin[32];
			mm_id_of(b->pub, origin);
			n->cfg.on_bcast(n->cfg.direct_arg, (const char *)b->topic.ptr,
			    b->topic.len, origin, b->data.ptr, b->data.len);
		}
	} else if (mm_dedup_check_bytes(bd, key, sizeof(key), now32)) {
		/* only relaying: no verify here (the subscribers verify) */
		bump(&n->st_bdup);
		return;
	}
	if (b->ttl == 0)
		return;
	b->ttl--;
	mm_wire_msg_t out;
	routed_msg(pm->wm, &out);
	bcast_forward(n, &out, from);
}

static void
publish_in(mm_node_t *n, struct peer_msg *pm)
{
	mm_wire_msg_t m = {.type = MM_W_BCAST};
	mm_w_bcast_t *b = &m.u.bcast;
	b->topic = (mm_bytes_t){pm->blob, pm->npx};
	b->data = (mm_bytes_t){pm->blob + pm->npx, pm->blen - pm->npx};
	memcpy(b->pub, n->id.pub, 32);
	b->pow = n->id.nonce;
	b->nonce = pm->tag;
	b->ts = unix_ms();
	b->ttl = n->cfg.bcast_ttl;
	uint8_t sb[MM_WIRE_BCAST_SIGNED_LEN], key[72];
	mm_wire_bcast_signed_bytes(b, sb);
	if (mm_id_sign(&n->id, sb, sizeof(sb), b->sig) != 0)
		return;
	bcast_key(n, b, key);
	mm_dedup_t *bd = ring(n, 1);
	if (bd == NULL)
		return;
	mm_dedup_add_bytes(bd, key, sizeof(key), (uint32_t)mm_now_ms());
	bump(&n->st_bpub);
	bcast_forward(n, &m, NULL);
}

static void
subscribe_in(mm_node_t *n, struct peer_msg *pm)
{
	char t[MM_WIRE_TOPIC_MAX + 1];
	memcpy(t, pm->blob, pm->blen);
	t[pm->blen] = '\0';
	unsigned i = 0;
	while (i < n->ntopics && strcmp(n->topics[i], t) != 0)
		i++;
	if (pm->verdict) { /* subscribe */
		if (i < n->ntopics || n->ntopics == MM_WIRE_SUBS_MAX - 1)
			return;
		memcpy(n->topics[n->ntopics++], t, pm->blen + 1);
	} else {
		if (i == n->ntopics)
			return;
		memcpy(n->topics[i], n->topics[--n->ntopics], sizeof(n->topics[0]));
	}
	send_subs(n, NULL);
}

/* ---- bans from the operator ---------------------------------------------------------- */

/* Close every link whose id or address is banned now (after an operator's
 * ban: new connections are refused at accept or at the handshake). */
static void
enforce_bans(mm_node_t *n)
{
	uint64_t now = unix_ms() / 1000;
	for (int i = 0; i < n->peers_hi; i++) {
		struct peer *p = &n->peers[i];
		if (p->conn == NULL)
			continue;
		pthread_mutex_lock(&n->bans_mu);
		int hit = mm_bans_match_id(n->bans, p->id, now) != NULL ||
		    mm_bans_match_addr(n->bans, p->ip, now) != NULL;
		pthread_mutex_unlock(&n->bans_mu);
		if (hit) {
			mm_msg_t m = {.type = MM_CONN_CLOSE, .aux = MM_WERR_BANNED};
			(void)mm_send(p->conn, &m);
		}
	}
}

int
mm_node_ban(mm_node_t *n, const mm_ban_t *b)
{
	pthread_mutex_lock(&n->bans_mu);
	mm_bans_expire(n->bans, unix_ms() / 1000);
	int rc = mm_bans_add(n->bans, b);
	pthread_mutex_unlock(&n->bans_mu);
	if (rc == 0) {
		bump(&n->st_bans);
		mm_msg_t m = {.type = N_ENFORCE};
		(void)mm_send(n->actor, &m);
	}
	return rc;
}

int
mm_node_unban(mm_node_t *n, uint8_t kind, const uint8_t *key, uint8_t plen)
{
	pthread_mutex_lock(&n->bans_mu);
	int rc = mm_bans_remove(n->bans, kind, key, plen);
	pthread_mutex_unlock(&n->bans_mu);
	return rc;
}

int
mm_node_bans(mm_node_t *n, mm_ban_t *out, unsigned cap)
{
	pthread_mutex_lock(&n->bans_mu);
	mm_bans_expire(n->bans, unix_ms() / 1000);
	unsigned k = 0, c = mm_bans_count(n->bans);
	for (unsigned i = 0; i < c && k < cap; i++)
		out[k++] = *mm_bans_at(n->bans, i);
	pthread_mutex_unlock(&n->bans_mu);
	return (int)k;
}

/* ---- the peer table, for the admin interface --------------------------------------- */

struct dump_req {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done, abandoned;  /* under mu */
	unsigned cap, n;
	mm_node_peer_info_t out[]; /* the request's own: the caller may be gone */
};

static void
dump_free(struct dump_req *r)
{
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

/* Hand the answer over, or free it if the caller stopped waiting. */
static void
dump_finish(struct dump_req *r, unsigned k)
{
	pthread_mutex_lock(&r->mu);
	int gone = r->abandoned;
	r->n = k;
	r->done = 1;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
	if (gone)
		dump_free(r);
}

static void
dump_peers(mm_node_t *n, struct dump_req *r)
{
	uint64_t now = mm_now_ms();
	unsigned k = 0;
	for (int i = 0; i < n->peers_hi && k < r->cap; i++) {
		struct peer *p = &n->peers[i];
		if (p->conn == NULL)
			continue;
		mm_node_peer_info_t *o = &r->out[k++];
		memcpy(o->id, p->id, 32);
		memcpy(o->ip, p->ip, 16);
		o->port = p->port;
		o->inbound = p->inbound;
		o->age_s = (uint32_t)((now - p->since_ms) / 1000u);
		o->rtt_us = p->rtt_us;
		o->score = p->score;
		memcpy(o->misb, p->misb, sizeof(o->misb));
		o->protected_ = (uint8_t)is_protected(n, p->id);
	}
	dump_finish(r, k);
}

int
mm_node_peer_list(mm_node_t *n, mm_node_peer_info_t *out, unsigned cap,
    unsigned timeout_ms)
{
	struct dump_req *r = calloc(1, sizeof(*r) + (size_t)cap * sizeof(*out));
	if (r == NULL)
		return -ENOMEM;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	r->cap = cap;
	mm_msg_t m = {.type = N_DUMP, .ptr = r};
	if (mm_send(n->actor, &m) != 0) {
		dump_free(r);
		return -EAGAIN;
	}
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += timeout_ms / 1000;
	dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&r->mu);
	while (!r->done)
		if (pthread_cond_timedwait(&r->cv, &r->mu, &dl) == ETIMEDOUT)
			break;
	if (!r->done) { /* the node actor frees it when it gets there */
		r->abandoned = 1;
		pthread_mutex_unlock(&r->mu);
		return -ETIMEDOUT;
	}
	pthread_mutex_unlock(&r->mu);
	int k = (int)r->n;
	memcpy(out, r->out, (size_t)r->n * sizeof(*out));
	dump_free(r);
	return k;
}

/* ---- persistence ----------------------------------------------------------------- */

/* The snapshot format stores peers of a PeerStore: the verified addresses
 * go through a small store of their own (the map's records are built by
 * signed events only, and an address must not make a record live). */
static mm_ps_t *
book_store(const mm_node_t *n)
{
	mm_ps_config_t c;
	mm_ps_config_default(&c);
	c.max_peers = n->cfg.addr_max + 64;
	mm_ps_t *ps;
	return mm_ps_create(&c, &ps) == 0 ? ps : NULL;
}

static void
snapshot_save(mm_node_t *n)
{
	if (n->snap_path == NULL)
		return;
	mm_ps_t *ps = book_store(n);
	if (ps == NULL)
		return;
	for (unsigned i = 0; i < n->nbook; i++) {
		struct addr *a = &n->book[i];
		if (!a->used || !a->verified)
			continue;
		mm_ps_addr_t pa = {.port = a->port};
		memcpy(pa.ip, a->ip, 16);
		(void)mm_ps_set_addr(ps, a->id, &pa, 1);
	}
	pthread_mutex_lock(&n->bans_mu);
	mm_bans_expire(n->bans, unix_ms() / 1000);
	int rc = mm_snap_save(n->snap_path, ps, n->bans, unix_ms() / 1000, 1);
	pthread_mutex_unlock(&n->bans_mu);
	mm_ps_destroy(ps);
	if (rc != 0)
		mm_log(MM_LOG_WARN, "node: cannot save the snapshot %s: %s", n->snap_path,
		    strerror(-rc));
	else
		bump(&n->st_snaps);
}

/* At create, before the actor runs. */
static void
snapshot_load(mm_node_t *n)
{
	mm_ps_t *ps = book_store(n);
	if (ps == NULL)
		return;
	char err[256] = "";
	uint32_t np = 0, nb = 0;
	int rc = mm_snap_load(n->snap_path, ps, n->bans, unix_ms() / 1000, 1, err,
	    sizeof(err), &np, &nb);
	if (rc == -ENOENT) {
		mm_log(MM_LOG_INFO, "node: no snapshot at %s yet", n->snap_path);
	} else if (rc != 0) {
		/* Kept aside for a look, not overwritten by our next save. */
		char aside[4200];
		snprintf(aside, sizeof(aside), "%s.bad", n->snap_path);
		int moved = rc == -EINVAL && rename(n->snap_path, aside) == 0;
		mm_log(MM_LOG_WARN, "node: snapshot %s not loaded, starting clean: %s%s%s",
		    n->snap_path, err[0] ? err : strerror(-rc), moved ? "; kept as " : "",
		    moved ? aside : "");
	} else {
		/* Addresses from the last run: dialled like hearsay (the peer
		 * may have moved), each expecting its id. */
		uint32_t span = mm_ps_span(ps), put = 0;
		for (mm_pidx_t i = 0; i < span; i++) {
			mm_ps_addr_t a;
			const uint8_t *id = mm_ps_id(ps, i);
			if (id == NULL || mm_ps_get_addr(ps, i, &a) != 0)
				continue;
			book_put(n, id, a.ip, a.port, 0);
			put++;
		}
		atomic_store(&n->st_snap_peers, put);
		atomic_store(&n->st_snap_bans, nb);
		mm_log(MM_LOG_INFO, "node: snapshot %s: %u addresses, %u bans", n->snap_path,
		    put, nb);
	}
	mm_ps_destroy(ps);
}

/* ---- map upkeep ------------------------------------------------------------------ */

/* Right after an analysis with classes: live records in another
 * component than ours that have been silent for unreachable_s go, by
 * their shards (a crashed region; or the far side of a partition, which
 * its next events restore after the heal). Without this a dead region's
 * edges among themselves stay confirmed in every map for the record ttl
 * (an hour): no map is exact and every node reports a split. Also, once
 * our component has grown back past its size when we forgot, re-announce
 * our links: the far side forgot us as well. */
static void refresh_links(mm_node_t *n);

/* Records the node actor found unreachable: each shard clears its own. */
struct forget_msg {
	uint32_t n;
	mm_pidx_t idx[];
};

static void
forget_unreachable(mm_node_t *n)
{
	uint32_t comp = 0, nf = 0, now = store_now(n), age = n->cfg.unreachable_s;
	for (uint32_t i = 0; i < n->ncls; i++) {
		comp += n->cls[i] == 1 || n->cls[i] == 2;
		nf += n->cls[i] == 3 && age != 0 && now - mm_ps_updated(n->ps, i) >= age;
	}
	if (n->forgot_comp != 0 && comp > n->forgot_comp) {
		mm_log(MM_LOG_INFO, "node: our component grew from %u to %u peers since "
		    "we forgot unreachable ones: announcing our links again", n->forgot_comp,
		    comp);
		n->forgot_comp = 0;
		refresh_links(n);
	}
	n->forgot_last = 0;
	if (nf == 0)
		return;
	for (unsigned s = 0; s < n->nshards; s++) {
		struct forget_msg *f = malloc(sizeof(*f) + (size_t)nf * sizeof(mm_pidx_t));
		if (f == NULL)
			return;
		f->n = 0;
		for (uint32_t i = 0; i < n->ncls; i++)
			if (n->cls[i] == 3 && now - mm_ps_updated(n->ps, i) >= age)
				f->idx[f->n++] = i;
		mm_msg_t m = {.type = G_FORGET, .ptr = f};
		if (mm_send(n->shard[s].actor, &m) != 0)
			free(f);
	}
	mm_log(MM_LOG_WARN, "node: forgetting %u peers unreachable from us and silent "
	    "for %u s (crashed, or beyond a partition)", nf, age);
	n->forgot_comp = comp;
	n->forgot_last = 1;
}

static void
analyse_round(mm_node_t *n)
{
	mm_ps_graph_t g;
	if (mm_ps_analyse(n->ps, n->q, 1, &g) != 0)
		return;
	/* Where every peer sits relative to us (the selector prefers a link
	 * that joins another component or makes a bridge redundant). Only
	 * once we have a confirmed link: alone, everyone is "elsewhere". */
	n->ncls = 0;
	mm_pidx_t self = mm_ps_lookup(n->ps, n->id.id), tmp[1];
	uint32_t span = mm_ps_span(n->ps);
	if (self != MM_PIDX_NONE && mm_ps_confirmed(n->ps, self, tmp, 1) > 0) {
		if (span > n->ncls_cap) {
			uint8_t *c = realloc(n->cls, span);
			if (c == NULL)
				goto counts;
			n->cls = c;
			n->ncls_cap = span;
		}
		mm_psq_bridge_side(n->ps, n->q, self, n->cls, span);
		n->ncls = span;
	}
counts:;
	if (n->ncls != 0)
		forget_unreachable(n);
	/* A split is two groups of linked peers or more. A record alone (a
	 * component of one) is a peer that left, its links retracted by its
	 * peers, until the map forgets it (unreachable_s), or a newcomer not
	 * linked yet: under churn there is nearly always one, and warning
	 * of a partition for each was noise. */
	uint32_t was = atomic_load(&n->a_comp) - atomic_load(&n->a_iso);
	uint32_t groups = g.components - g.isolated;
	atomic_store(&n->a_comp, g.components);
	atomic_store(&n->a_iso, g.isolated);
	atomic_store(&n->a_largest, g.largest);
	atomic_store(&n->a_bridges, g.bridges);
	atomic_store(&n->a_art, g.articulation);
	if (groups > 1 && was <= 1)
		mm_log(MM_LOG_WARN, "node: partition: the map splits into %u groups of linked "
		    "peers (largest %u of %u peers; %u more alone)", groups, g.largest, g.nodes,
		    g.isolated);
	else if (groups <= 1 && was > 1 && n->forgot_last)
		mm_log(MM_LOG_WARN, "node: the peers we could not reach for %u s are "
		    "forgotten: one component of %u peers", n->cfg.unreachable_s, g.nodes);
	else if (groups <= 1 && was > 1)
		mm_log(MM_LOG_WARN, "node: partition healed: one group of %u linked peers "
		    "(%u more alone)", g.largest, g.isolated);
}

/* ---- bootstrap addresses ------------------------------------------------------- */

static void
boot_dial(mm_node_t *n, unsigned i)
{
	struct boot *b = &n->boot[i];
	if (b->state == B_REMOVED || n->stopping)
		return;
	/* With selection on, a bootstrap is for finding the network: once we
	 * have our links, look again later instead of loading it. */
	if (n->cfg.select_ms != 0 &&
	    atomic_load(&n->npeers) >= n->cfg.degree) {
		b->state = B_WAIT;
		mm_timer_arm(&b->timer, jitter(n->cfg.redial_max_ms));
		return;
	}
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
	mm_timer_arm(&b->timer, jitter(b->backoff_ms));
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

static void
boot_conn_event(mm_node_t *n, struct peer_msg *pm, int up)
{
	if (pm->tag == 0 || pm->tag > n->nboot)
		return;
	struct boot *b = &n->boot[pm->tag - 1];
	if (b->state == B_REMOVED)
		return;
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

/* Inbound links still shielded from the selector (younger than min_link_ms). */
static unsigned
young_inbound_links(const mm_node_t *n, uint64_t now)
{
	unsigned k = 0;
	for (int i = 0; i < n->peers_hi; i++)
		k += n->peers[i].conn != NULL && n->peers[i].inbound &&
		    now - n->peers[i].since_ms < n->cfg.min_link_ms;
	return k;
}

/* Is there no room for one more link? Normally max_degree links in all;
 * in relay mode max_degree links we dialled plus max_inbound accepted,
 * and never more than the map's claim limit (every map would refuse the
 * claim). */
static int
no_slot(mm_node_t *n, int inbound)
{
	unsigned all = atomic_load(&n->npeers);
	/* While thin links hold slots we need for honest ones, those slots
	 * are for our own dials: a freed one would go to the next attacker
	 * dialling in, before our dial could use it. */
	if (!n->cfg.relay)
		return all + (inbound ? n->sel_reserve : 0) >= n->cfg.max_degree;
	unsigned in = 0;
	for (int i = 0; i < n->peers_hi; i++)
		in += n->peers[i].conn != NULL && n->peers[i].inbound;
	if (all >= n->cfg.map.max_neighbours_temp)
		return 1;
	return inbound ? in >= n->cfg.max_inbound : all - in >= n->cfg.max_degree;
}

/* ---- inbound eviction by address range ---------------------------------------
 * Many addresses in one range are cheap (a /16 of IPv4 is one provider,
 * often one attacker); distinct ranges are not. An attacker could take
 * every inbound slot from one range and then keep honest newcomers out: a
 * first step to eclipsing us (seed 002; Bitcoin Core evicts by netgroup for
 * the same reason). So a newcomer from a range that holds fewer of our
 * inbound links than the most crowded one may take the slot of the
 * youngest link of that range. The longer-lived half of the inbound links
 * (and protected peers) are never evicted: a peer that has served us for
 * a long time keeps its slot, whatever its range. A newcomer from the
 * crowded range itself evicts nobody, so the attacker cannot cycle slots. */
static uint64_t
ip_range(const uint8_t ip[16])
{
	static const uint8_t v4[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	if (memcmp(ip, v4, 12) == 0) /* IPv4: its /16 */
		return 1ull << 32 | (uint64_t)ip[12] << 8 | ip[13];
	return (uint64_t)ip[0] << 24 | (uint64_t)ip[1] << 16 | (uint64_t)ip[2] << 8 | ip[3];
}

static unsigned
inbound_in_range(const mm_node_t *n, uint64_t range)
{
	unsigned k = 0;
	for (int i = 0; i < n->peers_hi; i++)
		k += n->peers[i].conn != NULL && n->peers[i].inbound &&
		    ip_range(n->peers[i].ip) == range;
	return k;
}

/* The inbound link a newcomer from ip may replace, or NULL. */
static struct peer *
evict_for(mm_node_t *n, const uint8_t ip[16])
{
	struct peer *c[MAX_PEERS];
	unsigned nc = 0;
	for (int i = 0; i < n->peers_hi; i++) {
		struct peer *p = &n->peers[i];
		if (p->conn != NULL && p->inbound && !is_protected(n, p->id))
			c[nc++] = p;
	}
	/* oldest first (insertion sort: 32 links at most) */
	for (unsigned i = 1; i < nc; i++)
		for (unsigned j = i; j > 0 && c[j - 1]->since_ms > c[j]->since_ms; j--) {
			struct peer *t = c[j];
			c[j] = c[j - 1];
			c[j - 1] = t;
		}
	struct peer *best = NULL;
	unsigned most = 0;
	for (unsigned i = (nc + 1) / 2; i < nc; i++) { /* the younger half */
		unsigned k = inbound_in_range(n, ip_range(c[i]->ip));
		if (k > most || (k == most && best != NULL && c[i]->since_ms > best->since_ms))
			best = c[i], most = k;
	}
	if (best == NULL || most < 2 || inbound_in_range(n, ip_range(ip)) + 1 >= most)
		return NULL;
	return best;
}

static void peer_up(mm_node_t *n, struct peer_msg *pm);

/* The evicted link is down: the waiting newcomer takes its slot (through
 * peer_up again: it may have been banned, or have linked another way, in
 * between). */
static void
admit_waiting(mm_node_t *n)
{
	struct peer_msg w = {.conn = n->wait_in.conn, .inbound = 1, .port = n->wait_in.port};
	memcpy(w.id, n->wait_in.id, 32);
	memcpy(w.ip, n->wait_in.ip, 16);
	n->wait_in.conn = n->wait_in.evicted = NULL;
	peer_up(n, &w);
}

static void
peer_up(mm_node_t *n, struct peer_msg *pm)
{
	boot_conn_event(n, pm, 1);
	struct addr *ba = book_of_tag(n, pm->tag);
	if (ba != NULL)
		book_dial_done(n, ba, 1);
	if (n->stopping) {
		mm_msg_t m = {.type = MM_CONN_CLOSE, .aux = MM_WERR_SHUTDOWN};
		(void)mm_send(pm->conn, &m);
		mm_actor_unref(pm->conn);
		return;
	}
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
	/* We shook hands with it at this address: worth keeping (its
	 * listening port, from its hello, at the address it came from). */
	book_put(n, pm->id, pm->ip, pm->port, 1);
	struct addr *bk = book_find(n, pm->id);
	if (bk != NULL && bk->barred_ms > mm_now_ms() && !is_protected(n, pm->id)) {
		bump(&n->st_barred);
		mm_log(MM_LOG_INFO, "node: peer %02x%02x%02x%02x refused: the selector "
		    "dropped it; barred for %llu s more", pm->id[0], pm->id[1], pm->id[2],
		    pm->id[3], (unsigned long long)((bk->barred_ms - mm_now_ms()) / 1000));
		refuse_link(n, pm);
		return;
	}
	/* At the target, a peer we have known for a while and never saw well
	 * linked that is still thin (few confirmed links, or none left in
	 * the map) is not let in: the slot would go to a lone eclipse
	 * attacker. Below the target it is (a survivor of a crash has few
	 * links too), and judged later. */
	if (pm->inbound && bk != NULL && n->sel_own >= n->cfg.degree &&
	    known_long(bk, mm_now_ms()) && !is_protected(n, pm->id)) {
		unsigned tb = thin_below(n);
		if (is_thin(n, mm_ps_lookup(n->ps, pm->id), tb)) {
			bump(&n->st_refused_thin);
			mm_log(MM_LOG_INFO, "node: peer %02x%02x%02x%02x refused: thin (fewer "
			    "than %u confirmed links) and we are at the target", pm->id[0],
			    pm->id[1], pm->id[2], pm->id[3], tb);
			refuse_link(n, pm);
			return;
		}
	}
	/* At the target, one unjudged inbound link at a time: while an
	 * inbound link is younger than min_link_ms (shielded from the
	 * selector), the next one is refused (a peers answer, then "no
	 * slot"). Clustered attackers otherwise fill the slots above the
	 * target together, and the selector, which may drop only judged
	 * links, drops old honest ones meanwhile (docs/RESULTS-SIM.md,
	 * "One unjudged inbound link at a time"). Not in relay mode, whose
	 * inbound slots are for newcomers. */
	if (n->cfg.young_inbound && pm->inbound && !n->cfg.relay &&
	    atomic_load(&n->npeers) >= n->cfg.degree &&
	    !is_protected(n, pm->id) && young_inbound_links(n, mm_now_ms()) > 0) {
		bump(&n->st_refused_young);
		mm_log(MM_LOG_INFO, "node: peer %02x%02x%02x%02x refused: at the target "
		    "with an inbound link younger than %llu ms", pm->id[0], pm->id[1],
		    pm->id[2], pm->id[3], (unsigned long long)n->cfg.min_link_ms);
		refuse_link(n, pm);
		return;
	}
	/* Over max_degree: refuse the link, but tell the newcomer where else
	 * to go (a peers answer, then "no slot"). */
	int mem = n->pressure >= MM_PRESSURE_CRITICAL;
	if (mem || (no_slot(n, pm->inbound) && !(is_protected(n, pm->id) &&
	    atomic_load(&n->npeers) < n->cfg.map.max_neighbours_temp))) {
		struct peer *v;
		if (!mem && pm->inbound && n->wait_in.conn == NULL &&
		    (v = evict_for(n, pm->ip)) != NULL) {
			bump(&n->st_evicted);
			mm_log(MM_LOG_INFO, "node: inbound slots full: dropping %02x%02x%02x%02x "
			    "(the youngest of %u inbound links from one address range) for "
			    "a newcomer from another range", v->id[0], v->id[1], v->id[2],
			    v->id[3], inbound_in_range(n, ip_range(v->ip)));
			close_no_slot(n, v);
			n->wait_in.conn = pm->conn; /* its reference, now ours */
			n->wait_in.evicted = v->conn;
			memcpy(n->wait_in.id, pm->id, 32);
			memcpy(n->wait_in.ip, pm->ip, 16);
			n->wait_in.port = pm->port;
			return;
		}
		bump(mem ? &n->st_refused_mem : &n->st_full);
		if (mem)
			mm_log(MM_LOG_WARN, "node: peer refused: memory pressure critical");
		else
			mm_log(MM_LOG_INFO, "node: peer refused: %u links already (max %u)",
			    atomic_load(&n->npeers), n->cfg.max_degree);
		refuse_link(n, pm);
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
	memset(p->misb, 0, sizeof(p->misb));
	memcpy(p->ip, pm->ip, 16);
	p->port = pm->port;
	p->ev_ms = p->rq_ms = mm_now_ms();
	p->asked_ms = 0;
	p->ev_tok = (uint64_t)n->cfg.event_burst * TOKEN;
	p->rq_tok = (uint64_t)n->cfg.req_burst * TOKEN;
	p->dm_ms = p->ev_ms;
	p->sub_all = 0;
	p->nsub = 0;
	p->rtt_us = 0;
	p->dm_tok = (uint64_t)n->cfg.direct_burst * TOKEN;
	p->sv_ms = p->ev_ms;
	p->sv_tok = (uint64_t)n->cfg.event_burst * TOKEN;
	p->out_ms = p->ev_ms;
	p->out_tok = out_burst(n) * TOKEN;
	p->doomed = 0;
	p->nih = 0;
	p->nowed = 0;
	p->drain_out = 0;
	atomic_fetch_add(&n->npeers, 1);
	atomic_fetch_add(&n->links_digest, mm_ps_edge_hash(n->id.id, p->id));
	n->links_gen++;
	bump(&n->st_up);
	/* The log first, then our new event: the peer must get our events in
	 * sequence order, or the older ones would arrive stale. */
	sync_peer(n, p->conn);
	local_event(n, MM_PS_CONNECT, pm->id, pm->inbound ? MM_PS_IN : MM_PS_OUT);
	send_subs(n, p);
	/* Discovery: every new link is asked for addresses. */
	if (n->cfg.select_ms != 0)
		ask_peers(n, p);
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
		free(p->ih); /* what it was still to hear of goes unsaid */
		p->ih = NULL;
		p->nih = 0;
		free(p->owed);
		p->owed = NULL;
		p->nowed = 0;
		p->drain_out = 0;
		free(p->toask);
		p->toask = NULL;
		p->ntoask = p->toask_cap = 0;
		free(p->sub);
		p->sub = NULL;
		p->nsub = 0;
		atomic_fetch_sub(&n->npeers, 1);
		atomic_fetch_sub(&n->links_digest, mm_ps_edge_hash(n->id.id, p->id));
		n->links_gen++;
		bump(&n->st_down);
		/* Not straight back to a peer that just went (it may be
		 * restarting, or it dropped us). */
		struct addr *a = book_find(n, p->id);
		if (a != NULL && a->next_ms < mm_now_ms() + n->cfg.redial_min_ms)
			a->next_ms = mm_now_ms() + jitter(4 * n->cfg.redial_min_ms);
		local_event(n, MM_PS_DISCONNECT, p->id, p->inbound ? MM_PS_IN : MM_PS_OUT);
		boot_peer_gone(n, p->id);
		/* A lost link may have split the map: look soon, not at the next
		 * analysis period. */
		mm_timer_arm(&n->analyse_t, 1000);
		break;
	}
	boot_conn_event(n, pm, 0);
	struct addr *ba = book_of_tag(n, pm->tag);
	if (ba != NULL)
		book_dial_done(n, ba, 0); /* no-op if it was up */
	if (n->wait_in.conn != NULL && pm->conn == n->wait_in.conn) {
		/* the newcomer waiting for a slot left first: the evicted
		 * link's slot simply stays free */
		mm_actor_unref(n->wait_in.conn);
		n->wait_in.conn = n->wait_in.evicted = NULL;
	} else if (n->wait_in.conn != NULL && pm->conn == n->wait_in.evicted) {
		admit_waiting(n);
	}
	mm_actor_unref(pm->conn); /* the message's reference */
}

/* Add points to a peer's score; at the ban score, ban it and close with
 * the error code. */
static void
misbehaved(mm_node_t *n, struct peer *p, uint32_t pts, int code, const char *why)
{
	unsigned cause = (unsigned)code % MM_NODE_CAUSES;
	bump(&n->st_misb[cause]);
	if (p->misb[cause] < UINT16_MAX)
		p->misb[cause]++;
	p->score += pts;
	if (p->score < n->cfg.ban_score || p->doomed)
		return;
	ban_peer(n, p->id, p->ip, why);
	mm_msg_t m = {.type = MM_CONN_CLOSE, .aux = (uint32_t)code};
	(void)mm_send(p->conn, &m);
	p->score = 0; /* its close will come as a peer down */
	p->doomed = 1;
}

/* Points for a refused event (see node.h). */
static void
event_refused(mm_node_t *n, struct peer *p, int verdict)
{
	if (verdict == MM_G_BAD_SIG)
		misbehaved(n, p, 100, MM_WERR_BAD_SIG, mm_gossip_verdict_name(verdict));
	else if (verdict == MM_G_BAD_POW)
		misbehaved(n, p, 100, MM_WERR_BAD_POW, mm_gossip_verdict_name(verdict));
	else
		misbehaved(n, p, 10, MM_WERR_BAD_PARAMS, mm_gossip_verdict_name(verdict));
}

static void
event_in(mm_node_t *n, struct peer_msg *pm)
{
	/* Only from peers in the table: a connection refused at ready (banned,
	 * over the degree, the losing duplicate) may still have events in
	 * flight; they are dropped unread. */
	struct peer *from = peer_of_conn(n, pm->conn);
	if (from == NULL || from->doomed) {
		free_pm(pm);
		return;
	}
	if (event_budget(n, &from->ev_tok, &from->ev_ms, mm_now_ms()) != 0) {
		bump(&n->st_rate);
		misbehaved(n, from, 1, MM_WERR_RATE, "events over their rate");
		free_pm(pm);
		return;
	}
	bump(&n->st_in);
	/* To the shard that owns the origin: the checks, the verify and the
	 * map write happen there. The message keeps its reference to conn
	 * (the link it came from: not forwarded back there). */
	/* the origin's shard, found by the connection (cb_message) */
	struct gshard *g = &n->shard[pm->shard < n->nshards ? pm->shard : 0];
	mm_msg_t m = {.type = G_EVENT, .ptr = pm};
	if (mm_send_or_drop(g->actor, &m) != 0) {
		bump(&n->st_dropped);
		free_pm(pm);
	}
}

static void goodbye_close(mm_node_t *n);

/* The end of the throttle window: the changes held, signed as one event
 * by our shard (it comes back as N_FWD, sealed). 1: one is on its way. */
static int
own_flush(mm_node_t *n)
{
	mm_timer_cancel(&n->announce_t);
	if (!n->own_dirty)
		return 0;
	struct peer_msg *pm = calloc(1, sizeof(*pm));
	if (pm == NULL)
		return 0; /* held still: the next change or refresh signs them */
	n->own_dirty = 0;
	n->own_last_ms = mm_now_ms();
	mm_msg_t m = {.type = G_SEAL, .ptr = pm};
	if (mm_send(n->shard[n->own_shard].actor, &m) != 0) {
		free(pm);
		bump(&n->st_dropped);
		return 0;
	}
	return 1;
}

/* A shard's verdict, back on the node actor. */
static void
shard_result(mm_node_t *n, uint32_t type, struct peer_msg *pm)
{
	if (type == N_FWD && pm->sealed) {
		if (pm->buf != NULL)
			broadcast_buf(n, pm->buf, NULL, n->id.id, pm->oseq, 1);
		if (n->bye_wait) {
			n->bye_wait = 0;
			goodbye_close(n);
		}
	} else if (type == N_FWD) {
		/* to every link but the one it came from (pm->conn, or NULL
		 * for our own events) */
		broadcast_buf(n, pm->buf, pm->conn, pm->origin, pm->oseq, pm->ev.has_nb);
	} else if (type == N_LOGONLY) {
		log_frame(n, pm->buf, pm->origin, pm->oseq, pm->ev.has_nb);
	} else if (type == N_VERDICT) {
		struct peer *from = peer_of_conn(n, pm->conn);
		bump(&n->st_bad);
		mm_log(MM_LOG_WARN, "node: event refused: %s",
		    mm_gossip_verdict_name(pm->verdict));
		if (from != NULL)
			event_refused(n, from, pm->verdict);
	}
}

/* ---- gossip shards ----------------------------------------------------------------- */

static void
to_node(struct gshard *g, uint32_t type, struct peer_msg *pm)
{
	mm_msg_t m = {.type = type, .ptr = pm};
	if (mm_send(g->n->actor, &m) != 0) {
		bump(&g->n->st_dropped);
		free_pm(pm);
	}
}

static void
shard_event(struct gshard *g, struct peer_msg *pm)
{
	mm_node_t *n = g->n;
	mm_wire_msg_t fwd = {.type = MM_W_EVENT};
	int v = mm_gossip_receive_sig(g->g, &pm->ev, unix_ms(), store_now(n), pm->sig,
	    &fwd.u.event);
	mm_gossip_stats_t gs; /* the engine is this actor's: publish its counts */
	mm_gossip_stats(g->g, &gs);
	if (gs.verified != g->verified_seen || gs.stale != g->stale_seen) {
		atomic_fetch_add_explicit(&n->st_verify, gs.verified - g->verified_seen,
		    memory_order_relaxed);
		atomic_fetch_add_explicit(&n->st_stale, gs.stale - g->stale_seen,
		    memory_order_relaxed);
		g->verified_seen = gs.verified;
		g->stale_seen = gs.stale;
	}
	if (v == MM_G_FORWARD || v == MM_G_DONE) { /* the log's index */
		mm_id_of(pm->ev.pub, pm->origin);
		pm->oseq = pm->ev.seq;
	}
	if (MM_LOG_DEBUG <= __atomic_load_n(&mm__log_level, __ATOMIC_RELAXED)) {
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
		if ((pm->buf = encode_buf(&fwd)) == NULL) {
			free_pm(pm);
			return;
		}
		to_node(g, N_FWD, pm);
	} else if (v == MM_G_DONE) {
		/* Applied, hops exhausted: not forwarded, but a newcomer still
		 * needs it; logged with ttl 0 so that it goes no further. */
		mm_wire_msg_t last = {.type = MM_W_EVENT};
		last.u.event = pm->ev;
		last.u.event.ttl = 0;
		if ((pm->buf = encode_buf(&last)) == NULL) {
			free_pm(pm);
			return;
		}
		to_node(g, N_LOGONLY, pm);
	} else if (v < 0) {
		pm->verdict = v;
		to_node(g, N_VERDICT, pm);
	} else {
		if (v == MM_G_DUP)
			bump(&n->st_evdup);
		else if (v == MM_G_FULL)
			bump(&n->st_mapfull);
		free_pm(pm);
	}
}

static void
shard_local(struct gshard *g, struct peer_msg *pm)
{
	mm_node_t *n = g->n;
	mm_wire_msg_t m = {.type = MM_W_EVENT};
	int kind = pm->verdict, dir = pm->inbound;
	if (pm->defer) { /* applied now, signed at the window's end */
		if (mm_gossip_local(g->g, kind, pm->id, dir, unix_ms(), store_now(n),
		        NULL) == 0)
			bump(&n->st_local);
		free_pm(pm);
		return;
	}
	if (mm_gossip_local(g->g, kind, pm->id, dir, unix_ms(), store_now(n),
	        &m.u.event) != 0 || (pm->buf = encode_buf(&m)) == NULL) {
		free_pm(pm);
		return;
	}
	bump(&n->st_local);
	bump(&n->st_signed);
	memcpy(pm->origin, n->id.id, 32);
	pm->oseq = m.u.event.seq;
	pm->ev.has_nb = m.u.event.has_nb; /* whole list: older ones are redundant */
	mm_log(MM_LOG_DEBUG, "node: own event %s %02x%02x%02x dir %d seq %u list %u",
	    kind == MM_PS_CONNECT ? "connect" : "disconnect", pm->id[0], pm->id[1],
	    pm->id[2], dir, m.u.event.seq, m.u.event.nnb);
	to_node(g, N_FWD, pm); /* conn NULL: to every link */
}

/* The held changes to our list, signed as one event (own_flush). Always
 * answered, buf NULL if there was nothing to sign: a goodbye waits for it. */
static void
shard_seal(struct gshard *g, struct peer_msg *pm)
{
	mm_node_t *n = g->n;
	mm_wire_msg_t m = {.type = MM_W_EVENT};
	pm->sealed = 1;
	if (mm_gossip_seal(g->g, unix_ms(), store_now(n), &m.u.event) == 0 &&
	    (pm->buf = encode_buf(&m)) != NULL) {
		pm->oseq = m.u.event.seq; /* the origin is us, the list whole */
		bump(&n->st_signed);
	}
	to_node(g, N_FWD, pm);
}

/* Map upkeep for the shard's own records (only the owner writes them). */
static void
shard_gc(struct gshard *g)
{
	mm_ps_gc_t gc;
	mm_ps_expire(g->n->ps, g->idx, store_now(g->n), &gc);
	atomic_fetch_add_explicit(&g->n->st_gc_ph, gc.phantoms, memory_order_relaxed);
	atomic_fetch_add_explicit(&g->n->st_gc_rec, gc.records, memory_order_relaxed);
	mm_timer_arm(&g->gc, g->n->cfg.gc_ms);
}

static void
shard_forget(struct gshard *g, struct forget_msg *f)
{
	unsigned k = mm_ps_forget(g->n->ps, g->idx, f->idx, f->n, store_now(g->n),
	    g->n->cfg.unreachable_s);
	atomic_fetch_add_explicit(&g->n->st_gc_unreach, k, memory_order_relaxed);
	free(f);
}

static void
shard_fn(mm_actor_t *self, const mm_msg_t *m)
{
	struct gshard *g = mm_actor_state(self);
	switch (m->type) {
	case MM_MSG_START:
		mm_timer_init(&g->gc, self, 0);
		mm_timer_arm(&g->gc, g->n->cfg.gc_ms);
		return;
	case MM_MSG_TIMER:
		shard_gc(g);
		return;
	case MM_MSG_STOP:
		mm_timer_cancel(&g->gc);
		return;
	case G_EVENT:
		shard_event(g, m->ptr);
		return;
	case G_LOCAL:
		shard_local(g, m->ptr);
		return;
	case G_SEAL:
		shard_seal(g, m->ptr);
		return;
	case G_FORGET:
		shard_forget(g, m->ptr);
		return;
	default:
		return;
	}
}

static void
shard_drop(const mm_msg_t *m)
{
	if (m->ptr == NULL)
		return;
	if (m->type == G_FORGET)
		free(m->ptr);
	else
		free_pm(m->ptr);
}

/* ---- operator commands (node actor) ---------------------------------------------- */

const uint32_t mm_node_rtt_bounds_us[MM_NODE_RTT_BUCKETS] = {500, 1000, 2500, 5000,
	10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000};

static void
rtt_note(mm_node_t *n, uint32_t us)
{
	unsigned b = 0;
	while (b < MM_NODE_RTT_BUCKETS && us > mm_node_rtt_bounds_us[b])
		b++;
	bump(&n->rtt_hist[b]);
	atomic_fetch_add_explicit(&n->rtt_sum_us, us, memory_order_relaxed);
}

static void
boot_del(mm_node_t *n, const struct boot_add *ba)
{
	for (unsigned i = 0; i < n->nboot; i++) {
		struct boot *b = &n->boot[i];
		if (b->state == B_REMOVED || !same_sockaddr(&b->sa, &ba->sa))
			continue;
		/* a link to it stays, as an ordinary one */
		mm_timer_cancel(&b->timer);
		b->state = B_REMOVED;
		b->id_known = 0;
	}
}

static void
disconnect_in(mm_node_t *n, const uint8_t *id)
{
	struct peer *p = find_peer(n, id);
	if (p == NULL)
		return;
	struct addr *a = book_find(n, id);
	if (a != NULL) /* not redialled by the selector at once */
		a->next_ms = mm_now_ms() + jitter(n->cfg.full_backoff_ms);
	mm_log(MM_LOG_INFO, "node: disconnecting %02x%02x%02x%02x (operator)", id[0],
	    id[1], id[2], id[3]);
	mm_msg_t m = {.type = MM_CONN_CLOSE, .aux = MM_WERR_FULL};
	(void)mm_send(p->conn, &m);
}

/* Graceful stop, first half: no more dials or rounds, the snapshot
 * saved, every link told "shutting down" (error 11) and closed. The
 * caller waits for the links to go, then stops the runtime. */
static void
goodbye_in(mm_node_t *n)
{
	if (n->stopping)
		return;
	n->stopping = 1;
	mm_timer_cancel(&n->select_t);
	mm_timer_cancel(&n->px_t);
	mm_timer_cancel(&n->ae_t);
	mm_timer_cancel(&n->refresh);
	for (unsigned i = 0; i < n->nboot; i++)
		mm_timer_cancel(&n->boot[i].timer);
	snapshot_save(n);
	/* our last list, before the links go: the close waits for it */
	if (own_flush(n))
		n->bye_wait = 1;
	else
		goodbye_close(n);
}

/* Graceful stop, second half: every link told "shutting down". */
static void
goodbye_close(mm_node_t *n)
{
	unsigned k = 0;
	for (int i = 0; i < n->peers_hi; i++)
		if (n->peers[i].conn != NULL) {
			mm_msg_t m = {.type = MM_CONN_CLOSE, .aux = MM_WERR_SHUTDOWN};
			(void)mm_send(n->peers[i].conn, &m);
			k++;
		}
	mm_log(MM_LOG_INFO, "node: goodbye sent to %u peers", k);
}

static void
publish_limits(mm_node_t *n)
{
	atomic_store_explicit(&n->a_degree, n->cfg.degree, memory_order_relaxed);
	atomic_store_explicit(&n->a_max_degree, n->cfg.max_degree, memory_order_relaxed);
	atomic_store_explicit(&n->a_max_inbound, n->cfg.relay ? n->cfg.max_inbound : 0,
	    memory_order_relaxed);
}

static void
reconf_in(mm_node_t *n, const mm_node_tunables_t *t)
{
	int sel = t->select_ms != n->cfg.select_ms, px = t->px_ms != n->cfg.px_ms,
	    ae = t->ae_ms != n->cfg.ae_ms;
	n->cfg.degree = t->degree;
	n->cfg.max_degree = t->max_degree;
	n->cfg.max_inbound = t->max_inbound;
	n->cfg.relay = t->relay;
	n->cfg.select_ms = t->select_ms;
	n->cfg.min_link_ms = t->min_link_ms;
	n->cfg.px_ms = t->px_ms;
	n->cfg.ae_ms = t->ae_ms;
	n->cfg.direct_rate = n->cfg.direct_burst = t->direct_rate;
	publish_limits(n);
	if (n->stopping)
		return;
	if (sel) {
		mm_timer_cancel(&n->select_t);
		if (t->select_ms != 0)
			mm_timer_arm(&n->select_t, jitter(t->select_ms));
	}
	if (sel || px) {
		mm_timer_cancel(&n->px_t);
		if (t->select_ms != 0 && t->px_ms != 0)
			mm_timer_arm(&n->px_t, jitter(t->px_ms));
	}
	if (ae) {
		mm_timer_cancel(&n->ae_t);
		if (t->ae_ms != 0)
			mm_timer_arm(&n->ae_t, jitter(t->ae_ms));
	}
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
		/* the level now: changes after this come as MM_MSG_PRESSURE */
		n->pressure = n->cfg.mem_shed ? (int)mm_rt_pressure(n->rt) : MM_PRESSURE_OK;
		atomic_store_explicit(&n->a_pressure, n->pressure, memory_order_relaxed);
		publish_limits(n);
		mm_timer_init(&n->refresh, self, REFRESH_TIMER);
		mm_timer_arm(&n->refresh, n->cfg.refresh_ms);
		mm_timer_init(&n->select_t, self, SELECT_TIMER);
		if (n->cfg.select_ms != 0)
			mm_timer_arm(&n->select_t, jitter(n->cfg.select_ms));
		mm_timer_init(&n->req_t, self, REQ_TIMER);
		mm_timer_init(&n->ae_t, self, AE_TIMER);
		if (n->cfg.ae_ms != 0)
			mm_timer_arm(&n->ae_t, jitter(n->cfg.ae_ms));
		mm_timer_init(&n->snap_t, self, SNAP_TIMER);
		if (n->snap_path != NULL)
			mm_timer_arm(&n->snap_t, n->cfg.snapshot_ms);
		mm_timer_init(&n->px_t, self, PX_TIMER);
		if (n->cfg.select_ms != 0 && n->cfg.px_ms != 0)
			mm_timer_arm(&n->px_t, jitter(n->cfg.px_ms));
		mm_timer_init(&n->analyse_t, self, ANALYSE_TIMER);
		mm_timer_arm(&n->analyse_t, n->cfg.analyse_ms);
		mm_timer_init(&n->announce_t, self, ANNOUNCE_TIMER);
		mm_timer_init(&n->ihave_t, self, IHAVE_TIMER);
		return;
	case MM_MSG_TIMER:
		if (m->arg == REFRESH_TIMER) {
			refresh_links(n);
		} else if (m->arg == SELECT_TIMER) {
			select_round(n);
			if (n->cfg.select_ms != 0 && !n->stopping)
				mm_timer_arm(&n->select_t, jitter(n->cfg.select_ms));
		} else if (m->arg == REQ_TIMER) {
			req_tick(n);
		} else if (m->arg == AE_TIMER) {
			ae_round(n);
			if (n->cfg.ae_ms != 0 && !n->stopping)
				mm_timer_arm(&n->ae_t, jitter(n->cfg.ae_ms));
		} else if (m->arg == SNAP_TIMER) {
			snapshot_save(n);
			mm_timer_arm(&n->snap_t, n->cfg.snapshot_ms);
		} else if (m->arg == PX_TIMER) {
			px_round(n);
			if (n->cfg.select_ms != 0 && n->cfg.px_ms != 0 && !n->stopping)
				mm_timer_arm(&n->px_t, jitter(n->cfg.px_ms));
		} else if (m->arg == ANALYSE_TIMER) {
			analyse_round(n);
			mm_timer_arm(&n->analyse_t, n->cfg.analyse_ms);
		} else if (m->arg == ANNOUNCE_TIMER) {
			own_flush(n);
		} else if (m->arg == IHAVE_TIMER) {
			ihave_flush(n);
		} else if (m->arg <= n->nboot) {
			boot_dial(n, (unsigned)m->arg - 1);
		}
		return;
	case N_BOOT_ADD: {
		struct boot_add *ba = m->ptr;
		int revived = 0;
		for (unsigned i = 0; i < n->nboot && !revived; i++)
			if (n->boot[i].state == B_REMOVED &&
			    same_sockaddr(&n->boot[i].sa, &ba->sa)) {
				n->boot[i].state = B_WAIT;
				n->boot[i].backoff_ms = n->cfg.redial_min_ms;
				boot_dial(n, i);
				revived = 1;
			}
		if (!revived && n->nboot < MAX_BOOT) {
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
	case N_EVENT: event_in(n, pm); return; /* it owns pm */
	case N_GET_PEERS: get_peers_in(n, pm); free_pm(pm); return;
	case N_PEERS: peers_list_in(n, pm); free_pm(pm); return;
	case N_FULL: full_in(n, pm); free_pm(pm); return;
	case N_DIGEST: digest_in(n, pm); free_pm(pm); return;
	case N_WANT: want_in(n, pm); free_pm(pm); return;
	case N_IHAVE: ihave_in(n, pm); free_pm(pm); return;
	case N_IWANT: iwant_in(n, pm); free_pm(pm); return;
	case N_DIRECT: direct_in(n, pm); free_pm(pm); return;
	case N_DFAIL: dfail_in(n, pm); free_pm(pm); return;
	case N_SEND: send_in(n, pm); free_pm(pm); return;
	case N_BCAST: bcast_in(n, pm); free_pm(pm); return;
	case N_SUBS: subs_in(n, pm); free_pm(pm); return;
	case N_PUBLISH: publish_in(n, pm); free_pm(pm); return;
	case N_SUBSCRIBE: subscribe_in(n, pm); free_pm(pm); return;
	case N_REQUEST: request_in(n, m->ptr); free(m->ptr); return;
	case N_DUMP: dump_peers(n, m->ptr); return;
	case N_ENFORCE: enforce_bans(n); return;
	case MM_MSG_PRESSURE:
		/* Memory: at HIGH no new dials (the links we have stay), at
		 * CRITICAL no new links at all, newcomers refused as "no slot"
		 * with addresses of others. */
		if ((int)m->aux != n->pressure)
			mm_log((int)m->aux > n->pressure ? MM_LOG_WARN : MM_LOG_INFO,
			    "node: memory pressure %s: %s", m->aux == MM_PRESSURE_OK ? "ok" :
			    m->aux == MM_PRESSURE_HIGH ? "high" : "critical",
			    m->aux == MM_PRESSURE_OK ? "dialling and accepting again" :
			    m->aux == MM_PRESSURE_HIGH ? "no new dials" :
			    "no new links (newcomers refused)");
		n->pressure = n->cfg.mem_shed ? (int)m->aux : MM_PRESSURE_OK;
		atomic_store_explicit(&n->a_pressure, (int)m->aux, memory_order_relaxed);
		if (n->pressure >= MM_PRESSURE_HIGH)
			log_shed(n);
		return;
	case N_BOOT_DEL: boot_del(n, m->ptr); free(m->ptr); return;
	case N_DISCONNECT: disconnect_in(n, m->ptr); free(m->ptr); return;
	case N_GOODBYE: goodbye_in(n); return;
	case N_RECONF: reconf_in(n, m->ptr); free(m->ptr); return;
	case N_DRAINED: {
		struct peer *p = peer_of_conn(n, pm->conn);
		if (p != NULL)
			serve_owed(n, p);
		free_pm(pm);
		return;
	}
	case N_RTT: {
		struct peer *p = peer_of_conn(n, pm->conn);
		if (p != NULL)
			p->rtt_us = (uint32_t)pm->verdict ? (uint32_t)pm->verdict : 1;
		rtt_note(n, (uint32_t)pm->verdict);
		free_pm(pm);
		return;
	}
	case N_FWD:
	case N_LOGONLY:
	case N_VERDICT: shard_result(n, m->type, pm); free_pm(pm); return;
	case MM_MSG_STOP:
		mm_timer_cancel(&n->refresh);
		mm_timer_cancel(&n->announce_t);
		mm_timer_cancel(&n->ihave_t);
		n->own_dirty = 0;
		mm_timer_cancel(&n->select_t);
		mm_timer_cancel(&n->analyse_t);
		mm_timer_cancel(&n->px_t);
		mm_timer_cancel(&n->snap_t);
		mm_timer_cancel(&n->ae_t);
		mm_timer_cancel(&n->req_t);
		snapshot_save(n);
		for (unsigned i = 0; i < n->nboot; i++)
			mm_timer_cancel(&n->boot[i].timer);
		release_peers(n);
		return;
	default:
		return;
	}
	free(pm);
}

static void
node_drop(const mm_msg_t *m)
{
	if (m->type == N_ENFORCE)
		return;
	if (m->type == N_DUMP) { /* the node is stopping: an empty answer */
		dump_finish(m->ptr, 0);
		return;
	}
	if (m->type == N_REQUEST) { /* never sent: the caller hears of it */
		struct req_post *r = m->ptr;
		r->cb(r->arg, MM_RQ_UNREACHABLE, NULL, 0);
		free(r);
		return;
	}
	if (m->type == N_BOOT_ADD || m->type == N_BOOT_DEL || m->type == N_DISCONNECT ||
	    m->type == N_RECONF) {
		free(m->ptr);
		return;
	}
	if (m->type == N_GOODBYE)
		return;
	if (m->ptr != NULL)
		free_pm(m->ptr);
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
	c->announce_ms = 500;
	c->redial_min_ms = 500;
	c->redial_max_ms = 60000;
	c->sync_events = 2048;
	c->sync_events_max = 4096;
	c->gossip_eager = 4;
	c->ihave_ms = 100;
	c->ban_score = 100;
	c->ban_s = 86400;
	c->max_bans = 4096;
	c->ban_addresses = 1;
	c->degree = 12;
	c->max_degree = 16;
	/* What the map accepts from any peer: above every honest node's
	 * max_degree, whatever each one chose. */
	c->map.max_neighbours = 12;
	c->map.max_neighbours_temp = MM_PS_MAX_NB;
	c->select_ms = 2000;
	c->min_link_ms = 10000;
	c->replace_margin = 2;
	c->select_policy = MM_SEL_OVERLAP;
	c->replace_ms = 60000;
	c->max_inbound = 16;
	c->direct_rate = 200000;
	c->direct_burst = 200000;
	c->direct_max_age_ms = 600000;
	c->bcast_ttl = 16;
	c->req_inflight_max = 64;
	c->relay_topics = 1;
	c->full_backoff_ms = 60000;
	c->addr_max = 1024;
	c->event_rate = 1000;
	c->event_burst = 4096;
	c->req_refill_ms = 10000;
	c->req_burst = 4;
	c->gc_ms = 5000;
	c->px_ms = 30000;
	c->snapshot_ms = 300000;
	c->ae_ms = 60000;
	c->analyse_ms = 10000;
	c->unreachable_s = 180;
	c->mem_shed = 1;
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
	uint64_t hk[2];
	if (mm_secure_random(hk, sizeof(hk)) != 0) {
		snprintf(err, errlen, "node: no random bytes for the table key");
		goto fail;
	}
	n->hk0 = hk[0];
	n->hk1 = hk[1];
	if (cfg->net.id == NULL || cfg->refresh_ms == 0 || cfg->redial_min_ms == 0 ||
	    cfg->redial_max_ms < cfg->redial_min_ms) {
		snprintf(err, errlen, "node: an identity and a refresh interval are "
		    "required");
		goto fail;
	}
	n->id = *cfg->net.id;
	if (cfg->announce_ms > 60000) {
		snprintf(err, errlen, "node: announce_ms above 60000");
		goto fail;
	}
	if (cfg->sync_events > 1u << 20 || cfg->sync_events_max > 1u << 20) {
		snprintf(err, errlen, "node: sync_events or sync_events_max above 1048576");
		goto fail;
	}
	if (cfg->gossip_eager > MAX_PEERS || (cfg->gossip_eager != 0 &&
	    (cfg->ihave_ms == 0 || cfg->ihave_ms > 10000 || cfg->sync_events == 0))) {
		snprintf(err, errlen, "node: gossip_eager %u: at most %u, and lazy push "
		    "needs ihave_ms in [1, 10000] and a sync log (sync_events) to serve "
		    "from", cfg->gossip_eager, MAX_PEERS);
		goto fail;
	}
	if (cfg->ban_score == 0 || cfg->max_bans == 0) {
		snprintf(err, errlen, "node: ban_score and max_bans must be above 0");
		goto fail;
	}
	if (cfg->relay && cfg->max_degree + cfg->max_inbound > cfg->map.max_neighbours_temp) {
		snprintf(err, errlen, "node: relay mode: max_degree %u + max_inbound %u "
		    "above the map's claim limit (%u)", cfg->max_degree, cfg->max_inbound,
		    cfg->map.max_neighbours_temp);
		goto fail;
	}
	if (cfg->degree == 0 || cfg->max_degree < cfg->degree ||
	    cfg->max_degree > cfg->map.max_neighbours_temp) {
		snprintf(err, errlen, "node: degree %u, max_degree %u: need 1 <= degree <= "
		    "max_degree <= the map's claim limit (%u)", cfg->degree, cfg->max_degree,
		    cfg->map.max_neighbours_temp);
		goto fail;
	}
	if (cfg->addr_max == 0 || cfg->addr_max > 65536 || cfg->event_rate == 0 ||
	    cfg->event_burst == 0 || cfg->req_refill_ms == 0 || cfg->req_burst == 0 ||
	    cfg->gc_ms == 0 || cfg->analyse_ms == 0) {
		snprintf(err, errlen, "node: addr_max must be in [1, 65536]; rates, "
		    "bursts and upkeep intervals above 0");
		goto fail;
	}
	mm_dedup_config_t ddc;
	mm_dedup_config_default(&ddc);
	if (cfg->dedup_capacity != 0)
		ddc.capacity = cfg->dedup_capacity;
	ddc.window_ms = 2 * cfg->direct_max_age_ms > 600000 ? 600000 : 2 * cfg->direct_max_age_ms;
	/* the rings' keys now, in the order they were always drawn (the
	 * simulator's randomness is one stream: a run replays the same) */
	for (int i = 0; i < 2; i++) {
		n->dd_cfg[i] = ddc;
		while (n->dd_cfg[i].key[0] == 0 && n->dd_cfg[i].key[1] == 0)
			if (mm_secure_random(n->dd_cfg[i].key, sizeof(n->dd_cfg[i].key)) != 0) {
				rc = -EIO;
				snprintf(err, errlen, "node: no random bytes for the dedup rings");
				goto fail;
			}
	}
	if ((n->book = calloc(cfg->addr_max, sizeof(*n->book))) == NULL ||
	    (n->q = cfg->query_ctx != NULL ? cfg->query_ctx : mm_psq_new()) == NULL ||
	    (n->rc = calloc(RCACHE_N, sizeof(*n->rc))) == NULL) {
		rc = -ENOMEM;
		snprintf(err, errlen, "node: no memory for the address book");
		goto fail;
	}
	if (cfg->snapshot_path != NULL && cfg->snapshot_ms == 0) {
		snprintf(err, errlen, "node: snapshot_ms must be above 0");
		goto fail;
	}
	pthread_mutex_init(&n->bans_mu, NULL);
	pthread_mutex_init(&n->adv_mu, NULL);
	pthread_mutex_init(&n->prot_mu, NULL);
	n->intro_tok = 5 * TOKEN;
	if ((n->bans = mm_bans_new(cfg->max_bans)) == NULL) {
		rc = -ENOMEM;
		snprintf(err, errlen, "node: no memory for the ban list");
		goto fail;
	}
	if (cfg->snapshot_path != NULL) {
		if ((n->snap_path = strdup(cfg->snapshot_path)) == NULL) {
			rc = -ENOMEM;
			goto fail;
		}
		snapshot_load(n);
	}
	n->log_cap = cfg->sync_events;
	atomic_store_explicit(&n->st_log_cap, n->log_cap, memory_order_relaxed);
	n->sync_cap = 16;
	while (n->sync_cap < 2 * n->log_cap) /* at most half full */
		n->sync_cap *= 2;
	n->lix_cap = n->sync_cap;
	if (n->log_cap != 0 && ((n->log = calloc(n->log_cap, sizeof(*n->log))) == NULL ||
	    (n->logm = calloc(n->log_cap, sizeof(*n->logm))) == NULL ||
	    (n->lix = calloc(n->sync_cap, sizeof(*n->lix))) == NULL)) {
		rc = -ENOMEM;
		snprintf(err, errlen, "node: no memory for the sync log");
		goto fail;
	}
	/* One gossip shard per worker (a power of two, at most MAX_SHARDS),
	 * each owning the PeerStore shard of the same index. */
	unsigned workers = mm_rt_workers(rt), ns = 1;
	unsigned want = cfg->gossip_shards ? cfg->gossip_shards : workers;
	while (ns * 2 <= want && ns * 2 <= MAX_SHARDS)
		ns *= 2;
	mm_ps_config_t pc = cfg->map;
	pc.shards = ns;
	n->cfg.map.shards = ns;
	n->nshards = ns;
	if ((rc = mm_ps_create(&pc, &n->ps)) != 0) {
		snprintf(err, errlen, "node: cannot create the map (%d)", rc);
		goto fail;
	}
	n->own_shard = mm_ps_shard_of(n->ps, n->id.id);
	for (unsigned i = 0; i < ns; i++) {
		struct gshard *g = &n->shard[i];
		g->n = n;
		g->idx = i;
		mm_dedup_config_t dc;
		mm_dedup_config_default(&dc);
		if (cfg->dedup_capacity != 0)
			dc.capacity = cfg->dedup_capacity;
		if ((rc = mm_dedup_create(&dc, &g->d)) != 0 ||
		    (rc = mm_gossip_create(&cfg->gossip, cfg->net.id, n->ps, g->d,
		        &g->g)) != 0 ||
		    (ns > 1 && (rc = mm_gossip_preverify_memo(g->g)) != 0)) {
			snprintf(err, errlen, "node: cannot create gossip shard %u (%d)", i, rc);
			goto fail;
		}
		/* the runtime keeps the name's pointer: static strings */
		static const char *const names[MAX_SHARDS] = {"gossip0", "gossip1",
		    "gossip2", "gossip3", "gossip4", "gossip5", "gossip6", "gossip7"};
		mm_actor_opts_t go = {.worker = i % workers, .mailbox_cap = 4096,
		    .drop = shard_drop, .name = names[i]};
		if ((g->actor = mm_actor_spawn(rt, shard_fn, g, &go)) == NULL) {
			rc = -errno;
			snprintf(err, errlen, "node: cannot start gossip shard %u", i);
			goto fail;
		}
	}
	mm_net_config_t nc = cfg->net;
	nc.on_ready = cb_ready;
	nc.on_message = cb_message;
	nc.on_close = cb_close;
	nc.on_fault = cb_fault;
	nc.on_rtt = cb_rtt;
	nc.on_drained = cb_drained;
	nc.accept_filter = cb_accept_filter;
	/* with shedding, memory admission at accept too (net/conn.h): what a
	 * connection holds mid-handshake, measured (bench/memory.sh) */
	if (n->cfg.mem_shed && nc.conn_mem_bytes == 0)
		nc.conn_mem_bytes = nc.backend == MM_TLS_MBEDTLS ? 64 * 1024 : 32 * 1024;
	/* what the node may hold of all connections' messages at once
	 * (post_held): an eighth of the budget at most */
	mm_mem_stats_t ms;
	mm_rt_mem(rt, &ms);
	if (ms.budget != 0 && (nc.hold_total == 0 || nc.hold_total > ms.budget / 8))
		nc.hold_total = ms.budget / 8;
	nc.arg = n;
	if ((rc = mm_net_create(rt, &nc, &n->net, err, errlen)) != 0)
		goto fail;
	/* Mailbox: every connection's up and down at once, plus events in
	 * and the shards' results. */
	mm_actor_opts_t o = {.worker = 0, .mailbox_cap = 4 * MAX_PEERS + 8192,
	    .drop = node_drop, .name = "node", .flags = MM_ACTOR_F_PRESSURE};
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
	release_peers(n);
	if (n->actor != NULL)
		mm_actor_unref(n->actor);
	mm_net_destroy(n->net);
	for (unsigned i = 0; i < MAX_SHARDS; i++) {
		struct gshard *g = &n->shard[i];
		if (g->actor != NULL)
			mm_actor_unref(g->actor);
		mm_gossip_destroy(g->g);
		mm_dedup_destroy(g->d);
	}
	mm_ps_destroy(n->ps);
	for (uint32_t i = 0; i < n->log_cap && n->log != NULL; i++)
		mm_buf_release(n->log[i]);
	free(n->log);
	free(n->logm);
	free(n->lix);
	free(n->cls);
	free(n->book);
	free(n->snap_path);
	if (n->q != n->cfg.query_ctx)
		mm_psq_free(n->q);
	free(n->rc);
	free(n->pend);
	free(n->sent);
	mm_dedup_destroy(n->ddedup);
	mm_dedup_destroy(n->bdedup);
	if (n->bans != NULL) {
		mm_bans_free(n->bans);
		pthread_mutex_destroy(&n->bans_mu);
		pthread_mutex_destroy(&n->adv_mu);
		pthread_mutex_destroy(&n->prot_mu);
	}
	free(n);
}

int
mm_node_advertise(mm_node_t *n, const struct sockaddr *sa)
{
	uint8_t ip[16] = {0};
	uint16_t port;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
		ip[10] = ip[11] = 0xff;
		memcpy(ip + 12, &a->sin_addr, 4);
		port = ntohs(a->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
		memcpy(ip, &a->sin6_addr, 16);
		port = ntohs(a->sin6_port);
	} else {
		return -EAFNOSUPPORT;
	}
	if (port == 0)
		return -EINVAL;
	pthread_mutex_lock(&n->adv_mu);
	memcpy(n->adv_ip, ip, 16);
	n->adv_port = port;
	n->adv_fixed = 1;
	pthread_mutex_unlock(&n->adv_mu);
	return 0;
}

int
mm_node_listen(mm_node_t *n, const char *host, uint16_t port, uint16_t *bound)
{
	uint16_t got = 0;
	int rc = mm_net_listen(n->net, host, port, &got);
	if (bound != NULL)
		*bound = got;
	/* a specific address is one others can dial: advertise the first */
	struct in_addr a4;
	struct in6_addr a6;
	uint8_t ip[16] = {0};
	int ok = 0;
	if (inet_pton(AF_INET, host, &a4) == 1 && a4.s_addr != htonl(INADDR_ANY)) {
		ip[10] = ip[11] = 0xff;
		memcpy(ip + 12, &a4, 4);
		ok = 1;
	} else if (inet_pton(AF_INET6, host, &a6) == 1 &&
	    memcmp(&a6, &in6addr_any, sizeof(a6)) != 0) {
		memcpy(ip, &a6, 16);
		ok = 1;
	}
	if (rc == 0 && ok) {
		pthread_mutex_lock(&n->adv_mu);
		if (n->adv_port == 0 && !n->adv_fixed) {
			memcpy(n->adv_ip, ip, 16);
			n->adv_port = got;
		}
		pthread_mutex_unlock(&n->adv_mu);
	}
	return rc;
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

static int
post_copy(mm_node_t *n, int type, const void *data, size_t len)
{
	void *p = malloc(len);
	if (p == NULL)
		return -ENOMEM;
	memcpy(p, data, len);
	mm_msg_t m = {.type = (uint32_t)type, .ptr = p};
	int rc = mm_send(n->actor, &m);
	if (rc != 0)
		free(p);
	return rc;
}

int
mm_node_bootstrap_remove(mm_node_t *n, const struct sockaddr *sa, socklen_t len)
{
	if (len > sizeof(struct sockaddr_storage))
		return -EINVAL;
	struct boot_add ba = {.len = len};
	memcpy(&ba.sa, sa, len);
	return post_copy(n, N_BOOT_DEL, &ba, sizeof(ba));
}

int
mm_node_disconnect(mm_node_t *n, const uint8_t id[32])
{
	return post_copy(n, N_DISCONNECT, id, 32);
}

int
mm_node_goodbye(mm_node_t *n)
{
	mm_msg_t m = {.type = N_GOODBYE};
	return mm_send(n->actor, &m);
}

int
mm_node_reconfigure(mm_node_t *n, const mm_node_tunables_t *t)
{
	if (t->degree == 0 || t->max_degree < t->degree ||
	    t->max_degree > n->cfg.map.max_neighbours_temp ||
	    (t->relay && t->max_degree + t->max_inbound > n->cfg.map.max_neighbours_temp) ||
	    t->direct_rate == 0)
		return -EINVAL;
	return post_copy(n, N_RECONF, t, sizeof(*t));
}

int
mm_node_protect(mm_node_t *n, const uint8_t id[32], int on)
{
	int rc = on ? 0 : -ENOENT;
	pthread_mutex_lock(&n->prot_mu);
	unsigned i = 0;
	while (i < n->nprot && memcmp(n->prot[i], id, 32) != 0)
		i++;
	if (on && i == n->nprot) {
		if (n->nprot == MM_NODE_PROTECT_MAX)
			rc = -ENOSPC;
		else
			memcpy(n->prot[n->nprot++], id, 32);
	} else if (!on && i < n->nprot) {
		memmove(n->prot[i], n->prot[i + 1], (size_t)(n->nprot - i - 1) * 32);
		n->nprot--;
		rc = 0;
	}
	pthread_mutex_unlock(&n->prot_mu);
	return rc;
}

int
mm_node_protected(mm_node_t *n, uint8_t (*out)[32], unsigned cap)
{
	pthread_mutex_lock(&n->prot_mu);
	unsigned k = n->nprot < cap ? n->nprot : cap;
	memcpy(out, n->prot, (size_t)k * 32);
	pthread_mutex_unlock(&n->prot_mu);
	return (int)k;
}

void
mm_node_rtt_hist(const mm_node_t *n, uint64_t counts[MM_NODE_RTT_BUCKETS + 1],
    uint64_t *sum_us)
{
	mm_node_t *w = (mm_node_t *)n;
	for (unsigned b = 0; b <= MM_NODE_RTT_BUCKETS; b++)
		counts[b] = atomic_load_explicit(&w->rtt_hist[b], memory_order_relaxed);
	*sum_us = atomic_load_explicit(&w->rtt_sum_us, memory_order_relaxed);
}

unsigned
mm_node_mailboxes(const mm_node_t *n, mm_node_mbox_t *out, unsigned cap)
{
	unsigned k = 0;
	if (k < cap)
		out[k++] = (mm_node_mbox_t){"node", 0, mm_actor_worker(n->actor),
		    mm_actor_pending(n->actor)};
	for (unsigned i = 0; i < n->nshards && k < cap; i++)
		out[k++] = (mm_node_mbox_t){"gossip", i, mm_actor_worker(n->shard[i].actor),
		    mm_actor_pending(n->shard[i].actor)};
	return k;
}

mm_rt_t *
mm_node_rt(const mm_node_t *n)
{
	return n->rt;
}

mm_net_t *
mm_node_net(const mm_node_t *n)
{
	return n->net;
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
	for (unsigned c = 0; c < MM_NODE_CAUSES; c++)
		o->misbehaviour[c] = LD(st_misb[c]);
	o->peers_down = LD(st_down);
	o->duplicates_closed = LD(st_dup);
	o->events_local = LD(st_local);
	o->refreshes = LD(st_refresh);
	o->dials = LD(st_dials);
	o->events_in = LD(st_in);
	o->events_forwarded = LD(st_fwd);
	o->events_bad = LD(st_bad);
	o->frames_dropped = LD(st_dropped);
	o->events_coalesced = LD(st_coalesced);
	o->events_signed = LD(st_signed);
	o->syncs = LD(st_syncs);
	o->refused_full = LD(st_full);
	o->evicted_inbound = LD(st_evicted);
	o->bans = LD(st_bans);
	o->refused_banned = LD(st_banned);
	o->sync_events_sent = LD(st_sync_ev);
	o->sync_log_cap = atomic_load_explicit(&n->st_log_cap, memory_order_relaxed);
	o->kicks = LD(st_kicks);
	o->dials_room = LD(st_dl_room);
	o->dials_full = LD(st_dl_full);
	o->dials_thin = LD(st_dl_thin);
	o->dials_comp_failed = LD(st_dl_comp_fail);
	o->dials_comp = LD(st_dl_comp);
	o->dials_replace = LD(st_dl_repl);
	o->refused_barred = LD(st_barred);
	o->kicks_thin = LD(st_kicks_thin);
	o->refused_thin = LD(st_refused_thin);
	o->refused_young = LD(st_refused_young);
	o->px_sent = LD(st_px_sent);
	o->px_answered = LD(st_px_ans);
	o->px_received = LD(st_px_rx);
	o->rate_dropped = LD(st_rate);
	o->gc_phantoms = LD(st_gc_ph);
	o->gc_records = LD(st_gc_rec);
	o->gc_unreachable = LD(st_gc_unreach);
	o->snapshots_saved = LD(st_snaps);
	o->ae_digests_sent = LD(st_ae_sent);
	o->events_dup = LD(st_evdup);
	o->events_map_full = LD(st_mapfull);
	o->events_shaped = LD(st_shaped);
	o->asks_deferred = LD(st_ask_deferred);
	o->events_verified = LD(st_verify);
	mm_net_stats_t ns;
	mm_net_stats(n->net, &ns);
	/* newcomers refused after their hello, and sockets before TLS */
	o->refused_memory = LD(st_refused_mem) + ns.refused_memory;
	o->pressure = LD(a_pressure);
	o->degree = LD(a_degree);
	o->max_degree = LD(a_max_degree);
	o->max_inbound = LD(a_max_inbound);
	o->events_stale = LD(st_stale);
	o->intros_sent = LD(st_intro_out);
	o->intros_received = LD(st_intro_in);
	o->intros_dialled = LD(st_intro_dial);
	o->requests_sent = LD(st_rq_out);
	o->requests_received = LD(st_rq_in);
	o->requests_timed_out = LD(st_rq_timeout);
	o->responses_late = LD(st_rq_late);
	o->bcast_published = LD(st_bpub);
	o->bcast_delivered = LD(st_bdeliv);
	o->bcast_received = LD(st_brx);
	o->subs_received = LD(st_subs);
	o->bcast_forwarded = LD(st_bfwd);
	o->bcast_dup = LD(st_bdup);
	o->bcast_refused = LD(st_bbad);
	o->direct_sent = LD(st_dsent);
	o->direct_relayed = LD(st_drelayed);
	o->direct_delivered = LD(st_ddelivered);
	o->direct_rewritten = LD(st_drewrite);
	o->direct_refused = LD(st_dbad);
	o->direct_replays = LD(st_ddup);
	o->direct_dropped = LD(st_ddropped);
	o->direct_failed = LD(st_dfail);
	o->route_searches = LD(st_route_bfs);
	o->route_cache_hits = LD(st_route_hit);
	o->ae_wanted = LD(st_ae_wanted);
	o->ae_served = LD(st_ae_served);
	o->ihave_sent = LD(st_ih_sent);
	o->ihave_received = LD(st_ih_rx);
	o->iwant_sent = LD(st_iw_sent);
	o->iwant_served = LD(st_iw_served);
	o->iwant_over = LD(st_iw_over);
	o->sync_announced = LD(st_sync_ih);
	o->served_paced = LD(st_paced);
	o->snapshot_peers_loaded = LD(st_snap_peers);
	o->snapshot_bans_loaded = LD(st_snap_bans);
	o->links_digest = LD(links_digest);
	o->components = LD(a_comp);
	o->isolated = LD(a_iso);
	o->largest = LD(a_largest);
	o->bridges = LD(a_bridges);
	o->articulation = LD(a_art);
	o->addr_known = LD(a_book);
#undef LD
}

/* Hand a message to the node actor: route (nroute ids, ours first) or
 * NULL for our shortest path to dst. */
static int
post_send(mm_node_t *n, const uint8_t *dst, const uint8_t *route, unsigned nroute,
    const uint8_t *hdr, unsigned hlen, const void *data, uint32_t len, int reroute,
    uint64_t *handle)
{
	if (len + hlen > MM_WIRE_DATA_MAX || (route != NULL && (nroute < 2 ||
	    nroute > MM_WIRE_ROUTE_MAX)))
		return -EINVAL;
	struct peer_msg *pm = calloc(1, sizeof(*pm));
	if (pm == NULL)
		return -ENOMEM;
	pm->blen = 32u * (route != NULL ? nroute : 0) + hlen + len;
	if ((pm->blob = malloc(pm->blen ? pm->blen : 1)) == NULL) {
		free(pm);
		return -ENOMEM;
	}
	if (route != NULL) {
		memcpy(pm->blob, route, 32u * nroute);
		pm->npx = nroute;
	} else {
		memcpy(pm->id, dst, 32);
	}
	memcpy(pm->blob + 32u * pm->npx, hdr, hlen);
	if (len != 0)
		memcpy(pm->blob + 32u * pm->npx + hlen, data, len);
	pm->verdict = reroute ? 1 : 0;
	pm->tag = mm_random(); /* the nonce, and the caller's handle */
	if (handle != NULL)
		*handle = pm->tag;
	mm_msg_t m = {.type = N_SEND, .ptr = pm};
	int rc = mm_send(n->actor, &m);
	if (rc != 0)
		free_pm(pm);
	return rc;
}

static const uint8_t kind_datagram[1] = {MM_DK_DATAGRAM};

int
mm_node_send_direct(mm_node_t *n, const uint8_t dst[32], const void *data,
    uint32_t len, int reroute, uint64_t *handle)
{
	return post_send(n, dst, NULL, 0, kind_datagram, 1, data, len, reroute, handle);
}

int
mm_node_send_route(mm_node_t *n, const uint8_t *route, unsigned nroute,
    const void *data, uint32_t len, int reroute, uint64_t *handle)
{
	if (route == NULL || memcmp(route, n->id.id, 32) != 0)
		return -EINVAL;
	return post_send(n, NULL, route, nroute, kind_datagram, 1, data, len, reroute,
	    handle);
}


int
mm_node_request(mm_node_t *n, const uint8_t dst[32], const void *data, uint32_t len,
    uint32_t timeout_ms, mm_response_cb cb, void *arg)
{
	if (cb == NULL || timeout_ms == 0 || len + 9 > MM_WIRE_DATA_MAX)
		return -EINVAL;
	struct req_post *r = malloc(sizeof(*r) + len + 1);
	if (r == NULL)
		return -ENOMEM;
	memcpy(r->dst, dst, 32);
	r->timeout_ms = timeout_ms;
	r->cb = cb;
	r->arg = arg;
	r->len = len;
	if (len != 0)
		memcpy(r->data, data, len);
	mm_msg_t m = {.type = N_REQUEST, .ptr = r};
	int rc = mm_send(n->actor, &m);
	if (rc != 0)
		free(r);
	return rc;
}

int
mm_node_respond(mm_node_t *n, const uint8_t to[32], uint64_t req_id, uint32_t code,
    const void *data, uint32_t len)
{
	uint8_t hdr[13];
	hdr[0] = code == 0 ? MM_DK_RESPONSE : MM_DK_ERROR;
	put_be64(hdr + 1, req_id);
	unsigned hl = 9;
	if (code != 0) {
		hdr[9] = (uint8_t)(code >> 24);
		hdr[10] = (uint8_t)(code >> 16);
		hdr[11] = (uint8_t)(code >> 8);
		hdr[12] = (uint8_t)code;
		hl = 13;
	}
	return post_send(n, to, NULL, 0, hdr, hl, data, len, 1, NULL);
}

int
mm_node_publish(mm_node_t *n, const char *topic, const void *data, uint32_t len)
{
	size_t tl = topic != NULL ? strlen(topic) : 0;
	if (tl == 0 || tl > MM_WIRE_TOPIC_MAX || len > MM_WIRE_DATA_MAX)
		return -EINVAL;
	struct peer_msg *pm = calloc(1, sizeof(*pm));
	if (pm == NULL || (pm->blob = malloc(tl + len + 1)) == NULL) {
		free(pm);
		return -ENOMEM;
	}
	memcpy(pm->blob, topic, tl);
	if (len != 0)
		memcpy(pm->blob + tl, data, len);
	pm->npx = (unsigned)tl;
	pm->blen = (uint32_t)(tl + len);
	pm->tag = mm_random();
	mm_msg_t m = {.type = N_PUBLISH, .ptr = pm};
	int rc = mm_send(n->actor, &m);
	if (rc != 0)
		free_pm(pm);
	return rc;
}

static int
post_topic(mm_node_t *n, const char *topic, int on)
{
	size_t tl = topic != NULL ? strlen(topic) : 0;
	if (tl == 0 || tl > MM_WIRE_TOPIC_MAX || (tl == 1 && topic[0] == '*'))
		return -EINVAL;
	struct peer_msg *pm = calloc(1, sizeof(*pm));
	if (pm == NULL || (pm->blob = malloc(tl)) == NULL) {
		free(pm);
		return -ENOMEM;
	}
	memcpy(pm->blob, topic, tl);
	pm->blen = (uint32_t)tl;
	pm->verdict = on;
	mm_msg_t m = {.type = N_SUBSCRIBE, .ptr = pm};
	int rc = mm_send(n->actor, &m);
	if (rc != 0)
		free_pm(pm);
	return rc;
}

int
mm_node_subscribe(mm_node_t *n, const char *topic)
{
	return post_topic(n, topic, 1);
}

int
mm_node_unsubscribe(mm_node_t *n, const char *topic)
{
	return post_topic(n, topic, 0);
}
