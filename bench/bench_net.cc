// Wire codec benchmarks: encode and decode, ns per message, for every type.
#include <benchmark/benchmark.h>

#include <cstring>

#include "wire.h"

namespace {

uint8_t ids[64][32], nbs[64][12 * 32];

void Make(unsigned type, mm_wire_msg_t *m) {
  std::memset(m, 0, sizeof(*m));
  m->type = static_cast<uint8_t>(type);
  m->req = 12345;
  switch (type) {
    case MM_W_HELLO:
      m->u.hello.version = 1;
      m->u.hello.net = {reinterpret_cast<const uint8_t *>("main"), 4};
      m->u.hello.pow = 123456789;
      m->u.hello.port = 7946;
      m->u.hello.ts = 1763700000000ull;
      m->u.hello.agent = {reinterpret_cast<const uint8_t *>("meshmap/0.1.0"), 13};
      break;
    case MM_W_PING:
    case MM_W_PONG:
      m->u.ping.ts = 1763700000000ull;
      break;
    case MM_W_ERROR:
      m->u.error.code = 4;
      m->u.error.msg = {reinterpret_cast<const uint8_t *>("event.seq: must be > 0"), 22};
      break;
    case MM_W_EVENT:
      m->req = 0;
      m->u.event.kind = 1;
      m->u.event.dir = 1;
      m->u.event.seq = 77;
      m->u.event.ts = 1763700000000ull;
      m->u.event.ttl = 6;
      break;
    case MM_W_GET_PEERS:
      m->u.get_peers.cursor = 640;
      m->u.get_peers.limit = 64;
      break;
    case MM_W_PEERS:  // a full chunk: 64 peers of 12 neighbours, 1/3 with an address
      m->u.peers.next = 704;
      m->u.peers.count = 64;
      for (int i = 0; i < 64; i++) {
        mm_w_peer_t *q = &m->u.peers.peer[i];
        q->id = ids[i];
        q->seq = 1000u + static_cast<uint32_t>(i);
        q->nnb = 12;
        q->nb = nbs[i];
        q->dirs = 0x5a5;
        q->has_addr = i % 3 == 0;
        q->ip[10] = q->ip[11] = 0xff;
        q->port = q->has_addr ? 7946 : 0;
      }
      break;
  }
}

void BM_Encode(benchmark::State &state) {
  mm_wire_msg_t m;
  Make(static_cast<unsigned>(state.range(0)), &m);
  static uint8_t out[65536];
  int n = 0;
  for (auto _ : state) {
    n = mm_wire_encode(&m, out, sizeof(out));
    benchmark::DoNotOptimize(n);
  }
  if (n < 0) state.SkipWithError("encode failed");
  state.SetLabel(mm_wire_type_name(static_cast<unsigned>(state.range(0))));
  state.counters["bytes"] = n;
  state.SetItemsProcessed(state.iterations());
}

void BM_Decode(benchmark::State &state) {
  mm_wire_msg_t m;
  Make(static_cast<unsigned>(state.range(0)), &m);
  static uint8_t out[65536];
  int n = mm_wire_encode(&m, out, sizeof(out));
  mm_wire_dec_t *d = mm_wire_dec_new();
  static mm_wire_msg_t back;
  for (auto _ : state) {
    int r = mm_wire_decode(d, out + 4, static_cast<uint32_t>(n - 4), &back, nullptr);
    benchmark::DoNotOptimize(r);
    if (r != MM_WIRE_OK) state.SkipWithError("decode failed");
  }
  mm_wire_dec_free(d);
  state.SetLabel(mm_wire_type_name(static_cast<unsigned>(state.range(0))));
  state.counters["bytes"] = n;
  state.SetItemsProcessed(state.iterations());
}

// The relay's own work on a direct message, without TLS or mailboxes:
// decode the frame, the free hop checks, re-encode it with at + 1 (what
// node.c's direct_in does for a relayed frame). No signature work: relays
// do not verify.
void BM_RelayDirect(benchmark::State &state) {
  static uint8_t route[3][32], data[4096], in[8192], out[8192];
  for (int i = 0; i < 3; i++) std::memset(route[i], 0x20 + i, 32);
  mm_wire_msg_t m;
  std::memset(&m, 0, sizeof(m));
  m.type = MM_W_DIRECT;
  m.u.direct.route = {&route[0][0], 96};
  m.u.direct.at = 1;
  m.u.direct.rr = 1;
  m.u.direct.nonce = 42;
  m.u.direct.ts = 1763700000000ull;
  m.u.direct.data = {data, static_cast<uint32_t>(state.range(0))};
  int n = mm_wire_encode(&m, in, sizeof(in));
  if (n < 0) { state.SkipWithError("encode failed"); return; }
  mm_wire_dec_t *d = mm_wire_dec_new();
  mm_wire_msg_t got;
  for (auto _ : state) {
    if (mm_wire_decode(d, in + 4, static_cast<uint32_t>(n - 4), &got, nullptr) != MM_WIRE_OK ||
        std::memcmp(got.u.direct.route.ptr + 32 * got.u.direct.at, route[1], 32) != 0 ||
        std::memcmp(got.u.direct.route.ptr + 32 * (got.u.direct.at - 1), route[0], 32) != 0) {
      state.SkipWithError("decode failed");
      break;
    }
    got.u.direct.at++;
    int w = mm_wire_encode(&got, out, sizeof(out));
    benchmark::DoNotOptimize(w);
  }
  mm_wire_dec_free(d);
  state.counters["bytes"] = n;
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_RelayDirect)->Arg(256)->Arg(4096);
BENCHMARK(BM_Encode)->DenseRange(MM_W_HELLO, MM_W_PEERS);
BENCHMARK(BM_Decode)->DenseRange(MM_W_HELLO, MM_W_PEERS);

}  // namespace

BENCHMARK_MAIN();
