/*
 * The node: connections (net/conn.h) wired to the gossip engine and the map.
 *
 * Actors. One node actor (on worker 0) owns the peer table, the address
 * book, the bootstrap list, the join sync log and the selector. Connection
 * actors tell it, through its mailbox, when a peer is ready, when it is
 * gone, and when a message arrives. Events go on to the gossip shard that
 * owns their origin (one per worker: its dedup ring, its gossip engine,
 * its PeerStore shard; the verify runs there, in parallel), which sends
 * back what to forward, encoded once into a refcounted buffer that every
 * neighbour's connection actor queues as is (drop-and-count when a
 * connection's mailbox is full: the periodic re-announcement repairs it).
 *
 * Two connections between the same pair are resolved the same way on both
 * sides: the one dialled by the peer with the lower id is kept. Every live
 * link is re-announced each refresh_ms, which keeps it alive in every map
 * (records expire without news) and reaches nodes that joined since.
 *
 * Discovery: every new link asks the peer for addresses (get_peers); the
 * answers fill an address book from which the selector (selector.h) dials
 * the candidates whose neighbours overlap least with ours, and trims or
 * replaces the worst neighbours, so that one bootstrap address is enough.
 */
#ifndef MM_NODE_H
#define MM_NODE_H

#include "bans.h"
#include "conn.h"
#include "dedup.h"
#include "gossip.h"
#include "peerstore.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mm_node mm_node_t;

/* Request/response over direct messages. The payload of every direct
 * message starts with a kind byte (docs/PROTOCOL.md): */
enum { MM_DK_DATAGRAM = 0, MM_DK_REQUEST = 1, MM_DK_RESPONSE = 2, MM_DK_ERROR = 3,
	MM_DK_INTRO = 4 /* "dial me at ip (16) port (2, BE)" */ };
/* A response callback's status: 0 (data: the response), a positive error
 * code from the responder (data: its message), or one of these. */
enum { MM_RQ_TIMEOUT = -1, MM_RQ_UNREACHABLE = -2, MM_RQ_BUSY = -3,
	MM_RQ_ENOHANDLER = 1 /* the peer has no request handler */ };
typedef void (*mm_response_cb)(void *arg, int status, const uint8_t *data,
    uint32_t len);

