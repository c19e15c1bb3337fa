// TLS benchmarks: 256-byte frames through one session, full mutual
// handshakes (with the hello binding), and the memory of idle sessions.
// Both ends run on the benchmark's thread over a loopback TCP connection
// (127.0.0.1), so every byte
// is encrypted and decrypted on one core, and every handshake pays both
// sides' crypto; bench/report.py compares with `openssl speed` accordingly.
#include <benchmark/benchmark.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "hello.h"
#include "mm_rt.h"
#include "tls.h"

namespace {

mm_tls_ctx_t *Ctx(mm_tls_backend_t b) {
  mm_tls_config_t c = {};
  c.backend = b;
  mm_tls_ctx_t *x = nullptr;
  char err[256];
  if (mm_tls_ctx_new(&c, &x, err, sizeof(err)) != 0) abort();
  return x;
}

struct Pair {
  int fd[2] = {-1, -1};
  mm_tls_t *c = nullptr, *s = nullptr;
};

// A TCP connection over loopback (127.0.0.1), both ends non-blocking.
bool TcpPair(int fd[2]) {
  static int lfd = -1;
  static sockaddr_in addr;
  if (lfd < 0) {
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    addr = {};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t l = sizeof(addr);
    if (bind(lfd, reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) != 0 ||
        listen(lfd, 4096) != 0 ||
        getsockname(lfd, reinterpret_cast<sockaddr *>(&addr), &l) != 0)
      return false;
  }
  fd[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connect(fd[0], reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) != 0) return false;
  fd[1] = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
  int one = 1;
  setsockopt(fd[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  setsockopt(fd[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd[1] >= 0;
}

bool Connect(Pair *p, mm_tls_ctx_t *cc, mm_tls_ctx_t *sc) {
  if (!TcpPair(p->fd)) return false;
  for (int fd : p->fd) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  p->c = mm_tls_new(cc, p->fd[0], 0);
  p->s = mm_tls_new(sc, p->fd[1], 1);
  int rc = 1, rs = 1;
  for (int i = 0; i < 100000 && (rc != 0 || rs != 0); i++) {
    if (rc != 0) rc = mm_tls_handshake(p->c);
    if (rs != 0) rs = mm_tls_handshake(p->s);
    if (rc == MM_TLS_ERROR || rs == MM_TLS_ERROR) return false;
  }
  return rc == 0 && rs == 0;
}

void Close(Pair *p) {
  mm_tls_free(p->c);
  mm_tls_free(p->s);
  close(p->fd[0]);
  close(p->fd[1]);
}

// 256-byte frames, 64 coalesced per write (as the connection's write queue
// does), through TLS and back out of it.
void BM_TlsFrames(benchmark::State &state) {
  auto b = static_cast<mm_tls_backend_t>(state.range(0));
  mm_tls_ctx_t *cc = Ctx(b), *sc = Ctx(b);
  Pair p;
  if (!Connect(&p, cc, sc)) state.SkipWithError("handshake");
  constexpr size_t kFrame = 256, kBatch = 64;
  std::vector<uint8_t> out(kFrame * kBatch, 0x5a), in(1 << 16);
  uint64_t frames = 0;
  for (auto _ : state) {
    size_t sent = 0, got = 0;
    while (got < out.size()) {
      if (sent < out.size()) {
        long w = mm_tls_write(p.c, out.data() + sent, out.size() - sent);
        if (w > 0) sent += static_cast<size_t>(w);
      }
      long r = mm_tls_read(p.s, in.data(), in.size());
      if (r > 0) got += static_cast<size_t>(r);
    }
    frames += kBatch;
  }
  state.SetItemsProcessed(static_cast<int64_t>(frames));
  state.SetBytesProcessed(static_cast<int64_t>(frames * kFrame));
  char d[96];
  state.SetLabel(mm_tls_describe(p.c, d, sizeof(d)));
  Close(&p);
  mm_tls_ctx_free(cc);
  mm_tls_ctx_free(sc);
}
BENCHMARK(BM_TlsFrames)->ArgName("backend")->Arg(MM_TLS_OPENSSL)->Arg(MM_TLS_MBEDTLS);

// One full mutual handshake plus both hellos (make: cached binding; check:
// proof of work, Ed25519 verify of the binding), both sides on this core.
void BM_Handshake(benchmark::State &state) {
  auto b = static_cast<mm_tls_backend_t>(state.range(0));
  mm_tls_ctx_t *cc = Ctx(b), *sc = Ctx(b);
  mm_identity_t ic, is;
  if (mm_id_generate(&ic, 8, nullptr) || mm_id_generate(&is, 8, nullptr)) abort();
  mm_wire_msg_t hc, hs;
  if (mm_hello_make(&hc, &ic, cc, "bench", 0, 1) ||
      mm_hello_make(&hs, &is, sc, "bench", 0, 1))
    abort();
  for (auto _ : state) {
    Pair p;
    if (!Connect(&p, cc, sc)) {
      state.SkipWithError("handshake");
      break;
    }
    uint8_t id[32];
    const char *why;
    if (mm_hello_check(&hc.u.hello, p.s, 0, "bench", 8, nullptr, id, &why) != 0 ||
        mm_hello_check(&hs.u.hello, p.c, 0, "bench", 8, nullptr, id, &why) != 0)
      state.SkipWithError(why);
    Close(&p);
  }
  state.SetItemsProcessed(state.iterations());
  mm_id_free(&ic);
  mm_id_free(&is);
  mm_tls_ctx_free(cc);
  mm_tls_ctx_free(sc);
}
BENCHMARK(BM_Handshake)->ArgName("backend")->Arg(MM_TLS_OPENSSL)->Arg(MM_TLS_MBEDTLS)
    ->Unit(benchmark::kMicrosecond);

// The TLS handshake alone (no hello), and the hello check alone, to see
// where a handshake's time goes.
void BM_HandshakeTlsOnly(benchmark::State &state) {
  auto b = static_cast<mm_tls_backend_t>(state.range(0));
  mm_tls_ctx_t *cc = Ctx(b), *sc = Ctx(b);
  for (auto _ : state) {
    Pair p;
    if (!Connect(&p, cc, sc)) {
      state.SkipWithError("handshake");
      break;
    }
    Close(&p);
  }
  state.SetItemsProcessed(state.iterations());
  mm_tls_ctx_free(cc);
  mm_tls_ctx_free(sc);
}
BENCHMARK(BM_HandshakeTlsOnly)->ArgName("backend")->Arg(MM_TLS_OPENSSL)->Arg(MM_TLS_MBEDTLS)
    ->Unit(benchmark::kMicrosecond);

void BM_HelloCheck(benchmark::State &state) {
  mm_tls_ctx_t *cc = Ctx(MM_TLS_OPENSSL), *sc = Ctx(MM_TLS_OPENSSL);
  mm_identity_t ic;
  if (mm_id_generate(&ic, 8, nullptr)) abort();
  mm_wire_msg_t hc;
  if (mm_hello_make(&hc, &ic, cc, "bench", 0, 1)) abort();
  Pair p;
  if (!Connect(&p, cc, sc)) abort();
  for (auto _ : state) {
    uint8_t id[32];
    const char *why;
    if (mm_hello_check(&hc.u.hello, p.s, 0, "bench", 8, nullptr, id, &why) != 0)
      state.SkipWithError(why);
  }
  state.SetItemsProcessed(state.iterations());
  Close(&p);
  mm_id_free(&ic);
  mm_tls_ctx_free(cc);
  mm_tls_ctx_free(sc);
}
BENCHMARK(BM_HelloCheck)->Unit(benchmark::kMicrosecond);

// 1000 established sessions (2000 ends), idle after one 256-byte frame each
// way: jemalloc's allocated bytes per end (what one node holds per peer).
void BM_IdleMemory(benchmark::State &state) {
  auto b = static_cast<mm_tls_backend_t>(state.range(0));
  constexpr int kPairs = 1000;
  mm_tls_ctx_t *cc = Ctx(b), *sc = Ctx(b);
  std::vector<Pair> pairs(kPairs);
  double per_end = 0;
  for (auto _ : state) {
    mm_mem_stats_t before, after;
    mm_mem_flush_thread_cache();
    mm_mem_sample(&before, 0);
    for (auto &p : pairs) {
      if (!Connect(&p, cc, sc)) {
        state.SkipWithError("handshake");
        return;
      }
      uint8_t f[256] = {1}, r[256];
      for (int dir = 0; dir < 2; dir++) {
        mm_tls_t *w = dir ? p.s : p.c, *rd = dir ? p.c : p.s;
        size_t got = 0;
        if (mm_tls_write(w, f, sizeof(f)) != sizeof(f)) abort();
        for (int k = 0; k < 1000 && got < sizeof(f); k++) {
          long n = mm_tls_read(rd, r + got, sizeof(r) - got);
          if (n > 0) got += static_cast<size_t>(n);
        }
        if (mm_tls_read(rd, r, sizeof(r)) != MM_TLS_WANT_READ) abort();  // idle
      }
    }
    mm_mem_flush_thread_cache();
    mm_mem_sample(&after, 0);
    per_end = static_cast<double>(after.allocated - before.allocated) / (2.0 * kPairs);
    for (auto &p : pairs) Close(&p);
  }
  state.counters["bytes_per_idle_session_end"] = per_end;
  mm_tls_ctx_free(cc);
  mm_tls_ctx_free(sc);
}
BENCHMARK(BM_IdleMemory)->ArgName("backend")->Arg(MM_TLS_OPENSSL)->Arg(MM_TLS_MBEDTLS)
    ->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
