#!/usr/bin/env bash
# Run the runtime micro-benchmarks and print a markdown report with the
# figures, the goals and the ratios (medians of 5 repetitions).
#   bench/run.sh [extra Google Benchmark flags]
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x build/release/bench_runtime ] || bash scripts/build.sh release >/dev/null
out=$(mktemp --suffix=.json)
build/release/bench_runtime --benchmark_repetitions=5 \
  --benchmark_report_aggregates_only=true --benchmark_format=json "$@" > "$out"
python3 bench/report.py "$out"
rm -f "$out"
