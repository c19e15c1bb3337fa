/* Benchmark kernels in C (the mailbox internals use C11 atomics that C++
 * cannot include); bench_runtime.cc times them with Google Benchmark. */
#ifndef MM_BENCH_KERNELS_H
#define MM_BENCH_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One thread: push `batch` messages then pop them, n messages in total. */
void bk_mbox_pushpop(uint64_t n, unsigned batch);
/* `producers` threads push n each; the calling thread consumes them all. */
void bk_mbox_mpsc(uint64_t n, unsigned producers);

typedef struct bk_world bk_world_t;
/* Actor pairs on a runtime of `workers` workers. Each pair plays `balls`
 * balls at once. cross: the two actors of a pair are on different workers;
 * otherwise pair i lives on worker i % workers. */
bk_world_t *bk_pairs_new(unsigned workers, unsigned pairs, int cross,
    unsigned balls);
/* A ring of n actors spread round robin over the workers (or all on worker
 * 0 if spread is 0), with `tokens` tokens circulating. */
bk_world_t *bk_ring_new(unsigned workers, unsigned n, unsigned tokens,
    int spread);
/* Run: every ball/token makes `hops` hops. Returns messages delivered. */
uint64_t bk_run(bk_world_t *w, uint64_t hops);
void bk_free(bk_world_t *w);

#ifdef __cplusplus
}
#endif
#endif
