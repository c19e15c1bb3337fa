#include "mm_rt.h"

#include <stdlib.h>
#include <string.h>

mm_buf_t *
mm_buf_alloc(uint32_t cap)
{
	/* Size classes and per-thread caches are jemalloc's (each worker is
	 * bound to its own arena, see mem.c); a pool of our own would only
	 * duplicate them. */
	mm_buf_t *b = malloc(sizeof(*b) + cap);
	if (b == NULL)
		return NULL;
	b->refs = 1;
	b->len = 0;
	b->cap = cap;
	b->reserved = 0;
	return b;
}

#ifdef MM_SIMULATOR
/* The simulator's buffers of identical bytes, shared (mm_buf_copy): every
 * simulated node encodes its own copy of each event it relays and keeps
 * it in its join sync log, so at 2,500 nodes the logs held 2,500 copies of
 * each recent event (about 2.6 MB a node of 4.7; docs/RESULTS-SIM.md).
 * Copies differ only by ttl, so a few distinct frames an event are left.
 * One thread (the simulator's): no locks. Linear probing on a hash of the
 * bytes; a slot is freed with the buffer (backward shift, no tombstones). */
#include "siphash.h"
#include <string.h>

struct islot {
	uint64_t h;
	mm_buf_t *b;
};
static struct islot *itab;
static uint32_t icap, ilen;

static uint64_t
ihash(const void *p, uint32_t n)
{
	return mm_siphash13(0x6d6d627566ull, 0x696e7465726eull, p, n) | 1; /* 0: empty */
}

static int
igrow(void)
{
	uint32_t ncap = icap ? icap * 2 : 1024;
	struct islot *nt = calloc(ncap, sizeof(*nt));
	if (nt == NULL)
		return -1;
	for (uint32_t i = 0; i < icap; i++)
		if (itab[i].h != 0) {
			uint32_t j = (uint32_t)itab[i].h & (ncap - 1);
			while (nt[j].h != 0)
				j = (j + 1) & (ncap - 1);
			nt[j] = itab[i];
		}
	free(itab);
	itab = nt;
	icap = ncap;
	return 0;
}

mm_buf_t *
mm_buf_copy(const void *data, uint32_t len)
{
	if ((ilen + 1) * 2 > icap && igrow() != 0)
		return NULL;
	uint64_t h = ihash(data, len);
	uint32_t j = (uint32_t)h & (icap - 1);
	for (; itab[j].h != 0; j = (j + 1) & (icap - 1))
		if (itab[j].h == h && itab[j].b->len == len &&
		    memcmp(itab[j].b->data, data, len) == 0) {
			mm_buf_ref(itab[j].b);
			return itab[j].b;
		}
	mm_buf_t *b = mm_buf_alloc(len);
	if (b == NULL)
		return NULL;
	memcpy(b->data, data, len);
	b->len = len;
	b->reserved = (uint32_t)h; /* odd, so never 0: interned, and where its
	                            * probe starts (the mask is below 2^32) */
	itab[j].h = h;
	itab[j].b = b;
	ilen++;
	return b;
}

/* b's slot emptied; the run after it shifted back into the hole. */
static void
iremove(mm_buf_t *b)
{
	uint32_t mask = icap - 1, j = b->reserved & mask;
	while (itab[j].b != b)
		j = (j + 1) & mask;
	for (uint32_t k = (j + 1) & mask; itab[k].h != 0; k = (k + 1) & mask) {
		uint32_t home = (uint32_t)itab[k].h & mask;
		/* k's entry may fill the hole at j unless its home lies
		 * cyclically in (j, k] */
		if (((k - home) & mask) >= ((k - j) & mask)) {
			itab[j] = itab[k];
			j = k;
		}
	}
	itab[j].h = 0;
	itab[j].b = NULL;
	ilen--;
}
#else
mm_buf_t *
mm_buf_copy(const void *data, uint32_t len)
{
	mm_buf_t *b = mm_buf_alloc(len);
	if (b == NULL)
		return NULL;
	memcpy(b->data, data, len);
	b->len = len;
	return b;
}
#endif

void
mm_buf_ref(mm_buf_t *b)
{
	__atomic_fetch_add(&b->refs, 1, __ATOMIC_RELAXED);
}

void
mm_buf_release(mm_buf_t *b)
{
	/* acq_rel: every holder's reads happen before the free. */
	if (b != NULL && __atomic_fetch_sub(&b->refs, 1, __ATOMIC_ACQ_REL) == 1) {
#ifdef MM_SIMULATOR
		if (b->reserved != 0)
			iremove(b);
#endif
		free(b);
	}
}
