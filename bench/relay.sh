#!/usr/bin/env bash
# Relay macro benchmark (issue 6): a `meshmap node` process relays, over
# TLS, from one source to 12 sinks (bench/relay_bench.c): broadcasts (each
# delivered 12 times) and direct messages (source -> relay -> sink), 256 B
# and 4 KB payloads, the relay with 1 and 2 workers. Prints a markdown
# table: frames delivered per second, and per second of the relay's CPU.
#   bench/relay.sh [MESSAGES]        (default 24000)
set -euo pipefail
cd "$(dirname "$0")/.."
msgs=${1:-24000}
[ -x build/release/relay_bench ] || bash scripts/build.sh release >/dev/null
bin=build/release/meshmap
dir=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
"$bin" keygen --difficulty 8 --out "$dir/relay.key" >/dev/null 2>&1
echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -sr); $(date -u +%Y-%m-%d)."
echo
echo "| messages | payload | relay workers | frames delivered | lost | seconds | frames/s | relay CPU s | frames per relay CPU s |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for mode in bcast direct; do
  for payload in 256 4096; do
    for workers in 1 2; do
      MESHMAP_LOG=error "$bin" node --key "$dir/relay.key" --difficulty 8 --network relaybench \
        --listen 127.0.0.1:0 --workers "$workers" --select-ms 0 --degree 16 --max-degree 16 \
        --max-conns-per-ip 32 --status 0 --direct-rate 100000000 >"$dir/relay.log" 2>&1 &
      pid=$!
      port=
      for _ in $(seq 100); do
        port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$dir/relay.log")
        [ -n "$port" ] && break
        sleep 0.1
      done
      n=$msgs
      [ "$mode" = direct ] && n=$((msgs * 12))
      line=$(build/release/relay_bench "$port" "$pid" "$mode" "$payload" "$n")
      kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
      f() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$line"; }
      name=$([ "$mode" = bcast ] && echo "broadcast (x12)" || echo "direct")
      printf '| %s | %s B | %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$payload" "$workers" \
        "$(f delivered)" "$(f lost)" "$(f seconds)" "$(f frames_per_s)" "$(f relay_cpu_s)" "$(f frames_per_relay_cpu_s)"
    done
  done
done
