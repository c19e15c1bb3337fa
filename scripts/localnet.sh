#!/usr/bin/env bash
# Start a small meshmap network on loopback and watch it converge.
#
#   scripts/localnet.sh [--nodes N] [--bin PATH] [--difficulty BITS]
#                       [--timeout SECONDS] [--keep DIR] [--refresh-ms MS] [--ttl HOPS]
#                       [--one-bootstrap] [--degree N] [--max-degree N] [-- NODE FLAGS]
#
# Every node listens. By default node 2 bootstraps to node 1 and every later
# node i to node i/2 (a binary tree) and to node i-1 (a line); with
# --one-bootstrap every node is given node 1's address only. From there each
# node finds others by peer exchange and picks its neighbours itself. The
# network has converged when every node's status line shows the whole map
# and the true topology: N nodes, one component, every node's confirmed
# edges exactly the links the nodes hold (the sum of the nodes' link
# digests is twice each map's digest), no node above the maximum degree.
# Prints a table per node, then stops every node with SIGTERM. Exit 0 if
# converged (and every node stopped cleanly), 1 otherwise.
set -u
nodes=8 bin= difficulty=12 timeout=60 keep= refresh=600000 ttl=16 one=0 degree=12 maxdeg=16
extra=()
while [ $# -gt 0 ]; do
  case $1 in
    --one-bootstrap) one=1; shift ;;
    --degree) degree=$2; shift 2 ;;
    --max-degree) maxdeg=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    --nodes) nodes=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --difficulty) difficulty=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    --keep) keep=$2; shift 2 ;;
    --refresh-ms) refresh=$2; shift 2 ;;
    --ttl) ttl=$2; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
    --max-conns-per-ip $((nodes + 4)) --ttl "$ttl" --degree "$degree" --max-degree "$maxdeg" \
    "${extra[@]}" "$@" >"$dir/n$i.log" 2>&1 &
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
  if [ "$i" -eq 2 ] || [ "$one" -eq 1 ]; then start "$i" --bootstrap "127.0.0.1:${ports[1]}"
  else start "$i" --bootstrap "127.0.0.1:${ports[$((i / 2))]}" --bootstrap "127.0.0.1:${ports[$((i - 1))]}"; fi
done
echo "localnet: all started; waiting for every map to hold $nodes nodes, 1 component and the true links"

field() { sed -n "s/.* $2=\(-\{0,1\}[0-9]*\).*/\1/p" <<<"$1"; }
t0=$(date +%s%N)
converged=0 edges=0
# True when every node's last status line agrees with the true topology.
check() {
  local sum=0 digest= line links i
  edges=0
  for i in $(seq "$nodes"); do
    line=$(grep '^status ' "$dir/n$i.log" | tail -n 1)
    [ -n "$line" ] || return 1
    [ "$(field "$line" map_records)" = "$nodes" ] || return 1
    [ "$(field "$line" components)" = 1 ] || return 1
    links=$(field "$line" peers)
    [ "$links" -ge 1 ] && [ "$links" -le "$maxdeg" ] || return 1
    edges=$((edges + links))
    sum=$((sum + $(field "$line" links_digest)))
    if [ -z "$digest" ]; then digest=$(field "$line" map_digest)
    elif [ "$digest" != "$(field "$line" map_digest)" ]; then return 1; fi
    [ "$(field "$line" confirmed_edges)" = "$(field "$(grep '^status ' "$dir/n1.log" | tail -n 1)" confirmed_edges)" ] || return 1
  done
  edges=$((edges / 2))
  [ $((2 * digest)) = "$sum" ]
}
while :; do
  # twice in a row, a status interval apart: not a moment between changes
  if check; then sleep 1.1; check && { converged=1; break; }; fi
  for p in "${pids[@]}"; do
    kill -0 "$p" 2>/dev/null || { echo "localnet: a node exited early" >&2; break 2; }
  done
  [ $(( ($(date +%s%N) - t0) / 1000000000 )) -ge "$timeout" ] && break
  sleep 0.2
done
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
elapsed=$((ms / 1000)).$(( (ms % 1000) / 100 ))

printf '%-5s %-16s %6s %5s %6s %10s %6s %9s %5s %6s %5s %5s\n' node id port peers map conf_edges comps events_in bad dials kicks full
for i in $(seq "$nodes"); do
  line=$(grep '^status ' "$dir/n$i.log" | tail -n 1)
  printf '%-5s %-16s %6s %5s %6s %10s %6s %9s %5s %6s %5s %5s\n' "$i" "$(cut -c1-16 "$dir/n$i.id")" "${ports[$i]}" \
    "$(field "$line" peers)" "$(field "$line" map_records)" "$(field "$line" confirmed_edges)" \
    "$(field "$line" components)" "$(field "$line" events_in)" "$(field "$line" events_bad)" \
    "$(field "$line" dials)" "$(field "$line" kicks)" "$(field "$line" refused_full)"
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
  echo "localnet: converged in ${elapsed}s: every map holds $nodes nodes, 1 component, and exactly the $edges links the nodes hold, all confirmed"
else
  echo "localnet: NOT converged after ${elapsed}s (want $nodes nodes, 1 component and the true links in every map)" >&2
  rc=1
fi
exit $rc