typedef struct mm_node_config {
	mm_net_config_t net;      /* its callbacks are the node's own */
	mm_gossip_config_t gossip;
	mm_ps_config_t map;
	/* Re-announce every live link this often (fresh signed events): maps
	 * expire records after map.ttl_s without news, and a node that joined
	 * late learns the links announced before it came. 600,000 ms. */
	uint32_t refresh_ms;
	/* Our own events at most one per announce_ms: the first after a quiet
	 * window goes at once, later ones are held to the window's end and
	 * only the newest goes (each carries our whole neighbour list, so the
	 * older ones say nothing more). 0: every event at once. 500 ms. */
	uint32_t announce_ms;
	/* Redial of bootstrap addresses: exponential backoff from
	 * redial_min_ms, doubling up to redial_max_ms, +-25% jitter; one dial
	 * in flight per address. 500 ms, 60,000 ms. */
	uint32_t redial_min_ms, redial_max_ms;
	/* Join sync: the node keeps the last sync_events accepted events (its
	 * own and relayed, as the encoded frames it sent, shared, not copied)
	 * and replays them, oldest first, to every new peer, so that a node
	 * that joins learns the map at once instead of at the next refresh:
	 * of each origin, the newest event with its whole neighbour list and
	 * the deltas after it (the older ones say nothing more).
	 * The receiver drops what it has (dedup, staleness) before any verify.
	 * When the log is full it is compacted to those frames, in order, so
	 * that a quiet origin's newest frame stays; the oldest frames go only
	 * when the frames to keep fill more than 7/8 of the log.
	 * The log starts at sync_events frames and doubles, up to
	 * sync_events_max, when the frames to keep fill more than 7/8 of it
	 * (more active origins than it holds), memory pressure is low and
	 * its frames would leave RSS under 3/4 of the budget; at high
	 * pressure it goes back to sync_events. Memory: about 200 bytes per event (600 with
	 * 12-neighbour lists). A join sync sends at most 3/4 of
	 * event_burst frames (the newest of those it chose), so that it stays
	 * within the new peer's budget. 2048, 4096; sync_events 0: no join sync;
	 * sync_events_max below sync_events: no growth. */
	uint32_t sync_events, sync_events_max;
	/* Lazy push: an event we relay goes whole to gossip_eager of our
	 * links, picked at random for each event; the others get its (origin,
	 * seq) in an ihave, sent within ihave_ms (up to 64 entries a frame),
	 * and ask for it (iwant) if no copy reached them. Our own events go
	 * whole to every link. 0: every event whole to every link (a pure
	 * flood). 4, 100 ms (docs/RESULTS-SIM.md, "Lazy push"). */
	unsigned gossip_eager;
	uint32_t ihave_ms;
	/* Misbehaviour: each refused event adds points to the score of the
	 * connection it came from: 100 for a bad signature or a short proof of
	 * work (an honest relay verifies before forwarding, so only the forger
	 * sends these), 10 for a lie or a timestamp ahead of our clock (an
	 * honest relay with another map or clock may pass those on). At
	 * ban_score the peer is disconnected and its id banned for ban_s
	 * seconds, and its address too if ban_addresses and it is not a
	 * loopback address (other local processes share it). Bans are checked
	 * at accept (address, before TLS) and at ready (id). 100, 86400, 1;
	 * at most max_bans bans (4096). */
	uint32_t ban_score, ban_s, max_bans;
	int ban_addresses;
	/* Links: the node aims for degree links and never holds more than
	 * max_degree (12, 16). The map (map.max_neighbours_temp, 32 here)
	 * accepts up to that many claims from any peer: it is a network-wide
	 * bound, not our own degree, since peers choose theirs. */
	unsigned degree, max_degree;
	/* Relay (or bootstrap) mode: inbound links do not count towards the
	 * degree and are never dropped by the selector; the node dials its
	 * own degree links and accepts up to max_inbound more (max_degree +
	 * max_inbound <= the map's claim limit, 32: every link is announced).
	 * 0, 16. */
	int relay;
	unsigned max_inbound;
	/* Neighbour selection (selector.h for the ranking). Every select_ms
	 * (+-25% jitter) the node, in this order: drops its worst neighbour
	 * if it has more than degree links (only links older than
	 * min_link_ms; one per round); dials the best candidates (at most 3
	 * at once) while it has fewer; or, at the target, dials a candidate
	 * with room whose overlap plus replace_margin is at most its worst
	 * neighbour's (the next rounds drop the worst), at most once per
	 * replace_ms. Links may reach
	 * max_degree; beyond it a newcomer is answered with a
	 * peers list and error 14 (no slot) instead of a link. A peer that
	 * says "no slot" is not dialled again for full_backoff_ms (+-25%).
	 * Bootstrap addresses are dialled only while the node has fewer than
	 * degree links. select_ms 0: no selection (the node keeps
	 * exactly the links it is given). 2000, 10000, 2, 60000, 60000. */
	uint32_t select_ms, min_link_ms, replace_margin, full_backoff_ms, replace_ms;
	/* Which ranking (selector.h: MM_SEL_OVERLAP, ours; MM_SEL_RANDOM;
	 * MM_SEL_KADEMLIA), for comparing them in the simulator. */
	int select_policy;
	/* 1: at or above the target, refuse an inbound link while another
	 * inbound link is younger than min_link_ms (one unjudged inbound
	 * link at a time, against clustered eclipse attackers; not in relay
	 * mode). 0 (the default) until the node's tests take it:
	 * docs/RESULTS-SIM.md, "One unjudged inbound link at a time". */
	uint8_t young_inbound;
	/* Address book: peers learnt from peer exchange and from connections,
	 * at most addr_max entries (1024, 64 bytes each). Besides asking every
	 * new link, the node asks one random neighbour every px_ms (+-25%;
	 * never the same peer more often than req_refill_ms). 30000; 0: only
	 * new links. */
	uint32_t addr_max, px_ms;
	/* Per-peer token buckets. Events: event_rate a second, bursts of
	 * event_burst (a join sync takes at most 3/4 of it); each event over it
	 * is dropped and costs 1 point. Requests (get_peers): one token every
	 * req_refill_ms, bursts of req_burst; each over it is not answered
	 * and costs 10 points. 1000, 4096, 10000, 4. */
	uint32_t event_rate, event_burst, req_refill_ms, req_burst;
	/* Map upkeep: expire phantoms and dead records every gc_ms; compute
	 * components, bridges and articulation points every analyse_ms (a
	 * warning is logged when the map splits or heals). 5000, 10000. */
	uint32_t gc_ms, analyse_ms;
	/* After an analysis, records in another component than ours (not
	 * reachable from us over confirmed edges) that have had no event of
	 * their own for unreachable_s are forgotten: a crashed region leaves
	 * the maps, and the far side of a partition comes back with its next
	 * events after the heal. 0: kept for map.ttl_s. 180 s. */
	uint32_t unreachable_s;
	/* Gossip shards: 0 = one per worker (rounded down to a power of two,
	 * at most 8). map.shards is set to the same number. */
	unsigned gossip_shards;
	/* Persistence (store/snapshot.h): the verified addresses of the
	 * address book and the ban list, loaded at create (a restarted node
	 * redials the peers it knew, and its bans hold across restarts) and
	 * saved every snapshot_ms and at stop, atomically. NULL: none. A file
	 * that is damaged is logged and ignored (the node starts clean).
	 * 300000. */
	const char *snapshot_path;
	uint32_t snapshot_ms;
	/* Anti-entropy: every ae_ms (+-25%) one random neighbour gets a
	 * digest (the newest origin and seq of up to 1024 origins in our
	 * sync log); it asks for the origins its map has older and we send
	 * those frames. Repairs what rumours missed. 60000; 0: off. */
	uint32_t ae_ms;
	/* Direct messages (actors/direct.h). on_direct: a message for us
	 * arrived and verified (origin id, payload, whether a relay rewrote
	 * its route); on_direct_fail: one of ours could not be delivered
	 * (the handle mm_node_send_* returned; code: enum mm_dfail_code; the
	 * relay that said so, or our own id when we found no route). Both run
	 * on the node actor's worker and must not block. Per link: direct_rate
	 * a second in bursts of direct_burst (each over: 1 point).
	 * direct_max_age_ms: a message older or further ahead than this is
	 * refused. 200000, 200000, 600000. */
	void (*on_direct)(void *arg, const uint8_t origin[32], const uint8_t *data,
	    uint32_t len, int rewritten);
	void (*on_direct_fail)(void *arg, uint64_t handle, uint32_t code,
	    const uint8_t relay[32]);
	void *direct_arg;
	uint32_t direct_rate, direct_burst, direct_max_age_ms;
	/* Broadcast: on_bcast gets each message on a topic we subscribed to,
	 * once, verified (same thread rules as on_direct, same arg). A node
	 * with relay_topics passes on every topic (it announces "*"), else
	 * only its own. Our broadcasts travel bcast_ttl hops. The rate limit
	 * is the direct one. 1, 16. */
	void (*on_bcast)(void *arg, const char *topic, uint32_t topic_len,
	    const uint8_t origin[32], const uint8_t *data, uint32_t len);
	int relay_topics;
	uint8_t bcast_ttl;
	/* Requests: on_request gets each request for us (arg as above); answer
	 * with mm_node_respond, from any thread, now or later. Without it,
	 * requests are answered with error 1. At most req_inflight_max of our
	 * requests in flight per destination (more: MM_RQ_BUSY at once). 64. */
	void (*on_request)(void *arg, const uint8_t origin[32], uint64_t req_id,
	    const uint8_t *data, uint32_t len);
	unsigned req_inflight_max;
	/* Memory: follow the runtime's pressure (its budget is the process's
	 * RSS): at HIGH no new dials, at CRITICAL no new links (newcomers get
	 * addresses of others and "no slot"). Off for a node that shares its
	 * process with other work (the embedding library, in-process tests),
	 * since the process's RSS is then not the node's. 1. */
	int mem_shed;
	/* Ids each dedup ring remembers (one per gossip shard, one for direct
	 * messages, one for broadcasts), 8 bytes each: 0 is 262,144 (2 MB a
	 * ring), room for a minute of a saturating flood. The simulator runs
	 * thousands of nodes with small rings: a duplicate that outlives its
	 * ring is still dropped before any verify, by the map's sequence
	 * check. */
	uint32_t dedup_capacity;
	/* The map queries' scratch (psquery.h): NULL, the node's own; else
	 * one shared by every node whose actor runs on the same thread, never
	 * two at once (the simulator's thousands of nodes: the scratch grows
	 * with the map, about 60 KB a node at 1,000 nodes). Not freed by the
	 * node. */
	struct mm_psq *query_ctx;
} mm_node_config_t;

