#!/usr/bin/env bash
# Start a small meshmap network on loopback and watch it converge.
#
#   scripts/localnet.sh [--nodes N] [--bin PATH] [--difficulty BITS]
#                       [--timeout SECONDS] [--keep DIR] [--refresh-ms MS] [--ttl HOPS]
#
# Every node listens; node 2 bootstraps to node 1; every later node i
# bootstraps to node i/2 (rounded down: a binary tree) and to node i-1 (a
# line), so no node has more than 5 links. That is 2N-3 links, each one confirmed by both of
# its ends once gossip has spread. The network has converged when every node's
# status line reports the whole map: N nodes, 2N-3 confirmed edges, one
# component. Prints a table per node, then stops every node with SIGTERM.
# Exit 0 if converged (and every node stopped cleanly), 1 otherwise.
set -u
nodes=8 bin= difficulty=12 timeout=60 keep= refresh=600000 ttl=16
while [ $# -gt 0 ]; do
  case $1 in
    --nodes) nodes=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --difficulty) difficulty=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    --keep) keep=$2; shift 2 ;;
    --refresh-ms) refresh=$2; shift 2 ;;
    --ttl) ttl=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "localnet: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
case $nodes in ''|*[!0-9]*) echo "localnet: --nodes must be a whole number" >&2; exit 2 ;; esac
if [ "$nodes" -lt 2 ] || [ "$nodes" -gt 64 ]; then
  echo "localnet: --nodes must be in [2, 64]" >&2; exit 2
fi
[ -n "$bin" ] || bin="$(cd "$(dirname "$0")/.." && pwd)/build/release/meshmap"
[ -x "$bin" ] || { echo "localnet: $bin is not built (bash scripts/build.sh release)" >&2; exit 2; }

if [ -n "$keep" ]; then dir=$keep; mkdir -p "$dir"; else dir=$(mktemp -d); fi
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  [ -n "$keep" ] || rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

echo "localnet: $nodes nodes on 127.0.0.1, proof of work $difficulty bits, logs in $dir"
for i in $(seq "$nodes"); do
  "$bin" keygen --difficulty "$difficulty" --out "$dir/n$i.key" --force >"$dir/n$i.id" 2>/dev/null ||
    { echo "localnet: keygen failed for node $i" >&2; exit 1; }
done

# Start node i listening on an ephemeral port; echo the port it bound.
start() {
  local i=$1; shift
  MESHMAP_LOG=${MESHMAP_LOG:-warn} "$bin" node --key "$dir/n$i.key" --difficulty "$difficulty" \
    --network localnet --workers 1 --listen 127.0.0.1:0 --status 1 --refresh-ms "$refresh" \
    --max-conns-per-ip $((nodes + 4)) --ttl "$ttl" "$@" >"$dir/n$i.log" 2>&1 &
  pids+=($!)
  local port=
  for _ in $(seq 100); do
    port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$dir/n$i.log")
    [ -n "$port" ] && break
    if ! kill -0 "${pids[-1]}" 2>/dev/null; then break; fi
    sleep 0.1
  done
  if [ -z "$port" ]; then
    echo "localnet: node $i did not start; its log:" >&2; sed 's/^/  | /' "$dir/n$i.log" >&2; exit 1
  fi
  ports[$i]=$port
}
declare -a ports
start 1
for i in $(seq 2 "$nodes"); do
  if [ "$i" -eq 2 ]; then start 2 --bootstrap "127.0.0.1:${ports[1]}"
  else start "$i" --bootstrap "127.0.0.1:${ports[$((i / 2))]}" --bootstrap "127.0.0.1:${ports[$((i - 1))]}"; fi
done
want_edges=$((2 * nodes - 3))
echo "localnet: all started; waiting for every map to hold $nodes nodes, $want_edges confirmed edges, 1 component"

field() { sed -n "s/.* $2=\([0-9]*\).*/\1/p" <<<"$1"; }
t0=$(date +%s%N)
converged=0
while :; do
  ok=1
  for i in $(seq "$nodes"); do
    line=$(grep '^status ' "$dir/n$i.log" | tail -n 1)
    if [ -z "$line" ] || [ "$(field "$line" map_records)" != "$nodes" ] ||
       [ "$(field "$line" confirmed_edges)" != "$want_edges" ] ||
       [ "$(field "$line" components)" != 1 ]; then ok=0; break; fi
  done
  [ "$ok" -eq 1 ] && { converged=1; break; }
  for p in "${pids[@]}"; do
    kill -0 "$p" 2>/dev/null || { echo "localnet: a node exited early" >&2; break 2; }
  done
  [ $(( ($(date +%s%N) - t0) / 1000000000 )) -ge "$timeout" ] && break
  sleep 0.2
done
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
elapsed=$((ms / 1000)).$(( (ms % 1000) / 100 ))

printf '%-5s %-16s %6s %5s %6s %10s %6s %9s %9s %6s\n' node id port peers map conf_edges comps events_in bad dials
for i in $(seq "$nodes"); do
  line=$(grep '^status ' "$dir/n$i.log" | tail -n 1)
  printf '%-5s %-16s %6s %5s %6s %10s %6s %9s %9s %6s\n' "$i" "$(cut -c1-16 "$dir/n$i.id")" "${ports[$i]}" \
    "$(field "$line" peers)" "$(field "$line" map_records)" "$(field "$line" confirmed_edges)" \
    "$(field "$line" components)" "$(field "$line" events_in)" "$(field "$line" events_bad)" "$(field "$line" dials)"
done

# Stop every node; each must exit 0 on SIGTERM.
rc=0
for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
for i in $(seq "$nodes"); do
  wait "${pids[$((i - 1))]}"; r=$?
  if [ "$r" -ne 0 ]; then echo "localnet: node $i exited $r on SIGTERM; its log tail:" >&2
    tail -n 5 "$dir/n$i.log" | sed 's/^/  | /' >&2; rc=1; fi
done
pids=()
if [ "$converged" -eq 1 ]; then
  echo "localnet: converged in ${elapsed}s: every map holds $nodes nodes, $want_edges confirmed edges, 1 component"
else
  echo "localnet: NOT converged after ${elapsed}s (want $nodes nodes, $want_edges confirmed edges, 1 component everywhere)" >&2
  rc=1
fi
exit $rc
