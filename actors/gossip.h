/*
 * Gossip of connection events (seed §3.2), as pure logic: the node's own
 * events, and what to do with a received one. No threads, no sockets; the
 * clock is passed in. The node's actors and the simulator run this same
 * code over their own transport.
 *
 * A received event goes through the checks cheapest first, so that the
 * dearest, the Ed25519 verify (~60 µs), runs only for new, plausible events:
 *   1. dedup: the ring, on (signed bytes || signature) under its secret
 *      SipHash key. Keying on the signature alone would let a tampered copy
 *      carrying a genuine signature, raced ahead of the real event, get the
 *      real one dropped as a duplicate;
 *   2. timestamp: not more than max_future_ms ahead of our clock;
 *   3. proof of work of the origin's key (one SHA-256);
 *   4. staleness: seq not above what the map already holds for the origin
 *      (a replay is dropped without a verify);
 *   5. the signature;
 *   6. the map: a lie (self-edge, too many neighbours, contradicting the
 *      other end) is evidence against the origin and is not forwarded.
 * An event that passes is forwarded to every link but the one it came from,
 * with ttl - 1, while ttl > 0.
 *
 * Not thread-safe: one caller at a time (the node's gossip actor). The map
 * writes it makes assume the caller owns the origin's shard (peerstore.h).
 */
#ifndef MM_GOSSIP_H
#define MM_GOSSIP_H

#include <stdint.h>

#include "dedup.h"
#include "identity.h"
#include "peerstore.h"
#include "wire.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mm_gossip_config {
	unsigned difficulty;     /* origin proof of work required (22) */
	uint8_t ttl;             /* hops for our own events (6) */
	uint32_t max_future_ms;  /* timestamps further ahead are refused (600000) */
} mm_gossip_config_t;

enum mm_gossip_verdict {
	MM_G_FORWARD = 0,   /* applied (or already known), forward *fwd */
	MM_G_DONE = 1,      /* applied, ttl exhausted: nothing to forward */
	MM_G_DUP = 2,       /* seen already: drop silently */
	MM_G_STALE = 3,     /* older than the map: drop, not forwarded */
	MM_G_FULL = 4,      /* the map is at its bound (max_peers): dropped, not
	                     * forwarded; not the sender's fault (a Sybil flood
	                     * upstream is not its relays' misbehaviour) */
	MM_G_BAD_TIME = -1, /* misbehaviour from here on */
	MM_G_BAD_POW = -2,
	MM_G_BAD_SIG = -3,
	MM_G_LIE = -4       /* the map refused it as evidence (see peerstore.h) */
};

typedef struct mm_gossip_stats {
	uint64_t received, dup, stale, bad_time, bad_pow, bad_sig, lies,
	    verified, applied, forwarded, local, full;
} mm_gossip_stats_t;

typedef struct mm_gossip mm_gossip_t;

void mm_gossip_config_default(mm_gossip_config_t *c);
int mm_gossip_create(const mm_gossip_config_t *c, const mm_identity_t *self,
    mm_ps_t *ps, mm_dedup_t *dedup, mm_gossip_t **out);
void mm_gossip_destroy(mm_gossip_t *g);

/* One of our links went up or down: sign the event, apply it to our own
 * map, and fill *out to send on every link. now_ms: unix ms; store_now: the
 * store's clock. Sequence numbers come from the clock (4 per second, then
 * borrowing ahead), so a restarted node's events are not taken as stale. */
int mm_gossip_local(mm_gossip_t *g, int kind, const uint8_t peer[32], int dir,
    uint64_t now_ms, uint32_t store_now, mm_w_event_t *out);
/* out NULL: the change is applied to our own map but not signed; it is
 * held for mm_gossip_seal. Signing costs about as much as a verify, and a
 * burst of link changes (a bootstrap node's storm of newcomers) needs
 * only its last event sent, since that one carries our whole list.
 * mm_gossip_seal: the held change, signed under a new sequence number
 * with the list as it is now, in *out (-ENOENT: nothing held). */
int mm_gossip_seal(mm_gossip_t *g, uint64_t now_ms, uint32_t store_now,
    mm_w_event_t *out);

/* A received event: a verdict; on MM_G_FORWARD, *fwd is what to send on. */
/* From any thread (a connection's, before the event travels to the
 * shard): is this event a duplicate of one this engine has accepted? 1:
 * drop it; 0: send it on (mm_gossip_receive decides). */
int mm_gossip_probe(const mm_gossip_t *g, const mm_w_event_t *e, uint32_t now_ms);
int mm_gossip_receive(mm_gossip_t *g, const mm_w_event_t *in, uint64_t now_ms,
    uint32_t store_now, mm_w_event_t *fwd);
/* From any thread (a connection's worker, so that the verifies of a node
 * with several workers follow its links rather than the origins' shards;
 * the engine and the map are only read): the checks mm_gossip_receive
 * makes before its verify (timestamp, proof of work, staleness against
 * the map), then the verify. origin: the event's id, SHA-256 of its pub
 * (the caller has it). -1: the event fails one of those checks
 * (mm_gossip_receive will say which; nothing spent on it), else
 * mm_id_verify's answer, 1 good or 0 bad. */
int mm_gossip_preverify(const mm_gossip_t *g, const mm_w_event_t *in,
    const uint8_t origin[32], uint64_t now_ms, int *memo_hit);
/* Keep the signatures mm_gossip_preverify found good (4,096 slots, 32
 * KB): a copy racing ahead of its shard's dedup record is then not
 * verified again (*memo_hit 1: the verdict came from there). 0 or -errno. */
int mm_gossip_preverify_memo(mm_gossip_t *g);
/* mm_gossip_receive with the signature's verdict already known: sig 1 or
 * 0 as mm_gossip_preverify gave it for these very bytes (not verified
 * again, not counted in stats.verified), -1 unknown (verified here). */
int mm_gossip_receive_sig(mm_gossip_t *g, const mm_w_event_t *in, uint64_t now_ms,
    uint32_t store_now, int sig, mm_w_event_t *fwd);

void mm_gossip_stats(const mm_gossip_t *g, mm_gossip_stats_t *out);
const char *mm_gossip_verdict_name(int v);

#ifdef __cplusplus
}
#endif
#endif
