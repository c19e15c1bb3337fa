#!/usr/bin/env bash
# Relay macro benchmark (issue 8, benchmark 1): a `meshmap node` process
# relays, over TLS, from one flood source to 12 flood sinks (meshmap flood):
# broadcasts (each delivered 12 times) and direct messages (source -> relay
# -> sink), 256 B and 4 KB payloads, the relay with 1 and 2 workers.
# Prints a markdown table: frames delivered per second and per second of the
# relay's CPU, p99 latency, the relay's peak RSS.
#   bench/relay.sh [MESSAGES]        (default 24000)
set -euo pipefail
[ -n "${BENCH_DEBUG:-}" ] && set -x
. "$(dirname "$0")/lib.sh"
bench_init
msgs=${1:-24000}
machine_line
echo
echo "| messages | payload | relay workers | frames delivered | lost | seconds | frames/s | p99 latency | relay CPU s | frames per relay CPU s | relay peak RSS |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for mode in bcast direct; do
  for payload in 256 4096; do
    for workers in 1 2; do
      target_start --workers "$workers" --select-ms 0 --degree 16 --max-degree 16 \
        --max-conns-per-ip 32 --direct-rate 100000000
      n=$msgs
      [ "$mode" = direct ] && n=$((msgs * 12))
      c0=$(cpu_s "$tpid")
      "$bin" flood --target "127.0.0.1:$tport" --difficulty 8 --network bench --json \
        --mix "$mode=1" --size "$payload" --count "$n" >"$dir/r.json" 2>"$dir/r.err" ||
        { cat "$dir/r.err"; exit 1; }
      c1=$(cpu_s "$tpid")
      rss=$(rss_kb "$tpid")
      target_stop
      d=$(jf "$dir/r.json" delivered) e=$(jf "$dir/r.json" expected) s=$(jf "$dir/r.json" seconds)
      name=$([ "$mode" = bcast ] && echo "broadcast (x12)" || echo "direct")
      awk -v name="$name" -v p="$payload" -v w="$workers" -v d="$d" -v e="$e" -v s="$s" \
        -v c0="$c0" -v c1="$c1" -v p99="$(jf "$dir/r.json" latency_us.p99)" -v rss="$rss" \
        'BEGIN { c = c1 - c0; printf "| %s | %s B | %s | %d | %d | %.3f | %.0f | %.1f ms | %.2f | %.0f | %.1f MB |\n",
          name, p, w, d, e - d, s, d / s, p99 / 1000, c, (c > 0 ? d / c : 0), rss / 1000 }'
    done
  done
done
