#!/usr/bin/env bash
# Draw docs/map-example.png: two groups of four nodes, each group fully
# linked, joined by one link (a bridge, drawn red and thick). Selection is
# off (--select-ms 0) so the links stay as given.
#   bash scripts/map_example.sh [OUT.png]   (default docs/map-example.png)
set -u
cd "$(dirname "$0")/.."
out=${1:-docs/map-example.png}
bin=build/release/meshmap
[ -x "$bin" ] || bash scripts/build.sh release >/dev/null || exit 1
. test/proc_lib.sh
proc_init 8
for i in $(seq 0 7); do "$bin" keygen --difficulty 8 --out "$dir/k$i" >/dev/null 2>&1; done
boots() { # node i dials the earlier nodes of its group; node 4 also dials node 3
  local i=$1 g=$(( $1 / 4 * 4 )) j
  for ((j = g; j < i; j++)); do printf -- '--bootstrap 127.0.0.1:%s ' "${ports[$j]}"; done
  [ "$i" = 4 ] && printf -- '--bootstrap 127.0.0.1:%s ' "${ports[3]}"
}
for i in $(seq 0 7); do
  extra=(); [ "$i" = 0 ] && extra=(--admin 127.0.0.1:0)
  # shellcheck disable=SC2046
  "$bin" node --key "$dir/k$i" --difficulty 8 --network example --select-ms 0 --status 1 \
    --listen "127.0.0.1:${ports[$i]}" $(boots "$i") "${extra[@]}" >"$dir/n$i.log" 2>&1 &
  pids[$i]=$!
done
done_() { [ "$(field 0 confirmed_edges)" = 13 ] && [ "$(field 0 map_records)" = 8 ]; }
wait_for 60 done_ || { echo "the example network did not form"; exit 1; }
adm=$(sed -n 's/^admin on \(.*\)$/\1/p' "$dir/n0.log")
"$bin" map --admin "$adm" --dot | dot -Tpng -o "$out" || exit 1
echo "wrote $out"
for i in $(seq 0 7); do kill -TERM "${pids[$i]}"; wait "${pids[$i]}"; pids[$i]=0; done
