#include "mm_rt.h"

#include <stdlib.h>

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

void
mm_buf_ref(mm_buf_t *b)
{
	__atomic_fetch_add(&b->refs, 1, __ATOMIC_RELAXED);
}

void
mm_buf_release(mm_buf_t *b)
{
	/* acq_rel: every holder's reads happen before the free. */
	if (b != NULL && __atomic_fetch_sub(&b->refs, 1, __ATOMIC_ACQ_REL) == 1)
		free(b);
}
