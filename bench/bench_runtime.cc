// Runtime micro-benchmarks (Google Benchmark). Figures and the commands that
// produced them are in bench/README.md; bench/run.sh computes the ratios.
#include <benchmark/benchmark.h>

#include "kernels.h"

namespace {

constexpr uint64_t kChunk = 1 << 20;

void BM_MailboxPushPop(benchmark::State &state) {
  unsigned batch = static_cast<unsigned>(state.range(0));
  for (auto _ : state) bk_mbox_pushpop(kChunk, batch);
  state.SetItemsProcessed(state.iterations() * kChunk);
}
BENCHMARK(BM_MailboxPushPop)->Arg(1)->Arg(64);

void BM_MailboxMPSC(benchmark::State &state) {
  unsigned producers = static_cast<unsigned>(state.range(0));
  for (auto _ : state) bk_mbox_mpsc(kChunk, producers);
  state.SetItemsProcessed(state.iterations() * kChunk * producers);
}
BENCHMARK(BM_MailboxMPSC)->Arg(1)->Arg(2)->UseRealTime();

// Args: workers, pairs, cross (pair spans two workers), balls per pair.
void BM_Pairs(benchmark::State &state) {
  bk_world_t *w = bk_pairs_new(static_cast<unsigned>(state.range(0)),
                               static_cast<unsigned>(state.range(1)),
                               static_cast<int>(state.range(2)),
                               static_cast<unsigned>(state.range(3)));
  uint64_t msgs = 0;
  const uint64_t hops = 200000 / static_cast<uint64_t>(state.range(3));
  for (auto _ : state) msgs += bk_run(w, hops);
  bk_free(w);
  state.SetItemsProcessed(static_cast<int64_t>(msgs));
}
BENCHMARK(BM_Pairs)
    ->ArgNames({"workers", "pairs", "cross", "balls"})
    ->Args({1, 1, 0, 1})    // ping-pong on one worker
    ->Args({2, 1, 1, 1})    // ping-pong across two workers (latency-bound)
    ->Args({2, 1, 1, 64})   // across two workers, 64 in flight (batched)
    ->Args({1, 8, 0, 8})    // 8 independent pairs, 1 worker
    ->Args({2, 8, 0, 8})    // the same 8 pairs over 2 workers
    ->Args({2, 8, 1, 8})    // 8 pairs, each spanning both workers
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// Args: workers, actors, tokens, spread over workers.
void BM_Ring(benchmark::State &state) {
  bk_world_t *w = bk_ring_new(static_cast<unsigned>(state.range(0)),
                              static_cast<unsigned>(state.range(1)),
                              static_cast<unsigned>(state.range(2)),
                              static_cast<int>(state.range(3)));
  uint64_t msgs = 0;
  const uint64_t hops = 400000 / static_cast<uint64_t>(state.range(2));
  for (auto _ : state) msgs += bk_run(w, hops);
  bk_free(w);
  state.SetItemsProcessed(static_cast<int64_t>(msgs));
}
BENCHMARK(BM_Ring)
    ->ArgNames({"workers", "actors", "tokens", "spread"})
    ->Args({1, 1024, 1, 0})
    ->Args({1, 1024, 64, 0})
    ->Args({2, 1024, 64, 1})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
