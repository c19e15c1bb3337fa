/*
 * Bounded lock-free MPSC mailbox: ck_ring for the slots, one atomic counter
 * for scheduling.
 *
 * Concurrency contract: mm_mbox_push* from any number of threads at once;
 * everything else ("consumer side") by one active caller at a time, which in
 * the runtime is the owner worker.
 *
 * Why a counter beside the ring. ck_ring's enqueue can report the ring's size,
 * but that size is computed from a consumer snapshot taken before the
 * producer's CAS and can over-state it, so it cannot safely say "the mailbox
 * was empty" (a lost wake-up). Instead `count` holds the number of messages
 * that are committed to the ring and not yet consumed, incremented after the
 * ring commit and decremented by the consumer after it has consumed them.
 * The actor is scheduled exactly while count > 0: the producer whose
 * increment takes count from 0 to 1 schedules it (mm_mbox_push returns 1),
 * and the consumer keeps it scheduled until its decrement brings count back
 * to 0. Because increments follow ring commits, count never exceeds the
 * number of committed entries, so the consumer can always pop `count`
 * entries without finding the ring empty.
 *
 * Closing sets the top bit of count: later pushes are refused, and a push
 * racing with the close (it committed before seeing the bit) leaves its
 * message for mm_mbox_destroy to discard.
 */
#ifndef MM_MAILBOX_H
#define MM_MAILBOX_H

#include <ck_ring.h>
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "mm_rt.h"
#include "tsan.h"

CK_RING_PROTOTYPE(mm_msg, mm_msg)

#define MM_MBOX_CLOSED (UINT64_C(1) << 63)

typedef struct mm_mbox {
	/* Written by producers (increment) and the consumer (decrement). */
	_Alignas(64) _Atomic uint64_t count;
	char pad_[64 - sizeof(uint64_t)];
	/* ck_ring puts its consumer and producer indices on separate lines. */
	ck_ring_t ring;
	/* Read-only after init. */
	struct mm_msg *slots;
	unsigned cap; /* usable capacity (ring size - 1) */
} mm_mbox_t;

/* cap: wanted capacity; rounded up so that the ring size is a power of two
 * strictly greater than cap. Returns 0 or -ENOMEM/-EINVAL. */
int mm_mbox_init(mm_mbox_t *mb, unsigned cap);

/* Consumer side, after no producer can reach the mailbox any more: discard
 * whatever is left through drop(msg, ctx) and free the slots. Returns the
 * number of messages discarded. */
unsigned mm_mbox_destroy(mm_mbox_t *mb,
    void (*drop)(const mm_msg_t *, void *), void *ctx);

/*
 * Commit a reserved slot: ck's own protocol (ck_ring_enqueue_commit_mpsc:
 * wait until every earlier ticket is published, store fence, publish ours),
 * with one change: after a bounded spin the waiter yields. ck spins without
 * end, and a producer preempted between reserve and commit then makes every
 * later producer burn whole time slices; with more runnable threads than
 * cores (7 on 2 cores in stress_runtime under ASan) that convoy cut
 * throughput to about one message per slice.
 */
#define MM_MBOX_COMMIT_SPINS 128
MM_NO_TSAN static inline void
mm__mbox_commit(mm_mbox_t *mb, unsigned int ticket)
{
	unsigned spins = 0;
	while (ck_pr_load_uint(&mb->ring.p_tail) != ticket) {
		if (++spins < MM_MBOX_COMMIT_SPINS)
			ck_pr_stall();
		else
			sched_yield();
	}
	/* The slot's contents are visible before the new p_tail. */
	ck_pr_fence_store();
	ck_pr_store_uint(&mb->ring.p_tail, ticket + 1);
}

/* ck_ring's slot copies are ordered by its own p_tail/c_head accesses, which
 * are inline assembly that ThreadSanitizer cannot see; the copies are hidden
 * from it here, and the hand-over is annotated in push/pop below. */
