#include "dedup.h"

#include <stdatomic.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mm_rt.h"
#include "siphash.h"

#define SLOTS 8

/* Slots are atomics: the owner (one thread) writes them, and other threads
 * may probe (mm_dedup_probe_bytes). The owner writes a slot's time before
 * its fingerprint (release), a prober reads the fingerprint first
 * (acquire): a prober that sees a fingerprint sees at least the time
 * written with it. Relaxed everywhere else: plain loads and stores on x86
 * and ARM. */
struct bucket {
	_Atomic uint32_t fp[SLOTS]; /* 0 = empty */
	_Atomic uint32_t t[SLOTS];
};
#define LDR(x) atomic_load_explicit(&(x), memory_order_relaxed)

struct mm_dedup {
	struct bucket *b;
	uint32_t mask;
	uint32_t window;
	uint32_t fp_mask;
	uint64_t k0, k1;
	uint64_t checks, duplicates, evicted_live;
};

void
mm_dedup_config_default(mm_dedup_config_t *c)
{
	memset(c, 0, sizeof(*c));
	c->capacity = 262144;
	c->window_ms = 60000;
	c->fp_bits = 32;
}

int
mm_dedup_create(const mm_dedup_config_t *cfg, mm_dedup_t **out)
{
	mm_dedup_config_t c;
	if (cfg == NULL)
		mm_dedup_config_default(&c);
	else
		c = *cfg;
	if (c.capacity == 0 || c.capacity > (1u << 30) || c.fp_bits < 8 ||
	    c.fp_bits > 32 || c.window_ms == 0 || c.window_ms > (1u << 31))
		return -EINVAL;
	mm_dedup_t *d = calloc(1, sizeof(*d));
	if (d == NULL)
		return -ENOMEM;
	uint32_t nb = 1;
	while (nb * SLOTS < c.capacity)
		nb <<= 1;
	d->b = aligned_alloc(64, (size_t)nb * sizeof(struct bucket));
	if (d->b == NULL) {
		free(d);
		return -ENOMEM;
	}
	memset(d->b, 0, (size_t)nb * sizeof(struct bucket));
	d->mask = nb - 1;
	d->window = c.window_ms;
	d->fp_mask = c.fp_bits == 32 ? UINT32_MAX : (1u << c.fp_bits) - 1;
	if (c.key[0] == 0 && c.key[1] == 0) {
		uint64_t k[2];
		if (mm_secure_random(k, sizeof(k)) != 0) {
			free(d->b);
			free(d);
			return -EIO;
		}
		d->k0 = k[0];
		d->k1 = k[1];
	} else {
		d->k0 = c.key[0];
		d->k1 = c.key[1];
	}
	*out = d;
	return 0;
}

void
mm_dedup_destroy(mm_dedup_t *d)
{
	if (d != NULL)
		free(d->b);
	free(d);
}

/* record 1: look and record; 0: look only (counted as a check);
 * -1: record only (not counted). */
static int
check_hash(mm_dedup_t *d, uint64_t h, uint32_t now, int record)
{
	struct bucket *b = &d->b[h & d->mask];
	uint32_t fp = (uint32_t)(h >> 32) & d->fp_mask;
	if (fp == 0)
		fp = 1; /* 0 marks an empty slot */
	if (record >= 0)
		d->checks++;
	unsigned victim = 0;
	uint32_t oldest = 0;
	for (unsigned i = 0; i < SLOTS; i++) {
		uint32_t age = now - LDR(b->t[i]); /* wraps correctly: 49 days */
		uint32_t f = LDR(b->fp[i]);
		if (f == fp && age < d->window) {
			if (record >= 0)
				d->duplicates++;
			return 1;
		}
		if (f == 0)
			age = UINT32_MAX;
		if (age >= oldest) {
			oldest = age;
			victim = i;
		}
	}
	if (record == 0)
		return 0;
	if (LDR(b->fp[victim]) != 0 && oldest < d->window)
		d->evicted_live++;
	atomic_store_explicit(&b->t[victim], now, memory_order_relaxed);
	atomic_store_explicit(&b->fp[victim], fp, memory_order_release);
	return 0;
}

int
mm_dedup_probe_bytes(const mm_dedup_t *d, const void *msg, size_t len, uint32_t now)
{
	uint64_t h = mm_siphash13(d->k0, d->k1, msg, len);
	const struct bucket *b = &d->b[h & d->mask];
	uint32_t fp = (uint32_t)(h >> 32) & d->fp_mask;
	if (fp == 0)
		fp = 1;
	for (unsigned i = 0; i < SLOTS; i++)
		if (atomic_load_explicit(&b->fp[i], memory_order_acquire) == fp &&
		    now - atomic_load_explicit(&b->t[i], memory_order_relaxed) < d->window)
			return 1;
	return 0;
}

int
mm_dedup_check(mm_dedup_t *d, const uint8_t id[32], uint32_t now)
{
	return check_hash(d, mm_siphash13(d->k0, d->k1, id, 32), now, 1);
}

int
mm_dedup_check_bytes(mm_dedup_t *d, const void *msg, size_t len, uint32_t now)
{
	return check_hash(d, mm_siphash13(d->k0, d->k1, msg, len), now, 1);
}

int
mm_dedup_seen_bytes(mm_dedup_t *d, const void *msg, size_t len, uint32_t now)
{
	return check_hash(d, mm_siphash13(d->k0, d->k1, msg, len), now, 0);
}

void
mm_dedup_add_bytes(mm_dedup_t *d, const void *msg, size_t len, uint32_t now)
{
	(void)check_hash(d, mm_siphash13(d->k0, d->k1, msg, len), now, -1);
}

void
mm_dedup_stats(const mm_dedup_t *d, mm_dedup_stats_t *out)
{
	out->checks = d->checks;
	out->duplicates = d->duplicates;
	out->evicted_live = d->evicted_live;
	out->capacity = (d->mask + 1) * SLOTS;
	out->bytes = sizeof(*d) + (size_t)(d->mask + 1) * sizeof(struct bucket);
}