void mm_node_config_default(mm_node_config_t *c);
int mm_node_create(mm_rt_t *rt, const mm_node_config_t *c, mm_node_t **out,
    char *err, size_t errlen);
/* After mm_rt_stop. */
void mm_node_destroy(mm_node_t *n);

int mm_node_listen(mm_node_t *n, const char *host, uint16_t port, uint16_t *bound);
/* The address others can dial us at, sent in connection introductions.
 * Without it, the first specific address we listen on (none for 0.0.0.0
 * or ::: such a node sends no introductions). */
int mm_node_advertise(mm_node_t *n, const struct sockaddr *sa);
int mm_node_dial(mm_node_t *n, const struct sockaddr *sa, socklen_t len);
/* Keep a connection to this address: dialled now, redialled with backoff
 * whenever it fails or closes. Before any runtime stop; at most 64. */
int mm_node_bootstrap(mm_node_t *n, const struct sockaddr *sa, socklen_t len);

/* Send a direct message (any thread): along our shortest path over
 * confirmed edges to dst, or along route[nroute] (ids, ours first, the
 * destination last). reroute: a relay may rewrite the rest of the route
 * once. *handle (optional) names it in on_direct_fail. Returns 0 once
 * queued; delivery is not guaranteed. */
int mm_node_send_direct(mm_node_t *n, const uint8_t dst[32], const void *data,
    uint32_t len, int reroute, uint64_t *handle);
