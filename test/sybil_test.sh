#!/usr/bin/env bash
# Sybil identities against one node (issue 10, scenario 6), with the real
# binary on loopback:
#  - 20 identities whose hello carries a short proof of work: none gets
#    in (error 6 each, counted by cause), no handshake completes;
#  - 5,000 identities with a valid proof of work, each announcing itself
#    with 12 neighbours (meshmap flood --map), into a node whose map holds
#    at most 1,000 peers: the map never passes 1,000, the excess is
#    dropped and counted (events_map_full_total), the relaying source is
#    not punished for it (no misbehaviour, no ban), and the node's peak
#    RSS stays within its memory budget.
#   sybil_test.sh MESHMAP_BINARY
set -u
bin=$1
. "$(dirname "$0")/proc_lib.sh"
proc_init 1
"$bin" keygen --difficulty 8 --out "$dir/k0" >/dev/null 2>&1
"$bin" node --key "$dir/k0" --difficulty 8 --network sybil --listen "127.0.0.1:${ports[0]}" \
  --admin 127.0.0.1:0 --select-ms 0 --map-max 1000 --status 1 >"$dir/n0.log" 2>&1 &
pids[0]=$!
adm=
for _ in $(seq 100); do adm=$(sed -n 's/^admin on \(.*\)$/\1/p' "$dir/n0.log"); [ -n "$adm" ] && break; sleep 0.1; done
[ -n "$adm" ] || { fail "the node did not start"; cat "$dir/n0.log"; exit 1; }
metric() { "$bin" ctl --admin "$adm" metrics | sed -n "s/^meshmap_$1 \([0-9]*\)$/\1/p"; }

# short proof of work: refused at the hello, every one
hs0=$(metric handshakes_completed_total)
refused=0
for i in $(seq 20); do
  r=$("$bin" probe --target "127.0.0.1:${ports[0]}" --network sybil --difficulty 8 --kind shortpow --json)
  grep -q '"closed":true,"close_ms":[0-9.]*,"error":6,' <<<"$r" && refused=$((refused + 1)) || fail "short proof of work $i: $r"
done
echo "figure sybil_short_pow_refused $refused/20"
[ "$(metric handshakes_completed_total)" = "$hs0" ] || fail "a short-PoW identity completed a handshake"
[ "$(metric 'misbehaviour_total{cause="short proof of work"}')" = 20 ] || fail "short proof of work counted $(metric 'misbehaviour_total{cause="short proof of work"}') times, not 20"

# valid proof of work, five times more identities than the map holds
"$bin" flood --target "127.0.0.1:${ports[0]}" --network sybil --difficulty 8 --json \
  --map 5000 --map-rate 5000 --count 10 --sinks 1 >"$dir/f.json" 2>"$dir/f.err" &
fp=$!
peak=0
while kill -0 "$fp" 2>/dev/null; do
  p=$(metric map_peers); [ "${p:-0}" -gt "$peak" ] && peak=$p
  sleep 0.2
done
wait "$fp" || fail "the flood exit $?: $(tail -2 "$dir/f.err")"
p=$(metric map_peers); [ "${p:-0}" -gt "$peak" ] && peak=$p
full=$(metric events_map_full_total)
echo "figure sybil_map_peers_peak $peak (bound 1000)"
echo "figure sybil_events_dropped_map_full $full"
[ "$peak" -le 1000 ] || fail "the map held $peak peers, over its bound of 1000"
[ "$peak" -ge 900 ] || fail "the map peaked at $peak peers: the flood did not fill it"
[ "${full:-0}" -ge 1000 ] || fail "only ${full:-0} events counted as dropped for a full map"
m=$("$bin" ctl --admin "$adm" metrics)
bad=$(sed -n 's/^meshmap_misbehaviour_total{cause="\([^"]*\)"} \([0-9]*\)$/\1 \2/p' <<<"$m" |
  awk '$NF > 0 && $0 !~ /^short proof of work/' | tr '\n' ';')
[ -z "$bad" ] || fail "the relaying source was held at fault: $bad"
[ "$(sed -n 's/^meshmap_bans_total \([0-9]*\)$/\1/p' <<<"$m")" = 0 ] || fail "a ban was made"
budget=$(sed -n 's/^meshmap_memory_budget_bytes \([0-9]*\)$/\1/p' <<<"$m")
hwm=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB$/\1/p' "/proc/${pids[0]}/status")
echo "figure sybil_peak_rss_kb $hwm (budget $((budget / 1024)) kB)"
[ -n "$hwm" ] && [ "$((hwm * 1024))" -le "$budget" ] || fail "peak RSS $hwm kB over the budget $budget bytes"
kill -TERM "${pids[0]}"; wait "${pids[0]}" || fail "the node did not stop cleanly"
pids[0]=0
sanitizer_check
[ "$fails" -eq 0 ] && echo "sybil: ok"
[ "$fails" -eq 0 ]
