/*
 * Ban list: by peer id, or by address (an IPv4 or IPv6 prefix; IPv4 is kept
 * as ::ffff:a.b.c.d, so 10.0.0.0/8 is stored as /104). Each ban has a reason
 * and an expiry (0 = never). Bounded (cap bans): adding past it fails rather
 * than growing. Persisted by the snapshot (snapshot.h).
 *
 * Matching is a linear scan: bans are checked at accept and handshake time,
 * a few per second, over at most a few thousand entries.
 * Single thread at a time (the node's ban actor owns it).
 */
#ifndef MM_BANS_H
#define MM_BANS_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum mm_ban_kind { MM_BAN_ID = 1, MM_BAN_ADDR = 2 };

#define MM_BAN_REASON_MAX 63

typedef struct mm_ban {
	uint8_t kind;       /* enum mm_ban_kind */
	uint8_t plen;       /* prefix bits of key (ADDR: 0..128); ID: 0 */
	uint8_t key[32];    /* id, or the 16-byte address (rest zero) */
	uint64_t created;   /* unix seconds */
	uint64_t expires;   /* unix seconds, 0 = never */
	char reason[MM_BAN_REASON_MAX + 1];
} mm_ban_t;

typedef struct mm_bans mm_bans_t;

mm_bans_t *mm_bans_new(unsigned cap);
void mm_bans_free(mm_bans_t *b);

/* Add or replace (same kind, key and prefix). -ENOSPC when full, -EINVAL
 * for a bad kind or prefix. The address is masked to its prefix. */
int mm_bans_add(mm_bans_t *b, const mm_ban_t *ban);
int mm_bans_remove(mm_bans_t *b, uint8_t kind, const uint8_t *key, uint8_t plen);
/* The ban that applies now, or NULL. An address matches the longest
 * covering prefix. */
const mm_ban_t *mm_bans_match_id(const mm_bans_t *b, const uint8_t id[32],
    uint64_t now);
const mm_ban_t *mm_bans_match_addr(const mm_bans_t *b, const uint8_t ip[16],
    uint64_t now);
unsigned mm_bans_expire(mm_bans_t *b, uint64_t now);
unsigned mm_bans_count(const mm_bans_t *b);
const mm_ban_t *mm_bans_at(const mm_bans_t *b, unsigned i); /* listing */

/* Parse "1.2.3.4", "10.0.0.0/8", "2001:db8::/32", "::1" into a 16-byte
 * address and a prefix length (IPv4 mapped, prefix + 96). 0 or -EINVAL. */
int mm_ban_parse_addr(const char *s, uint8_t ip[16], uint8_t *plen);

#ifdef __cplusplus
}
#endif
#endif
