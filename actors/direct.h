/*
 * Source-routed direct messages (seed paper §3.4) as pure logic: build and
 * sign, rewrite once at a relay, verify at the destination, and the
 * relay's signed failure notice. No I/O: the node and the simulator call
 * these the same way. Wire format and signed bytes: docs/PROTOCOL.md.
 *
 * Who checks what. A relay checks only what costs nothing: it is the hop
 * named by `at`, the previous hop is the peer the frame came from, and a
 * rewrite is only there if the origin allowed it (rr). Signatures are
 * checked by the destination alone (the origin's, and the rewriter's if
 * the route was rewritten), so relaying costs no public-key work.
 */
#ifndef MM_DIRECT_H
#define MM_DIRECT_H

#include <stdint.h>

#include "identity.h"
#include "wire.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Sign a new message: route[n] ids (n in 2..16, route[0] = our id), the
 * payload, rr (one rewrite allowed). out's byte strings point at route
 * and data, which must outlive it. */
int mm_direct_make(const mm_identity_t *self, const uint8_t *route, unsigned n,
    int rr, uint64_t nonce, uint64_t ts, const void *data, uint32_t len,
    mm_w_direct_t *out);

/* Verdicts (destination and relays). */
enum mm_direct_verdict {
	MM_D_OK = 0,
	MM_D_WRONG_HOP = -1,   /* route[at] is not us, or route[at-1] not the sender */
	MM_D_RW_NO_FLAG = -2,  /* a rewrite the origin did not allow */
	MM_D_RW_TWICE = -3,    /* a rewrite of a rewritten message */
	MM_D_BAD_POW = -4,     /* origin's or rewriter's proof of work */
	MM_D_BAD_SIG = -5,     /* origin's signature */
	MM_D_BAD_RW_SIG = -6,  /* the rewriter's signature, or it is not route0[rw_at] */
	MM_D_STALE = -7        /* older than max_age_ms or ahead of our clock */
};
const char *mm_direct_verdict_name(int v);

/* Relay and destination: the free checks. self: our id; from: the id of
 * the peer the frame came from. */
int mm_direct_hop_check(const mm_w_direct_t *d, const uint8_t self[32],
    const uint8_t from[32]);

/* Destination: the signatures and proofs of work (two Ed25519 verifies at
 * most), and the clock (ts within max_age_ms of now_ms either way). */
int mm_direct_verify(const mm_w_direct_t *d, unsigned difficulty, uint64_t now_ms,
    uint64_t max_age_ms);

/* Relay at index in->at: replace the rest of the route by suffix[ns] (our
 * path to the destination, starting with the next hop, ending with the
 * destination), consume the flag and sign. buf holds the new route (16 x
 * 32 bytes). Returns MM_D_RW_NO_FLAG / MM_D_RW_TWICE if the message may
 * not be rewritten, -EINVAL if the new route is not a route (too long, a
 * loop, another destination). */
int mm_direct_rewrite(const mm_identity_t *self, const mm_w_direct_t *in,
    const uint8_t *suffix, unsigned ns, uint8_t buf[32 * MM_WIRE_ROUTE_MAX],
    mm_w_direct_t *out);

/* Relay at index d->at that cannot forward: the signed notice back to the
 * origin, along the route so far reversed (buf: 16 x 32 bytes). */
int mm_direct_fail(const mm_identity_t *self, const mm_w_direct_t *d, uint32_t code,
    uint8_t buf[32 * MM_WIRE_ROUTE_MAX], mm_w_dfail_t *out);
/* The origin: is the notice signed by the relay it names (route[0])? */
int mm_dfail_verify(const mm_w_dfail_t *f, unsigned difficulty);

/* Route choice between first hops: hops[i] is the route length through
 * candidate i (0: no route), rtt_us[i] its link's round-trip time (0:
 * not measured yet, ranked after every measured one). The fewest hops
 * win; among equals, the lowest RTT. Returns the index, or -1. */
int mm_route_pick(const unsigned *hops, const uint32_t *rtt_us, unsigned n);

#ifdef __cplusplus
}
#endif
#endif
