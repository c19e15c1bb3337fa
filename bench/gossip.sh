#!/usr/bin/env bash
# Map gossip macro benchmark (issue 8, benchmark 2): unique signed
# connection events from meshmap flood's sources into one `meshmap node`
# (each verified, applied to the map and forwarded to a sink), then a flood
# that is 99% exact duplicates (each must be dropped before any verify).
# The limit is measured in the same run: `openssl speed ed25519` verifies
# per second on one core. A third flood is 99.9% duplicates, so that its
# duplicates per node CPU second are not mostly the 1%'s verifies. Prints
# a markdown table.
#   bench/gossip.sh [EVENTS]          (default 40000)
set -euo pipefail
[ -n "${BENCH_DEBUG:-}" ] && set -x
. "$(dirname "$0")/lib.sh"
bench_init
events=${1:-40000}
limit=$(openssl speed -seconds 3 ed25519 2>/dev/null | awk '/Ed25519/ {print $NF}')
machine_line
echo "Limit: \`openssl speed -seconds 3 ed25519\`: $limit verifies/s on one core."
echo
echo "| flood | node workers | sent | verified | duplicates dropped | seconds | verified/s | verified per node CPU s | of the verify limit per core | duplicates dropped per node CPU s | p99 latency | node peak RSS |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for mix in event dup dup999; do
  for workers in 1 2; do
    target_start --workers "$workers" --select-ms 0 --degree 16 --max-degree 16 \
      --max-conns-per-ip 32 --event-rate 100000000
    if [ "$mix" = event ]; then
      args=(--mix event=1 --count "$events" --sources 4 --sinks 1)
    elif [ "$mix" = dup ]; then
      args=(--mix event=1,dup=99 --count $((events * 10)) --sources 4 --sinks 1)
    else
      args=(--mix event=1,dup=999 --count $((events * 10)) --sources 4 --sinks 1)
    fi
    v0=$(metric meshmap_signature_verifications_total); d0=$(metric meshmap_events_duplicate_total)
    c0=$(cpu_s "$tpid")
    "$bin" flood --target "127.0.0.1:$tport" --difficulty 8 --network bench --json "${args[@]}" \
      >"$dir/g.json" 2>"$dir/g.err" || { cat "$dir/g.err"; exit 1; }
    c1=$(cpu_s "$tpid")
    v1=$(metric meshmap_signature_verifications_total); d1=$(metric meshmap_events_duplicate_total)
    rss=$(rss_kb "$tpid")
    target_stop
    awk -v mix="$mix" -v w="$workers" -v sent="$(jf "$dir/g.json" sent)" -v v="$((v1 - v0))" \
      -v d="$((d1 - d0))" -v s="$(jf "$dir/g.json" seconds)" -v c="$(awk -v a="$c0" -v b="$c1" 'BEGIN{print b-a}')" \
      -v lim="$limit" -v p99="$(jf "$dir/g.json" latency_us.p99)" -v rss="$rss" 'BEGIN {
        name = mix == "event" ? "unique events" : mix == "dup" ? "1% unique, 99% duplicates" : "0.1% unique, 99.9% duplicates"
        vc = (c > 0 ? v / c : 0); dc = (c > 0 ? d / c : 0)
        printf "| %s | %s | %d | %d | %d | %.3f | %.0f | %.0f | %.0f%% | %.0f | %.1f ms | %.1f MB |\n",
          name, w, sent, v, d, s, v / s, vc, 100 * vc / lim, dc, p99 / 1000, rss / 1000 }'
  done
done