int mm_node_send_route(mm_node_t *n, const uint8_t *route, unsigned nroute,
    const void *data, uint32_t len, int reroute, uint64_t *handle);

/* Request/response (any thread). cb runs exactly once, on the node
 * actor's worker: with the response, an error from the peer, or
 * MM_RQ_TIMEOUT after timeout_ms, MM_RQ_UNREACHABLE (no route, or a relay
 * reported failure), MM_RQ_BUSY. code 0 responds, any other code is an
 * error response whose data is a message. */
int mm_node_request(mm_node_t *n, const uint8_t dst[32], const void *data, uint32_t len,
    uint32_t timeout_ms, mm_response_cb cb, void *arg);
int mm_node_respond(mm_node_t *n, const uint8_t to[32], uint64_t req_id, uint32_t code,
    const void *data, uint32_t len);

/* Broadcast (any thread): publish on a topic (1..64 bytes); subscribe
 * to receive a topic through on_bcast (at most 63 topics). */
int mm_node_publish(mm_node_t *n, const char *topic, const void *data, uint32_t len);
int mm_node_subscribe(mm_node_t *n, const char *topic);
int mm_node_unsubscribe(mm_node_t *n, const char *topic);

/* The peer table (any thread but the node's own workers: it waits up to
 * timeout_ms for the node actor's answer). Returns how many were written
 * to out[cap], or -ETIMEDOUT / -EAGAIN. */
