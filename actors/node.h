/*
 * The node: connections (net/conn.h) wired to the gossip engine and the map.
 *
 * One node actor (on worker 0) owns the identity's map, the dedup ring, the
 * gossip engine and the peer table. Connection actors tell it, through its
 * mailbox, when a peer is ready, when it is gone, and when an event arrives.
 * It answers with frames encoded once into a refcounted buffer that every
 * neighbour's connection actor queues as is (drop-and-count when a
 * connection's mailbox is full: anti-entropy repairs what gossip drops).
 *
 * Two connections between the same pair are resolved the same way on both
 * sides: the one dialled by the peer with the lower id is kept. Every live
 * link is re-announced each refresh_ms, which keeps it alive in every map
 * (records expire without news) and reaches nodes that joined since.
 *
 * This is the first part of the node issue: bootstrap dialling with backoff,
 * peer exchange, selection, anti-entropy and bans build on it.
 */
#ifndef MM_NODE_H
#define MM_NODE_H

#include "conn.h"
#include "dedup.h"
#include "gossip.h"
#include "peerstore.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mm_node mm_node_t;

typedef struct mm_node_config {
	mm_net_config_t net;      /* its callbacks are the node's own */
	mm_gossip_config_t gossip;
	mm_ps_config_t map;
	/* Re-announce every live link this often (fresh signed events): maps
	 * expire records after map.ttl_s without news, and a node that joined
	 * late learns the links announced before it came. 600,000 ms. */
	uint32_t refresh_ms;
	/* Redial of bootstrap addresses: exponential backoff from
	 * redial_min_ms, doubling up to redial_max_ms, +-25% jitter; one dial
	 * in flight per address. 500 ms, 60,000 ms. */
	uint32_t redial_min_ms, redial_max_ms;
	/* Join sync: the node keeps the last sync_events accepted events (its
	 * own and relayed, as the encoded frames it sent, shared, not copied)
	 * and replays them, oldest first, to every new peer, so that a node
	 * that joins learns the map at once instead of at the next refresh.
	 * The receiver drops what it has (dedup, staleness) before any verify.
	 * Memory: about 200 bytes per event. 2048; 0: no join sync. */
	uint32_t sync_events;
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
} mm_node_config_t;

void mm_node_config_default(mm_node_config_t *c);
int mm_node_create(mm_rt_t *rt, const mm_node_config_t *c, mm_node_t **out,
    char *err, size_t errlen);
/* After mm_rt_stop. */
void mm_node_destroy(mm_node_t *n);

int mm_node_listen(mm_node_t *n, const char *host, uint16_t port, uint16_t *bound);
int mm_node_dial(mm_node_t *n, const struct sockaddr *sa, socklen_t len);
/* Keep a connection to this address: dialled now, redialled with backoff
 * whenever it fails or closes. Before any runtime stop; at most 64. */
int mm_node_bootstrap(mm_node_t *n, const struct sockaddr *sa, socklen_t len);

/* Read-only views (any thread: the map is read lock-free). */
const mm_ps_t *mm_node_map(const mm_node_t *n);
/* Is this id banned now? (thread-safe) */
int mm_node_banned_id(mm_node_t *n, const uint8_t id[32]);
unsigned mm_node_peers(const mm_node_t *n);   /* ready connections */
typedef struct mm_node_stats {
	uint64_t peers_up, peers_down, duplicates_closed, events_local, refreshes,
	    dials,
	    events_in, events_forwarded, events_bad, frames_dropped,
	    syncs, sync_events_sent, refused_full, bans, refused_banned;
} mm_node_stats_t;
void mm_node_stats(const mm_node_t *n, mm_node_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif
