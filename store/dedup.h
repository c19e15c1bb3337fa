/*
 * Dedup ring (seed §3.2): a fixed-size, time-windowed set of recent message
 * ids, "forward only if absent".
 *
 * Buckets of 8 slots, one cache line each; a slot holds a fingerprint of the
 * id and the time it was first seen. The bucket and the fingerprint come
 * from SipHash-1-3 under a per-node random key, so nobody can craft ids that
 * collide in our table. A check touches one bucket: a matching fingerprint
 * seen within the window is a duplicate; otherwise the id takes the oldest
 * slot (an expired one if any). Memory is constant whatever the flood.
 *
 * Error rates, for 8 slots and f fingerprint bits (default 32):
 * - false positive (a new id taken for a duplicate): at most 8 / 2^f per
 *   check when every slot is live: 1.9e-9 at f = 32 (test_dedup measures it
 *   at f = 8, where it is 3.1%);
 * - false negative (a duplicate seen again after its slot was taken while
 *   still in the window): only when more than 8 ids of one window land in
 *   one bucket, i.e. when the flood exceeds the capacity; counted in
 *   evicted_live. Such a duplicate is forwarded once more, bounded by ttl.
 *
 * One instance per gossip shard: a single thread at a time, except
 * mm_dedup_probe_bytes, which any thread may call meanwhile.
 */
#ifndef MM_DEDUP_H
#define MM_DEDUP_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mm_dedup mm_dedup_t;

typedef struct mm_dedup_config {
	uint32_t capacity;  /* ids, rounded up to 8 x power of two; 262144 */
	uint32_t window_ms; /* how long an id counts as seen; 60000 */
	unsigned fp_bits;   /* fingerprint bits, 8..32; 32 (tests use fewer) */
	uint64_t key[2];    /* 0,0 = random */
} mm_dedup_config_t;

typedef struct mm_dedup_stats {
	uint64_t checks, duplicates, evicted_live;
	size_t bytes;
	uint32_t capacity;
} mm_dedup_stats_t;

void mm_dedup_config_default(mm_dedup_config_t *c);
int mm_dedup_create(const mm_dedup_config_t *c, mm_dedup_t **out);
void mm_dedup_destroy(mm_dedup_t *d);

/* 1: id was seen within the window (drop it); 0: new, now recorded. */
int mm_dedup_check(mm_dedup_t *d, const uint8_t id[32], uint32_t now_ms);
/* The same for a message given as bytes: one SipHash over them under the
 * ring's secret key, no digest first (the keyed hash already makes
 * collisions unreachable for whoever does not know the key). */
int mm_dedup_check_bytes(mm_dedup_t *d, const void *msg, size_t len,
    uint32_t now_ms);
/* Look and record separately, for a caller that records a message only
 * once it has proved genuine (so that a forged copy, raced ahead, cannot
 * get the genuine one dropped). seen: 1 if recorded within the window
 * (counted as a check and a duplicate), 0 if not (counted as a check). */
int mm_dedup_seen_bytes(mm_dedup_t *d, const void *msg, size_t len,
    uint32_t now_ms);
void mm_dedup_add_bytes(mm_dedup_t *d, const void *msg, size_t len,
    uint32_t now_ms);

/* From any thread, while the owner works: was this message recorded within
 * the window? Read-only, not counted. A probe may miss an id recorded at
 * that very moment (the owner's check then catches it); it never reports
 * as seen an id that was not recorded (the slot's fingerprint is read
 * before its time, which the owner writes first). */
int mm_dedup_probe_bytes(const mm_dedup_t *d, const void *msg, size_t len,
    uint32_t now_ms);

void mm_dedup_stats(const mm_dedup_t *d, mm_dedup_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif
