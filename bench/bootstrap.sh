#!/usr/bin/env bash
# Bootstrap macro benchmark (issue 8, benchmark 3): a connection storm
# against one `meshmap node` in relay mode. New identities (meshmap flood
# --handshakes) each complete the mutual TLS and hello handshakes, ask for
# peers, get the answer and leave. Prints handshakes per second and per
# node CPU second against the crypto limit of one side of a handshake,
# measured in the same run with `openssl speed` (one ECDSA P-256 sign and
# verify, two X25519 operations, one Ed25519 verify: bench/README.md).
#   bench/bootstrap.sh [HANDSHAKES]   (default 2000)
set -euo pipefail
[ -n "${BENCH_DEBUG:-}" ] && set -x
. "$(dirname "$0")/lib.sh"
bench_init
n=${1:-2000}
speed=$(openssl speed -seconds 2 ecdsap256 ecdhx25519 ed25519 2>/dev/null)
limit=$(awk '/nistp256/ {s = $(NF-1); v = $NF} /X25519/ {x = $NF} /Ed25519/ {e = $NF}
  END { printf "%.0f", 1 / (1/s + 1/v + 2/x + 1/e) }' <<<"$speed")
machine_line
echo "Limit: one side of a handshake, from \`openssl speed -seconds 2 ecdsap256 ecdhx25519 ed25519\`: $limit/s on one core."
echo
echo "| node workers | backend | concurrency | completed | peers answered | seconds | handshakes/s | per node CPU s | of the limit per core | p50 handshake | p99 handshake | node peak RSS |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for backend in openssl mbedtls; do
  for workers in 1 2; do
    target_start --workers "$workers" --backend "$backend" --relay --max-inbound 16 \
      --max-conns-per-ip 4096 --max-pending-per-ip 256
    c0=$(cpu_s "$tpid")
    "$bin" flood --target "127.0.0.1:$tport" --difficulty 8 --network bench --json \
      --handshakes "$n" --concurrency 16 >"$dir/b.json" 2>"$dir/b.err" || { cat "$dir/b.err"; exit 1; }
    c1=$(cpu_s "$tpid")
    rss=$(rss_kb "$tpid")
    target_stop
    awk -v w="$workers" -v b="$backend" -v d="$(jf "$dir/b.json" completed)" \
      -v p="$(jf "$dir/b.json" peers_answered)" -v s="$(jf "$dir/b.json" seconds)" \
      -v c0="$c0" -v c1="$c1" -v lim="$limit" -v p50="$(jf "$dir/b.json" handshake_us.p50)" \
      -v p99="$(jf "$dir/b.json" handshake_us.p99)" -v rss="$rss" 'BEGIN {
        c = c1 - c0; pc = (c > 0 ? d / c : 0)
        printf "| %s | %s | 16 | %d | %d | %.3f | %.0f | %.0f | %.0f%% | %.1f ms | %.1f ms | %.1f MB |\n",
          w, b, d, p, s, d / s, pc, 100 * pc / lim, p50 / 1000, p99 / 1000, rss / 1000 }'
  done
done
