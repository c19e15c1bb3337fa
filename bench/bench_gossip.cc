// Gossip engine: unique signed events into one node (each one verified and
// applied: bounded by the Ed25519 verify), and duplicates (dropped before
// any verify). Issue 8 turns these into macro benchmarks.
#include <benchmark/benchmark.h>

#include <cstring>
#include <vector>

#include "gossip.h"

namespace {

constexpr uint64_t kNow = 1763700000000ull;

struct World {
  std::vector<mm_identity_t> origins;
  std::vector<mm_w_event_t> events;
};

// Events from 64 origins, each connecting to peers named by the event index
// (12 each at most, then disconnects), all signed for real.
World *TheWorld() {
  static World *w = nullptr;
  if (w) return w;
  w = new World;
  w->origins.resize(64);
  for (auto &o : w->origins)
    if (mm_id_generate(&o, 8, nullptr) != 0) abort();
  for (int i = 0; i < 20000; i++) {
    mm_identity_t &o = w->origins[i % 64];
    int round = i / 64;
    mm_w_event_t e = {};
    std::memcpy(e.pub, o.pub, 32);
    e.pow = o.nonce;
    std::memset(e.peer, 0, 32);
    std::memcpy(e.peer, &round, sizeof(round));
    e.peer[31] = static_cast<uint8_t>(i % 64);
    e.kind = (round / 12) % 2 ? MM_PS_DISCONNECT : MM_PS_CONNECT;
    e.dir = MM_PS_OUT;
    e.seq = static_cast<uint32_t>(round + 1);
    e.ts = kNow;
    e.ttl = 6;
    uint8_t b[MM_WIRE_EVENT_SIGNED_LEN];
    mm_wire_event_signed_bytes(&e, b);
    if (mm_id_sign(&o, b, sizeof(b), e.sig) != 0) abort();
    w->events.push_back(e);
  }
  return w;
}

struct Node {
  mm_identity_t id;
  mm_ps_t *ps;
  mm_dedup_t *dd;
  mm_gossip_t *g;
  Node() {
    if (mm_id_generate(&id, 8, nullptr) || mm_ps_create(nullptr, &ps) ||
        mm_dedup_create(nullptr, &dd))
      abort();
    mm_gossip_config_t c;
    mm_gossip_config_default(&c);
    c.difficulty = 8;
    if (mm_gossip_create(&c, &id, ps, dd, &g)) abort();
  }
  ~Node() {
    mm_gossip_destroy(g);
    mm_dedup_destroy(dd);
    mm_ps_destroy(ps);
    mm_id_free(&id);
  }
};

void BM_GossipNew(benchmark::State &state) {
  World *w = TheWorld();
  Node *n = new Node;
  size_t i = 0;
  int forwarded = 0;
  for (auto _ : state) {
    if (i == w->events.size()) {  // every event once per node
      state.PauseTiming();
      delete n;
      n = new Node;
      i = 0;
      state.ResumeTiming();
    }
    mm_w_event_t f;
    forwarded += mm_gossip_receive(n->g, &w->events[i++], kNow, 100, &f) == MM_G_FORWARD;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["forwarded_share"] =
      static_cast<double>(forwarded) / static_cast<double>(state.iterations());
  delete n;
}
BENCHMARK(BM_GossipNew)->Unit(benchmark::kMicrosecond);

void BM_GossipDuplicate(benchmark::State &state) {
  World *w = TheWorld();
  Node n;
  mm_w_event_t f;
  for (auto &e : w->events) mm_gossip_receive(n.g, &e, kNow, 100, &f);
  size_t i = 0;
  for (auto _ : state) {
    int r = mm_gossip_receive(n.g, &w->events[i], kNow, 100, &f);
    if (r != MM_G_DUP) state.SkipWithError("not a duplicate");
    if (++i == w->events.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_GossipDuplicate);

}  // namespace

BENCHMARK_MAIN();