#define MM_NODE_CAUSES 16 /* misbehaviour causes: the wire error codes */
typedef struct mm_node_peer_info {
	uint8_t id[32];
	uint8_t ip[16];       /* IPv4 as ::ffff:a.b.c.d */
	uint16_t port;        /* where it accepts connections, 0: nowhere */
	uint8_t inbound;
	uint8_t protected_;   /* mm_node_protect */
	uint32_t age_s, rtt_us, score;
	uint16_t misb[MM_NODE_CAUSES]; /* misbehaviour events by cause (wire
	                               * error code, mm_close_reason_name) */
} mm_node_peer_info_t;
int mm_node_peer_list(mm_node_t *n, mm_node_peer_info_t *out, unsigned cap,
    unsigned timeout_ms);
mm_net_t *mm_node_net(const mm_node_t *n);
/* Bans by the operator (any thread). A ban takes effect at once: links
 * that match are closed, new connections are refused at accept (address)
 * or at the handshake (id). Returns 0 or the bans.h error; unban -ENOENT
 * if there was no such ban. mm_node_bans copies up to cap of them. */
int mm_node_ban(mm_node_t *n, const mm_ban_t *b);
int mm_node_unban(mm_node_t *n, uint8_t kind, const uint8_t *key, uint8_t plen);
int mm_node_bans(mm_node_t *n, mm_ban_t *out, unsigned cap);

/* ---- operator controls (any thread) ----
 * Protected peers (at most MM_NODE_PROTECT_MAX): the selector never drops
 * their links and they are admitted above max_degree (up to the map's
 * claim limit). protect on: 0 or -ENOSPC; off: 0 or -ENOENT.
 * mm_node_protected copies the list. */
#define MM_NODE_PROTECT_MAX 64
int mm_node_protect(mm_node_t *n, const uint8_t id[32], int on);
int mm_node_protected(mm_node_t *n, uint8_t (*out)[32], unsigned cap);
/* Close the link to id (error 14, "no slot": the peer waits before it
 * dials again) and do not redial it for full_backoff_ms. Queued: a peer
 * that is not linked is ignored. A bootstrap address is still redialled
 * (remove it first). */
int mm_node_disconnect(mm_node_t *n, const uint8_t id[32]);
/* Stop keeping this bootstrap address (a reload dropped it); its link, if
 * any, stays as an ordinary one. */
int mm_node_bootstrap_remove(mm_node_t *n, const struct sockaddr *sa, socklen_t len);
/* Graceful stop, before mm_rt_stop: no more dials, the snapshot saved,
 * every link closed with error 11 ("shutting down"), new links refused.
 * Wait for mm_node_peers() to reach 0 (with a bound), then stop. */
int mm_node_goodbye(mm_node_t *n);
/* The settings that can change at run time (a reload). -EINVAL if they
 * do not hold together (max_degree >= degree >= 1, max_degree (+
 * max_inbound in relay mode) <= 32, direct_rate >= 1). Timers take the new
 * periods at once; limits apply from the next link or round. */
typedef struct mm_node_tunables {
	unsigned degree, max_degree, max_inbound;
	int relay;
	uint32_t select_ms, min_link_ms, px_ms, ae_ms, direct_rate;
} mm_node_tunables_t;
int mm_node_reconfigure(mm_node_t *n, const mm_node_tunables_t *t);
/* Round trips measured by pings: counts per bucket (upper bounds
 * mm_node_rtt_bounds_us; the last bucket is above them all) and the sum. */
#define MM_NODE_RTT_BUCKETS 12
extern const uint32_t mm_node_rtt_bounds_us[MM_NODE_RTT_BUCKETS];
void mm_node_rtt_hist(const mm_node_t *n, uint64_t counts[MM_NODE_RTT_BUCKETS + 1],
    uint64_t *sum_us);

/* The mailboxes of the node's own actors (the node actor, then each
 * gossip shard): name, worker and messages waiting now. */
typedef struct mm_node_mbox {
	const char *name;
	unsigned index, worker, depth;
} mm_node_mbox_t;
unsigned mm_node_mailboxes(const mm_node_t *n, mm_node_mbox_t *out, unsigned cap);
mm_rt_t *mm_node_rt(const mm_node_t *n);

