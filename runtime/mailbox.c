#include "mailbox.h"

#include <stdlib.h>

int
mm_mbox_init(mm_mbox_t *mb, unsigned cap)
{
	if (cap == 0 || cap > (1u << 24))
		return -EINVAL;
	unsigned size = 2;
	while (size <= cap) /* ck_ring holds size - 1 entries */
		size <<= 1;
	mb->slots = calloc(size, sizeof(struct mm_msg));
	if (mb->slots == NULL)
		return -ENOMEM;
	ck_ring_init(&mb->ring, size);
	mb->cap = size - 1;
	atomic_init(&mb->count, 0);
	return 0;
}

unsigned
mm_mbox_destroy(mm_mbox_t *mb, void (*drop)(const mm_msg_t *, void *),
    void *ctx)
{
	unsigned n = 0;
	mm_msg_t m;

	/* Every producer has finished (the caller guarantees no references
	 * remain), so whatever the ring holds is committed. */
	while (mm_mbox_pop(mb, &m)) {
		if (drop != NULL)
			drop(&m, ctx);
		n++;
	}
	free(mb->slots);
	mb->slots = NULL;
	return n;
}
