#!/usr/bin/env bash
# Memory macro benchmark (issue 8, benchmark 4): one `meshmap node` (2
# workers, the default 50 MB budget) with a 100k-peer map loaded, then a
# saturating flood (broadcast and direct from 1 source to 12 sinks, as fast
# as the node takes them) and, meanwhile, a storm of 1,000 new peers with
# 1,000 handshakes in flight at once. For each TLS backend of the node:
# the map it holds, its peak RSS (VmHWM) and the peak of jemalloc's
# allocated bytes (sampled from its metrics every 0.2 s), the most
# connections it held at once, what it refused, and what the flood got.
#   bench/memory.sh [MAP_PEERS] [SECONDS]   (defaults 100000, 20; COUNT=messages,
#   STORM=handshakes in the environment)
set -euo pipefail
[ -n "${BENCH_DEBUG:-}" ] && set -x
. "$(dirname "$0")/lib.sh"
bench_init
peers=${1:-100000}
secs=${2:-20}
count=${COUNT:-400000}   # flood messages, signed before the map is sent
storm=${STORM:-1000}
machine_line
echo
echo "| node TLS backend | map peers held | RSS after the map | peak RSS | peak jemalloc allocated | budget | most connections at once | storm: handshakes done, no slot, failed | flood frames delivered/s | lost | pressure reached | refused (memory) | join sync log frames: most seen, at the end |"
echo "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---|---:|---|"
for backend in ${BACKENDS:-openssl mbedtls}; do
  target_start --backend "$backend" --workers 2 --select-ms 0 --degree 16 --max-degree 16 \
    --max-conns-per-ip 1100 --max-pending-per-ip 1100 --event-rate 100000000 \
    --direct-rate 100000000
  # the map first (its events paced at what 2 workers verify), the flood after it
  "$bin" flood --target "127.0.0.1:$tport" --difficulty 8 --network bench --json \
    --map "$peers" --map-rate 12000 --mix bcast=1,direct=1 --count "$count" \
    --duration "$secs" >"$dir/f.json" 2>"$dir/f.err" &
  fpid=$!
  # wait for most of the map (the flood starts right after it; the storm
  # takes a few seconds to make its identities)
  held=0 peak_log=0
  for _ in $(seq 1500); do
    held=$(metric meshmap_map_peers); held=${held%.*}
    lg=$(metric meshmap_sync_log_frames); lg=${lg%.*}
    [ "${lg:-0}" -gt "$peak_log" ] && peak_log=$lg
    [ "${held:-0}" -ge $((peers * 9 / 10)) ] && break
    kill -0 "$fpid" 2>/dev/null || break
    sleep 0.2
  done
  rss_map=$(awk '/^VmRSS/ {print $2}' "/proc/$tpid/status")
  # the storm beside the flood, and a sampler
  "$bin" flood --target "127.0.0.1:$tport" --difficulty 8 --network bench --json \
    --handshakes "$storm" --concurrency "$storm" >"$dir/s.json" 2>"$dir/s.err" &
  spid=$!
  peak_alloc=0 peak_conns=0 peak_press=0
  while kill -0 "$fpid" 2>/dev/null || kill -0 "$spid" 2>/dev/null; do
    m=$("$bin" ctl --admin "$tadm" metrics 2>/dev/null || true)
    a=$(sed -n 's/^meshmap_memory_allocated_bytes \([0-9.e+]*\)$/\1/p' <<<"$m")
    c=$(awk '/^meshmap_connections\{/ {s += $2} END {print s + 0}' <<<"$m")
    p=$(sed -n 's/^meshmap_memory_pressure \([0-9]*\)$/\1/p' <<<"$m")
    lg=$(sed -n 's/^meshmap_sync_log_frames \([0-9]*\)$/\1/p' <<<"$m")
    [ "${lg:-0}" -gt "$peak_log" ] && peak_log=$lg
    peak_alloc=$(awk -v a="${a:-0}" -v b="$peak_alloc" 'BEGIN {printf "%.0f", (a > b ? a : b)}')
    [ "${c%.*}" -gt "$peak_conns" ] && peak_conns=${c%.*}
    [ "${p:-0}" -gt "$peak_press" ] && peak_press=$p
    sleep 0.2
  done
  wait "$fpid" || { echo "flood failed:"; cat "$dir/f.err"; exit 1; }
  wait "$spid" || { echo "storm failed:"; cat "$dir/s.err"; exit 1; }
  held=$(metric meshmap_map_peers); held=${held%.*}
  refused=$(metric meshmap_refused_memory_total); refused=${refused%.*}
  budget=$(metric meshmap_memory_budget_bytes)
  end_log=$(metric meshmap_sync_log_frames); end_log=${end_log%.*}
  rss=$(rss_kb "$tpid")
  target_stop
  failed=$(python3 -c 'import json,sys; print(sum(json.load(open(sys.argv[1]))["failed"].values()))' "$dir/s.json")
  press=$(case $peak_press in 0) echo ok ;; 1) echo high ;; *) echo critical ;; esac)
  awk -v be="$backend" -v held="$held" -v rm="$rss_map" -v rss="$rss" -v pa="$peak_alloc" \
    -v bud="$budget" -v pc="$peak_conns" -v sd="$(jf "$dir/s.json" completed)" \
    -v sn="$(jf "$dir/s.json" no_slot)" -v sf="$failed" -v n="$storm" \
    -v fd="$(jf "$dir/f.json" delivered_per_s)" -v fe="$(jf "$dir/f.json" expected)" \
    -v fdl="$(jf "$dir/f.json" delivered)" -v press="$press" -v ref="${refused:-0}" \
    -v pl="$peak_log" -v el="${end_log:-0}" \
    'BEGIN { printf "| %s | %d | %.1f MB | %.1f MB | %.1f MB | %.0f MB | %d | %d of %d, %d, %d | %.0f | %d | %s | %d | %d, %d |\n",
      be, held, rm / 1000, rss / 1000, pa / 1e6, bud / 1e6, pc, sd, n, sn, sf, fd, fe - fdl, press, ref, pl, el }'
  [ "${held:-0}" -gt "$peers" ] ||
    { echo "memory.sh: the node holds $held map peers of $peers + itself"; exit 1; }
done
