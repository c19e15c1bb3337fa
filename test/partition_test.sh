#!/usr/bin/env bash
# Partition warning and repair, with real processes on loopback.
#   A - B - C - D - E : a line (the ends want 1 link, the others 2, and
#   nobody takes more, so the line is what the selectors settle on). Once
#   every node has heard of every other by peer exchange, C (the bridge) is
#   killed. Checks: a survivor reports the partition; the selectors heal it
#   (B or D dials across, preferring a peer in the other component); every
#   survivor's map ends as one component of the 4 survivors holding exactly
#   their links; nothing crashes; every node stops cleanly on SIGTERM.
#   partition_test.sh MESHMAP_BINARY
set -u
bin=$1
names=(A B C D E)
. "$(dirname "$0")/proc_lib.sh"
proc_init 5
for i in 0 1 2 3 4; do
  "$bin" keygen --difficulty 10 --out "$dir/k$i" >/dev/null 2>&1 || { echo "keygen failed"; exit 1; }
done

start() { # start i DEGREE [BOOTSTRAP-INDEX]
  local i=$1 deg=$2 boots=()
  [ $# -ge 3 ] && boots=(--bootstrap "127.0.0.1:${ports[$3]}")
  MESHMAP_LOG=${MESHMAP_LOG:-info} "$bin" node --key "$dir/k$i" --difficulty 10 --network part \
    --workers 1 --listen "127.0.0.1:${ports[$i]}" --status 1 --ttl 8 --max-conns-per-ip 16 \
    --degree "$deg" --max-degree "$deg" --select-ms 500 --min-link-ms 1000 --px-ms 1000 \
    --confirm-timeout 5 "${boots[@]}" >>"$dir/n$i.log" 2>&1 &
  pids[$i]=$!
}
peers_are() { # peers_are i n ...: node i has n links, ...
  while [ $# -gt 0 ]; do [ "$(field "$1" peers)" = "$2" ] || return 1; shift 2; done
}
# B and D know 3 addresses: their neighbours', and the other side's
# neighbour of C (C shares only addresses it shook hands with itself).
know_across() {
  for i in "$@"; do [ "$(field "$i" addresses)" -ge 3 ] || return 1; done
}

# Build the line one link at a time.
start 0 1;    sleep 0.3
start 1 2 0;  wait_for 20 peers_are 1 1 || fail "B did not link to A"
start 2 2 1;  wait_for 20 peers_are 2 1 1 2 || fail "C did not link to B"
start 3 2 2;  wait_for 20 peers_are 3 1 2 2 || fail "D did not link to C"
start 4 1 3;  wait_for 20 peers_are 4 1 3 2 || fail "E did not link to D"
wait_for 30 maps_true 0 1 2 3 4 || fail "the line's maps did not converge"
peers_are 0 1 1 2 2 2 3 2 4 1 || fail "not a line: $(for i in 0 1 2 3 4; do printf '%s=%s ' "${names[$i]}" "$(field "$i" peers)"; done)"
wait_for 60 know_across 1 3 || fail "B and D did not learn each other's address by peer exchange"
echo "line A-B-C-D-E up, maps agree; killing C"

kill -KILL "${pids[2]}"; wait "${pids[2]}" 2>/dev/null; pids[2]=0
t0=$(date +%s)
warned() { grep -q 'partition' "$dir/n0.log" "$dir/n1.log" "$dir/n3.log" "$dir/n4.log"; }
wait_for 20 warned || fail "no survivor reported the partition"
wait_for 60 maps_true 0 1 3 4 || fail "the survivors' maps did not heal into one component of 4"
healed=$(( $(date +%s) - t0 ))
for i in 0 1 3 4; do
  [ "$(field "$i" events_bad)" = 0 ] || fail "${names[$i]} refused events"
done
echo "healed in about ${healed}s: $(for i in 0 1 3 4; do printf '%s=%s ' "${names[$i]}" "$(field "$i" peers)"; done)"
grep -h 'partition' "$dir"/n*.log | sed 's/^/  | /' | head -6

for i in 0 1 3 4; do kill -TERM "${pids[$i]}"; done
for i in 0 1 3 4; do
  wait "${pids[$i]}"; r=$?; pids[$i]=0
  [ "$r" -eq 0 ] || fail "${names[$i]} exited $r on SIGTERM"
done
sanitizer_check
if [ "$fails" -ne 0 ]; then
  for i in 0 1 2 3 4; do echo "--- ${names[$i]}"; grep -v '^status' "$dir/n$i.log" | tail -n 8; last "$i"; done
  exit 1
fi
echo "partition test: ok"
