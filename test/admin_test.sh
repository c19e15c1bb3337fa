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

# bans through the admin interface: an address (refused at accept, before
# TLS), then an id (refused at the handshake); each closes the link at once
metric() { ctl metrics | sed -n "s/^$1 \([0-9]*\)$/\1/p"; }
out=$(ctl bans) && grep -q '^target' <<<"$out" || fail "bans: $out"
ctl ban 127.0.0.1 --reason "test ban" >/dev/null || fail "ban 127.0.0.1"
unlinked() { [ "$(field 0 peers)" = 0 ]; }
wait_for 20 unlinked || fail "the banned address's link did not close"
r0=$(metric meshmap_connections_refused_total)
refused_more() { [ "$(metric meshmap_connections_refused_total)" -gt "$r0" ]; }
wait_for 30 refused_more || fail "node 1's redial was not refused at accept"
out=$(ctl bans) && grep -q '127.0.0.1/32 *never *test ban' <<<"$out" || fail "bans list: $out"
out=$(ctl --json bans) && grep -q '"target":"127.0.0.1/32","kind":"addr"' <<<"$out" || fail "bans json: $out"
ctl unban 127.0.0.1 >/dev/null || fail "unban 127.0.0.1"
wait_for 90 linked || fail "node 1 did not come back after the unban"
id1=$(grep -m1 '^node ' "$dir/n1.log" | cut -d' ' -f2)
ctl ban "$id1" --seconds 3600 >/dev/null || fail "ban id"
wait_for 20 unlinked || fail "the banned id's link did not close"
b0=$(metric meshmap_refused_banned_total)
wait_for 60 eval '[ "$(metric meshmap_refused_banned_total)" -gt "$b0" ]' ||
  fail "node 1's redial was not refused at the handshake"
ctl unban "$id1" >/dev/null || fail "unban id"
"$bin" ctl --admin "$adm" ban not-an-address >/dev/null 2>"$dir/err"; r=$?
[ "$r" = 1 ] && grep -q 'target: a 64-hex peer id' "$dir/err" || fail "bad ban target: exit $r, $(cat "$dir/err")"
"$bin" ctl --admin "$adm" unban 10.9.9.9 >/dev/null 2>"$dir/err"; r=$?
[ "$r" = 1 ] && grep -q 'no ban on 10.9.9.9' "$dir/err" || fail "unban of nothing: exit $r"
echo "ok: bans by address (at accept) and by id (at the handshake), listed, lifted"

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