/* Read-only views (any thread: the map is read lock-free). */
const mm_ps_t *mm_node_map(const mm_node_t *n);
/* Is this id banned now? (thread-safe) */
int mm_node_banned_id(mm_node_t *n, const uint8_t id[32]);
unsigned mm_node_peers(const mm_node_t *n);   /* ready connections */
typedef struct mm_node_stats {
	uint64_t peers_up, peers_down, duplicates_closed, events_local, refreshes,
	    dials,
	    events_in, events_forwarded, events_bad, events_dup, events_map_full, frames_dropped,
	    /* pushes announced by ihave instead (or, with a full ihave
	     * waiting, left to anti-entropy) to keep under a link's event
	     * budget; ids not asked of a link (want, iwant) for the same */
	    events_shaped, asks_deferred,
	    events_coalesced, /* own events replaced by a newer one before sending */
	    events_signed,    /* own events signed (the rest were held, above) */
	    syncs, sync_events_sent, refused_full, bans, refused_banned,
	    /* join sync frames left out of the first push (its caps) and
	     * announced by ihave instead; asked events served only after
	     * the link had taken the answer before (a quarter of the
	     * write cap at a time) */
	    sync_announced, served_paced,
	    sync_log_cap, /* the join sync log's frames now (it grows) */
	    /* the selector's dials, by reason: to a candidate with room,
	     * to a full one (while short of half the target, or while thin
	     * links hold our slots), to a thin one (short of half), into
	     * another component of the map, a replacement at the target */
	    dials_room, dials_full, dials_thin, dials_comp, dials_replace,
	    dials_comp_failed, /* of dials_comp, those that failed (3 in a
	                        * row pause them: 5 s doubling to 60 s) */
	    kicks, kicks_thin, refused_barred, refused_thin, /* links the
	                            * selector dropped; of them, thin ones;
	                            * those peers refused while barred
	                            * (full_backoff_ms); thin peers refused
	                            * at the target */
	    refused_young, /* peers refused at the target while an inbound
	                    * link is younger than min_link_ms */
	    px_sent, px_answered, px_received, rate_dropped, addr_known,
	    gc_phantoms, gc_records, gc_unreachable, ae_digests_sent, ae_wanted, ae_served,
	    ihave_sent, ihave_received, iwant_sent, iwant_served, iwant_over,
	    snapshots_saved, snapshot_peers_loaded,
	    snapshot_bans_loaded,
	    intros_sent, intros_received, intros_dialled,
	    requests_sent, requests_received, requests_timed_out, responses_late,
	    bcast_published, bcast_received, bcast_delivered, bcast_forwarded, bcast_dup,
	    bcast_refused, subs_received,
	    direct_sent, direct_relayed, direct_delivered, direct_rewritten,
	    direct_refused, direct_replays, direct_dropped, direct_failed,
	    route_searches, route_cache_hits; /* our_path: map searches, cached answers */
	/* The last analysis of the map (analyse_ms). */
	uint32_t components, largest, bridges, articulation;
	/* of the components, those of one record (a peer that left, or one
	 * not linked yet): a split is components - isolated > 1 */
	uint32_t isolated;
	/* Sum of mm_ps_edge_hash over our own live links (psquery.h): a test
	 * adds it over all nodes and compares with twice any map's digest. */
	uint64_t links_digest;
	/* signature verifications of events (each costs ~60 us; duplicates
	 * and stale events are dropped before it) and stale events dropped */
	uint64_t events_verified, events_stale;
	/* newcomers refused at critical memory pressure, and the pressure
	 * the node last heard of (enum mm_pressure) */
	uint64_t refused_memory;
	/* inbound links dropped to make room for a newcomer from a less
	 * crowded address range (IPv4 /16, IPv6 /32) */
	uint64_t evicted_inbound;
	int pressure;
	/* the link limits in force (a reload changes them): degree,
	 * max_degree, and max_inbound in relay mode (0 otherwise) */
	unsigned degree, max_degree, max_inbound;
	/* misbehaviour events by cause (index: wire error code) */
	uint64_t misbehaviour[MM_NODE_CAUSES];
} mm_node_stats_t;
void mm_node_stats(const mm_node_t *n, mm_node_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif
