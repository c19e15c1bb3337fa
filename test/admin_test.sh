#!/usr/bin/env bash
# The admin interface and meshmap ctl, against the real binary: two nodes,
# one with --admin. health, peers (table and JSON), map (JSON and DOT,
# parsed by Graphviz's dot), metrics (checked by promtool, and against the
# node's own status line); errors: a bad --admin, an unknown endpoint, a
# node that is not there.
#   admin_test.sh MESHMAP_BINARY
set -u
bin=$1
. "$(dirname "$0")/proc_lib.sh"
proc_init 2
for t in dot promtool; do
  command -v "$t" >/dev/null || { echo "FAIL: $t is missing (bash scripts/deps.sh installs it)"; exit 1; }
done
for i in 0 1; do "$bin" keygen --difficulty 8 --out "$dir/k$i" >/dev/null 2>&1; done
"$bin" node --key "$dir/k0" --difficulty 8 --network admintest --listen "127.0.0.1:${ports[0]}" \
  --admin 127.0.0.1:0 --status 1 >"$dir/n0.log" 2>&1 &
pids[0]=$!
"$bin" node --key "$dir/k1" --difficulty 8 --network admintest --listen "127.0.0.1:${ports[1]}" \
  --bootstrap "127.0.0.1:${ports[0]}" --status 1 >"$dir/n1.log" 2>&1 &
pids[1]=$!
adm=
for _ in $(seq 100); do adm=$(sed -n 's/^admin on \(.*\)$/\1/p' "$dir/n0.log"); [ -n "$adm" ] && break; sleep 0.1; done
[ -n "$adm" ] || { fail "no 'admin on' line"; cat "$dir/n0.log"; exit 1; }
linked() { [ "$(field 0 peers)" = 1 ] && [ "$(field 0 confirmed_edges)" = 1 ]; }
wait_for 30 linked || fail "the two nodes did not link"
ctl() { "$bin" ctl --admin "$adm" "$@"; }

out=$(ctl health) && grep -q '"status":"ok","links":1,"map_peers":2' <<<"$out" || fail "health: $out"
out=$(ctl peers) && grep -Eq '^[0-9a-f]{16} +in +127\.0\.0\.1:'"${ports[1]}" <<<"$out" || fail "peers table: $out"
out=$(ctl --json peers) && grep -q '"dir":"in","ip":"127.0.0.1","port":'"${ports[1]}" <<<"$out" || fail "peers json: $out"
out=$(ctl map) && grep -q '"state":"confirmed"' <<<"$out" || fail "map json: $out"
ctl map --dot | dot -Tsvg >/dev/null || fail "dot could not read the map"
ctl metrics >"$dir/metrics.txt" || fail "metrics: no answer"
promtool check metrics <"$dir/metrics.txt" || fail "promtool: the metrics do not pass"
grep -q '^meshmap_links 1$' "$dir/metrics.txt" || fail "metrics: meshmap_links is not 1"
grep -q '^meshmap_map_confirmed_edges 1$' "$dir/metrics.txt" || fail "metrics: confirmed edges"
ev=$(sed -n 's/^meshmap_events_received_total \([0-9]*\)$/\1/p' "$dir/metrics.txt")
[ -n "$ev" ] && [ "$ev" -ge 1 ] || fail "metrics: no event received counted ($ev)"
echo "ok: health, peers, map (JSON, DOT read by dot), metrics (promtool)"

# errors
code=$(curl -s -o /dev/null -w '%{http_code}' "http://$adm/nosuch") || true
[ "$code" = 404 ] || fail "unknown endpoint: HTTP $code"
"$bin" ctl --admin 127.0.0.1:1 health >/dev/null 2>"$dir/err"; r=$?
[ "$r" = 1 ] && grep -q 'cannot reach 127.0.0.1:1' "$dir/err" || fail "unreachable node: exit $r, $(cat "$dir/err")"
"$bin" ctl --admin "$adm" frobnicate >/dev/null 2>&1; r=$?
[ "$r" = 2 ] || fail "unknown command: exit $r"
"$bin" node --key "$dir/k0" --difficulty 8 --admin nonsense >/dev/null 2>"$dir/err"; r=$?
[ "$r" = 2 ] && grep -q -- "--admin: 'nonsense' is not HOST:PORT" "$dir/err" || fail "bad --admin: exit $r"
echo "ok: errors named, exit codes 1 and 2"

for i in 0 1; do kill -TERM "${pids[$i]}"; wait "${pids[$i]}" || fail "node $i did not stop cleanly"; pids[$i]=0; done
sanitizer_check
[ "$fails" -eq 0 ] && echo "admin test: ok"
[ "$fails" -eq 0 ]
