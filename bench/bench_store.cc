// Store benchmarks (Google Benchmark): a realistic 100k-peer map built from
// events, then every query the node needs on it; the dedup ring; snapshot
// save/load. bench/run_store.sh prints the report with the goals.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <array>
#include <chrono>
#include <cstring>
#include <string>
#include <unistd.h>
#include <vector>

#include "dedup.h"
#include "mm_rt.h"
#include "peerstore.h"
#include "psquery.h"
#include "snapshot.h"

namespace {

constexpr uint32_t kPeers = 100000;
constexpr unsigned kDegree = 12;

uint64_t rng_state = 0x2545F4914F6CDD1Dull;
uint64_t Rnd() {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

void MakeId(uint8_t id[32], uint32_t n) {
  uint64_t v = (n + 1) * 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < 4; i++) {
    v ^= v >> 31;
    v *= 0xbf58476d1ce4e5b9ull;
    std::memcpy(id + 8 * i, &v, 8);
  }
}

struct Map {
  mm_ps_t *ps = nullptr;
  std::vector<std::array<uint8_t, 32>> ids;
  double bytes_per_peer = 0, bytes_per_peer_cached = 0, store_bytes_per_peer = 0,
         build_s = 0;
  uint64_t events = 0;
};

Map *TheMap() {
  static Map *m = nullptr;
  if (m != nullptr) return m;
  m = new Map;
  m->ids.resize(kPeers);
  for (uint32_t i = 0; i < kPeers; i++) MakeId(m->ids[i].data(), i);
  // A random graph with ~12 neighbours each, as the selector would aim for.
  std::vector<std::vector<uint32_t>> adj(kPeers);
  for (uint32_t u = 0; u < kPeers; u++) {
    unsigned tries = 0;
    while (adj[u].size() < kDegree && tries++ < 100) {
      uint32_t v = static_cast<uint32_t>(Rnd() % kPeers);
      if (v == u || adj[v].size() >= kDegree) continue;
      bool dup = false;
      for (uint32_t w : adj[u]) dup |= w == v;
      if (dup) continue;
      adj[u].push_back(v);
      adj[v].push_back(u);
    }
  }
  std::vector<uint32_t> seq(kPeers, 0);
  mm_mem_stats_t before, after, after_cached;
  mm_mem_flush_thread_cache();
  mm_mem_sample(&before, 0);  // everything the benchmark itself needs is above
  mm_ps_config_t c;
  mm_ps_config_default(&c);
  c.max_peers = 131072;
  if (mm_ps_create(&c, &m->ps) != 0) abort();
  auto t0 = std::chrono::steady_clock::now();
  for (uint32_t u = 0; u < kPeers; u++)
    for (uint32_t v : adj[u]) {
      // u reports the edge; u dialled when u < v.
      mm_ps_event_t e = {m->ids[u].data(), m->ids[v].data(), MM_PS_CONNECT,
                         static_cast<uint8_t>(u < v ? MM_PS_OUT : MM_PS_IN),
                         ++seq[u], 1000};
      if (mm_ps_apply(m->ps, &e) != MM_PS_APPLIED) abort();
      m->events++;
    }
  for (uint32_t u = 0; u < kPeers; u += 10) {  // 30% accept connections
    for (uint32_t k = u; k < u + 3 && k < kPeers; k++) {
      mm_ps_addr_t a = {};
      if (k % 5 != 0) {  // 80% of them IPv4, 20% IPv6
        a.ip[10] = a.ip[11] = 0xff;
      } else {
        a.ip[0] = 0x20;
        a.ip[1] = 0x01;
      }
      std::memcpy(a.ip + 12, &k, 4);
      a.port = 7000;
      if (mm_ps_set_addr(m->ps, m->ids[k].data(), &a, 1000) != 0) abort();
    }
  }
  m->build_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // Freed blocks of the address table's earlier sizes sit in this thread's
  // jemalloc cache, which counts as allocated: report both readings, and
  // the map's own size with the cache flushed. The id index is mapped
  // apart from jemalloc: its pages are added to both readings.
  mm_mem_sample(&after_cached, 0);
  mm_mem_flush_thread_cache();
  mm_mem_sample(&after, 0);
  mm_ps_stats_t st;
  mm_ps_stats(m->ps, &st);
  m->bytes_per_peer =
      static_cast<double>(after.allocated - before.allocated + st.index_bytes) / kPeers;
  m->bytes_per_peer_cached =
      static_cast<double>(after_cached.allocated - before.allocated + st.index_bytes) / kPeers;
  m->store_bytes_per_peer = static_cast<double>(st.bytes) / kPeers;
  return m;
}

mm_pidx_t RandomPeer(Map *m) {
  return mm_ps_lookup(m->ps, m->ids[Rnd() % kPeers].data());
}

void BM_MapMemory(benchmark::State &state) {
  Map *m = TheMap();
  for (auto _ : state) benchmark::DoNotOptimize(m);
  mm_ps_stats_t st;
  mm_ps_stats(m->ps, &st);
  state.counters["peers"] = st.records;
  state.counters["claims"] = static_cast<double>(st.claims);
  state.counters["addresses"] = st.addresses;
  state.counters["bytes_per_peer_allocated"] = m->bytes_per_peer;
  state.counters["bytes_per_peer_store"] = m->store_bytes_per_peer;
  state.counters["bytes_per_peer_unflushed"] = m->bytes_per_peer_cached;
  state.counters["MB_100k_allocated"] = m->bytes_per_peer * kPeers / 1e6;
  state.counters["events_per_s_build"] = m->events / m->build_s;
}
BENCHMARK(BM_MapMemory)->Iterations(1);

// Apply: connect/disconnect churn on existing peers of the 100k map.
void BM_EventApply(benchmark::State &state) {
  Map *m = TheMap();
  std::vector<uint32_t> seq(kPeers, 1u << 20);
  uint64_t n = 0;
  for (auto _ : state) {
    uint32_t u = static_cast<uint32_t>(Rnd() % kPeers);
    uint32_t v = static_cast<uint32_t>(Rnd() % kPeers);
    mm_ps_event_t e = {m->ids[u].data(), m->ids[v].data(),
                       static_cast<uint8_t>(n & 1 ? MM_PS_DISCONNECT : MM_PS_CONNECT),
                       MM_PS_OUT, ++seq[u], 1001};
    benchmark::DoNotOptimize(mm_ps_apply(m->ps, &e));
    // undo on the same origin next round keeps the map near its shape
    mm_ps_event_t undo = e;
    undo.kind = MM_PS_DISCONNECT;
    undo.seq = ++seq[u];
    mm_ps_apply(m->ps, &undo);
    n++;
  }
  state.SetItemsProcessed(static_cast<int64_t>(2 * n));
}
BENCHMARK(BM_EventApply);

void BM_Insert(benchmark::State &state) {
  mm_ps_config_t c;
  mm_ps_config_default(&c);
  c.max_peers = 1u << 22;
  mm_ps_t *ps;
  if (mm_ps_create(&c, &ps) != 0) abort();
  uint32_t i = 0;
  uint8_t id[32];
  mm_ps_addr_t a = {};
  a.port = 1;
  for (auto _ : state) {
    MakeId(id, 1000000 + i++);
    if (i >= c.max_peers) state.SkipWithError("full");
    benchmark::DoNotOptimize(mm_ps_set_addr(ps, id, &a, 5));
  }
  state.SetItemsProcessed(state.iterations());
  mm_ps_destroy(ps);
}
BENCHMARK(BM_Insert)->Iterations(1000000);

void BM_Overlap(benchmark::State &state) {
  Map *m = TheMap();
  mm_psq_t *q = mm_psq_new();
  mm_pidx_t set[kDegree];
  unsigned ns = mm_ps_confirmed(m->ps, RandomPeer(m), set, kDegree);
  for (auto _ : state)
    benchmark::DoNotOptimize(mm_ps_overlap(m->ps, q, RandomPeer(m), set, ns));
  state.SetItemsProcessed(state.iterations());
  mm_psq_free(q);
}
BENCHMARK(BM_Overlap);

void BM_TopK(benchmark::State &state) {
  Map *m = TheMap();
  mm_psq_t *q = mm_psq_new();
  const unsigned ncand = static_cast<unsigned>(state.range(0));
  std::vector<mm_pidx_t> cands(ncand);
  for (auto &c : cands) c = RandomPeer(m);
  mm_pidx_t set[kDegree], out[kDegree];
  unsigned ns = mm_ps_confirmed(m->ps, RandomPeer(m), set, kDegree);
  for (auto _ : state)
    benchmark::DoNotOptimize(mm_ps_topk_least_overlap(
        m->ps, q, cands.data(), ncand, set, ns, kDegree, out, nullptr));
  state.SetItemsProcessed(state.iterations() * ncand);
  mm_psq_free(q);
}
BENCHMARK(BM_TopK)->Arg(1000)->Unit(benchmark::kMicrosecond);

void BM_ShortestPath(benchmark::State &state) {
  Map *m = TheMap();
  mm_psq_t *q = mm_psq_new();
  std::vector<mm_pidx_t> path(kPeers);
  int64_t hops = 0, found = 0;
  for (auto _ : state) {
    int len = mm_ps_path(m->ps, q, RandomPeer(m), RandomPeer(m), path.data(),
                         kPeers);
    if (len > 0) {
      hops += len - 1;
      found++;
    }
  }
  state.counters["avg_hops"] = found ? static_cast<double>(hops) / found : 0;
  mm_psq_free(q);
}
BENCHMARK(BM_ShortestPath)->Unit(benchmark::kMillisecond);

void BM_Components(benchmark::State &state) {
  Map *m = TheMap();
  mm_psq_t *q = mm_psq_new();
  mm_ps_graph_t g{};
  for (auto _ : state)
    if (mm_ps_analyse(m->ps, q, static_cast<int>(state.range(0)), &g) != 0) abort();
  state.counters["components"] = g.components;
  state.counters["largest"] = g.largest;
  state.counters["edges"] = static_cast<double>(g.edges);
  state.counters["bridges"] = g.bridges;
  state.counters["articulation"] = g.articulation;
  mm_psq_free(q);
}
BENCHMARK(BM_Components)->ArgName("cuts")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

void BM_Dedup(benchmark::State &state) {
  mm_dedup_t *d;
  if (mm_dedup_create(nullptr, &d) != 0) abort();
  const bool dup = state.range(0) != 0;
  std::vector<std::array<uint8_t, 32>> ids(1 << 16);
  for (uint32_t i = 0; i < ids.size(); i++) MakeId(ids[i].data(), i);
  if (dup)
    for (auto &id : ids) mm_dedup_check(d, id.data(), 0);
  uint32_t i = 0, now = 1;
  for (auto _ : state) {
    if (!dup && (i & 0xffff) == 0) {  // fresh ids: vary them each lap
      for (auto &id : ids) id[0]++;
    }
    benchmark::DoNotOptimize(mm_dedup_check(d, ids[i & 0xffff].data(), now));
    i++;
  }
  state.SetItemsProcessed(state.iterations());
  mm_dedup_destroy(d);
}
BENCHMARK(BM_Dedup)->ArgName("duplicates")->Arg(0)->Arg(1);

void BM_Snapshot(benchmark::State &state) {
  mm_ps_config_t c;
  mm_ps_config_default(&c);
  mm_ps_t *ps;
  if (mm_ps_create(&c, &ps) != 0) abort();
  uint8_t id[32];
  for (uint32_t i = 0; i < kPeers; i++) {
    MakeId(id, i);
    mm_ps_addr_t a = {};
    if (i % 5 != 0) {  // 80% IPv4, 20% IPv6
      a.ip[10] = a.ip[11] = 0xff;
    } else {
      a.ip[0] = 0x20;
      a.ip[1] = 0x01;
    }
    std::memcpy(a.ip + 12, &i, 4);
    a.port = 7000;
    if (mm_ps_set_addr(ps, id, &a, 10) != 0) abort();
  }
  std::string path = "/tmp/mm_bench_snap." + std::to_string(getpid());
  const bool load = state.range(0) != 0;
  if (load && mm_snap_save(path.c_str(), ps, nullptr, 1700000000, 10) != 0) abort();
  for (auto _ : state) {
    if (!load) {
      if (mm_snap_save(path.c_str(), ps, nullptr, 1700000000, 10) != 0) abort();
    } else {
      state.PauseTiming();
      mm_ps_t *fresh;
      if (mm_ps_create(&c, &fresh) != 0) abort();
      state.ResumeTiming();
      uint32_t n = 0;
      if (mm_snap_load(path.c_str(), fresh, nullptr, 1700000000, 10, nullptr, 0,
                       &n, nullptr) != 0 || n != kPeers)
        abort();
      state.PauseTiming();
      mm_ps_destroy(fresh);
      state.ResumeTiming();
    }
  }
  state.SetItemsProcessed(state.iterations() * kPeers);
  unlink(path.c_str());
  mm_ps_destroy(ps);
}
BENCHMARK(BM_Snapshot)->ArgName("load")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
