/*
 * Sequence lock for one writer and many lock-free readers, in C11 atomics.
 *
 * ck_sequence implements the same protocol, but with fences in inline
 * assembly that ThreadSanitizer cannot see, and C11 requires the protected
 * fields themselves to be atomics for the read side to be free of data
 * races. Standalone fences are also unsupported by gcc's TSan, so this is
 * the fence-free form (Boehm, "Can seqlocks get along with programming
 * language memory models?", 2012): protected fields are stored with
 * MM_SEQ_ST (release) and loaded with MM_SEQ_LD (acquire). A reader that
 * sees any of a writer's new data then also sees the writer's odd version
 * and retries. On x86 both are plain moves; on ARMv8, stlr/ldar.
 *
 * Writer (one at a time): v = mm_seq_write_begin(&s); ...MM_SEQ_ST
 * stores...; mm_seq_write_end(&s, v).  Reader: do { v =
 * mm_seq_read_begin(&s); ...MM_SEQ_LD loads into locals... } while
 * (mm_seq_read_retry(&s, v)).
 */
#ifndef MM_SEQLOCK_H
#define MM_SEQLOCK_H

#include <stdatomic.h>
#include <stdbool.h>

typedef atomic_uint mm_seq_t;

#define MM_SEQ_ST memory_order_release
#define MM_SEQ_LD memory_order_acquire

static inline unsigned
mm_seq_write_begin(mm_seq_t *s)
{
	unsigned v = atomic_load_explicit(s, memory_order_relaxed);
	/* Odd: busy. The data stores that follow are releases, so this store
	 * is visible to any reader that sees one of them. */
	atomic_store_explicit(s, v + 1, memory_order_relaxed);
	return v + 1;
}

static inline void
mm_seq_write_end(mm_seq_t *s, unsigned v)
{
	/* release: the data stores happen before the even version. */
	atomic_store_explicit(s, v + 1, memory_order_release);
}

static inline unsigned
mm_seq_read_begin(mm_seq_t *s)
{
	unsigned v;
	/* acquire: pairs with write_end; wait while a write is in progress. */
	while ((v = atomic_load_explicit(s, memory_order_acquire)) & 1u)
		;
	return v;
}

static inline bool
mm_seq_read_retry(mm_seq_t *s, unsigned v)
{
	/* The acquire data loads before this are ordered before it. */
	return atomic_load_explicit(s, memory_order_relaxed) != v;
}

#endif
