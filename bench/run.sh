#!/usr/bin/env bash
# Run the micro-benchmarks and print markdown reports with the figures, the
# goals and the ratios (medians of 5 repetitions; the store's memory figure
# is measured once, from jemalloc's statistics).
#   bench/run.sh [runtime|store|net|tls|all] [extra Google Benchmark flags]
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
[ $# -gt 0 ] && shift
[ -x build/release/bench_store ] || bash scripts/build.sh release >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ "$which" = runtime ] || [ "$which" = all ]; then
  build/release/bench_runtime --benchmark_repetitions=5 \
    --benchmark_report_aggregates_only=true --benchmark_format=json "$@" > "$tmp/runtime.json"
  python3 bench/report.py runtime "$tmp/runtime.json"
fi
if [ "$which" = net ] || [ "$which" = all ]; then
  build/release/bench_net --benchmark_repetitions=5 \
    --benchmark_report_aggregates_only=true --benchmark_format=json "$@" > "$tmp/net.json"
  python3 bench/report.py net "$tmp/net.json"
fi
if [ "$which" = tls ] || [ "$which" = all ]; then
  # The limits, measured in the same run.
  openssl speed -seconds 3 -bytes 16384 -evp aes-128-gcm > "$tmp/aes.txt" 2>/dev/null
  openssl speed -seconds 3 ecdsap256 ecdhp256 ecdhx25519 ed25519 > "$tmp/pk.txt" 2>/dev/null
  build/release/bench_tls --benchmark_repetitions=5 \
    --benchmark_report_aggregates_only=true --benchmark_format=json "$@" > "$tmp/tls.json"
  python3 bench/report.py tls "$tmp/tls.json" "$tmp/aes.txt" "$tmp/pk.txt"
fi
if [ "$which" = store ] || [ "$which" = all ]; then
  build/release/bench_store --benchmark_repetitions=5 \
    --benchmark_report_aggregates_only=true --benchmark_format=json "$@" > "$tmp/store.json"
  python3 bench/report.py store "$tmp/store.json"
fi