MM_NO_TSAN static inline bool
mm__mbox_ring_put(mm_mbox_t *mb, const mm_msg_t *m)
{
	unsigned int ticket;
	struct mm_msg *slot = ck_ring_enqueue_reserve_mpsc_mm_msg(&mb->ring,
	    mb->slots, &ticket);
	if (slot == NULL)
		return false; /* full */
	*slot = *m;
	mm__mbox_commit(mb, ticket);
	return true;
}

MM_NO_TSAN static inline bool
mm__mbox_ring_get(mm_mbox_t *mb, mm_msg_t *out)
{
	return ck_ring_dequeue_mpsc_mm_msg(&mb->ring, mb->slots, out);
}

/* Push a copy of *m. Any thread. Returns 1 if the mailbox was empty (the
 * caller must schedule the actor), 0 if queued behind other messages,
 * -EAGAIN if full, -EPIPE if closed. On a negative return nothing was queued.
 */
static inline int
mm_mbox_push(mm_mbox_t *mb, const mm_msg_t *m)
{
	/* acquire: pairs with the close's release so that a refused sender
	 * sees the actor's final state consistently (cheap on x86: a load). */
	if (atomic_load_explicit(&mb->count, memory_order_acquire) &
	    MM_MBOX_CLOSED)
		return -EPIPE;
	/* Writes to the payload happen before this point; the consumer
	 * acquires after its pop (see mm_mbox_pop). */
	MM_TSAN_RELEASE(&mb->ring);
	if (!mm__mbox_ring_put(mb, m))
		return -EAGAIN;
	/* release: the ring commit (p_tail store) and the entry are visible to
	 * a consumer that acquires this count value. acquire: if we take count
	 * from 0 we are about to schedule the actor, writing its queue links;
	 * the consumer's last writes to them happened before its release
	 * decrement to 0 and must happen before ours (TSan found this one). */
	uint64_t old = atomic_fetch_add_explicit(&mb->count, 1,
	    memory_order_acq_rel);
	if (old & MM_MBOX_CLOSED)
		return 0; /* discarded by mm_mbox_destroy */
	return old == 0 ? 1 : 0;
}

/* Consumer: number of messages that may be popped now (0 if closed). */
static inline uint64_t
mm_mbox_pending(mm_mbox_t *mb)
{
	/* acquire: pairs with the producers' release increments. */
	uint64_t c = atomic_load_explicit(&mb->count, memory_order_acquire);
	return (c & MM_MBOX_CLOSED) ? 0 : c;
}

/* Consumer: pop one. Only call after mm_mbox_pending said it is there. */
static inline bool
mm_mbox_pop(mm_mbox_t *mb, mm_msg_t *out)
{
	if (!mm__mbox_ring_get(mb, out))
		return false;
	MM_TSAN_ACQUIRE(&mb->ring);
	return true;
}

/* Consumer: n messages popped and handled. Returns how many remain counted
 * (0: the actor is no longer scheduled; the next push returns 1). */
static inline uint64_t
mm_mbox_done(mm_mbox_t *mb, uint64_t n)
{
	/* acq_rel: release so that this turn's work is ordered before the
	 * producer that schedules the next turn; acquire for the remainder. */
	uint64_t old = atomic_fetch_sub_explicit(&mb->count, n,
	    memory_order_acq_rel);
	return (old - n) & ~MM_MBOX_CLOSED;
}

/* Consumer: close. Returns messages still counted at close time. */
static inline uint64_t
mm_mbox_close(mm_mbox_t *mb)
{
	uint64_t old = atomic_fetch_or_explicit(&mb->count, MM_MBOX_CLOSED,
	    memory_order_acq_rel);
	return old & ~MM_MBOX_CLOSED;
}

/* Any thread: snapshot of messages waiting (closed: 0). */
static inline unsigned
mm_mbox_size(const mm_mbox_t *mb)
{
	uint64_t c = atomic_load_explicit(&((mm_mbox_t *)mb)->count,
	    memory_order_relaxed);
	return (c & MM_MBOX_CLOSED) ? 0 : (unsigned)c;
}

#endif
