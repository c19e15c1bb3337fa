#!/usr/bin/env bash
# Operating a node, against the real binary: three nodes in a line
# (0 - 1 - 2, no selection: the links stay as given), node 1 run from a
# config file with an admin interface.
#  - meshmap map: JSON and DOT (read by dot), both edges of a line marked
#    as bridges; the new metrics families pass promtool;
#  - protect / unprotect / protected by id prefix, disconnect, connect;
#  - SIGHUP: bans and limits from the file applied, the fixed settings
#    named, a broken file changes nothing, the log file reopened after a
#    rotation, JSON log lines that parse;
#  - SIGTERM: goodbye to every peer, the snapshot saved, exit 0.
#   operate_test.sh MESHMAP_BINARY
set -u
bin=$1
. "$(dirname "$0")/proc_lib.sh"
proc_init 4
for t in dot promtool python3; do
  command -v "$t" >/dev/null || { echo "FAIL: $t is missing (bash scripts/deps.sh installs it)"; exit 1; }
done
for i in 0 1 2 3; do "$bin" keygen --difficulty 8 --out "$dir/k$i" >/dev/null 2>&1; done
common=(--difficulty 8 --network optest --select-ms 0 --status 1)
conf=$dir/n1.conf
cat >"$conf" <<CONF
# node 1: the one under test
key = $dir/k1
difficulty = 8
network = optest
listen = 127.0.0.1:${ports[1]}
admin = 127.0.0.1:0
bootstrap = 127.0.0.1:${ports[0]}
select-ms = 0
status = 1
snapshot = $dir/n1.snap
log-level = info
log-format = json
log-file = $dir/n1.json
ban = 10.99.0.0/16
CONF
"$bin" node --key "$dir/k0" "${common[@]}" --listen "127.0.0.1:${ports[0]}" >"$dir/n0.log" 2>&1 &
pids[0]=$!
"$bin" node --config "$conf" >"$dir/n1.log" 2>&1 &
pids[1]=$!
"$bin" node --key "$dir/k2" "${common[@]}" --listen "127.0.0.1:${ports[2]}" \
  --bootstrap "127.0.0.1:${ports[1]}" >"$dir/n2.log" 2>&1 &
pids[2]=$!
"$bin" node --key "$dir/k3" "${common[@]}" --listen "127.0.0.1:${ports[3]}" >"$dir/n3.log" 2>&1 &
pids[3]=$!
adm=
for _ in $(seq 100); do adm=$(sed -n 's/^admin on \(.*\)$/\1/p' "$dir/n1.log"); [ -n "$adm" ] && break; sleep 0.1; done
[ -n "$adm" ] || { fail "no 'admin on' line"; cat "$dir/n1.log"; exit 1; }
ctl() { "$bin" ctl --admin "$adm" "$@"; }
line_up() { [ "$(field 1 peers)" = 2 ] && [ "$(field 1 confirmed_edges)" = 2 ]; }
wait_for 30 line_up || fail "the line 0 - 1 - 2 did not form"
id() { grep -m1 '^node ' "$dir/n$1.log" | cut -d' ' -f2; }
id0=$(id 0) id2=$(id 2) id3=$(id 3)

# map: both edges of a line are bridges
"$bin" map --admin "$adm" --json >"$dir/map.json" || fail "map --json"
nb=$(grep -o '"bridge":true' "$dir/map.json" | wc -l)
[ "$nb" = 2 ] || fail "map --json: $nb bridges marked, want 2: $(cat "$dir/map.json")"
"$bin" map --admin "$adm" --dot >"$dir/map.dot" || fail "map --dot"
dot -Tsvg "$dir/map.dot" >/dev/null || fail "dot could not read meshmap map --dot"
nr=$(grep -c 'color=red' "$dir/map.dot")
[ "$nr" = 2 ] || fail "map --dot: $nr red edges, want 2"
"$bin" map --admin "$adm" --dot --json >/dev/null 2>&1; r=$?
[ "$r" = 2 ] || fail "map --dot --json: exit $r, want 2"
ctl metrics >"$dir/metrics.txt" || fail "metrics"
promtool check metrics <"$dir/metrics.txt" || fail "promtool: the metrics do not pass"
for m in 'meshmap_rtt_seconds_bucket{le="+Inf"}' 'meshmap_misbehaviour_total{cause="bad signature"} 0' \
    'meshmap_mailbox_depth{actor="node"' 'meshmap_worker_messages_total{worker="0"}' \
    'meshmap_bans_active 1' 'meshmap_connections{dir="in"} 1' \
    'meshmap_connections{dir="out"} 1' 'meshmap_connections_by_state{state="ready"} 2' \
    'meshmap_map_phantom_claims 0'; do
  grep -qF "$m" "$dir/metrics.txt" || fail "metrics: no '$m'"
done
num() { sed -n "s/^$1 \([0-9]*\)$/\1/p" "$dir/metrics.txt"; }
# the budget: 50 MB (x8 in sanitizer builds, whose shadow memory is in the RSS)
b=$(num meshmap_memory_budget_bytes)
[ "$b" = 50000000 ] || [ "$b" = 400000000 ] || fail "metrics: memory budget '$b'"
[ "$(num 'meshmap_frames_by_type_total{dir="in",type="hello"}')" = 2 ] || fail "metrics: hellos in != 2"
[ "$(num 'meshmap_frames_by_type_total{dir="out",type="hello"}')" = 2 ] || fail "metrics: hellos out != 2"
ev=$(num 'meshmap_frames_by_type_total{dir="in",type="event"}')
[ -n "$ev" ] && [ "$ev" -ge 2 ] || fail "metrics: events in by type: '$ev'"
v=$(num meshmap_signature_verifications_total)
[ -n "$v" ] && [ "$v" -ge 2 ] && [ "$v" -le "$ev" ] || fail "metrics: verifications '$v' (events in $ev)"
echo "ok: map (JSON and DOT, bridges marked), metrics (promtool, by type, by state)"

# protect / unprotect by prefix; unknown and ambiguous names refused
ctl protect "${id2:0:12}" >/dev/null || fail "protect ${id2:0:12}"
out=$(ctl protected) && [ "$out" = "$id2" ] || fail "protected: '$out', want $id2"
out=$(ctl peers) && grep -Eq "^${id2:0:16} .* yes$" <<<"$out" || fail "peers: $id2 not shown protected: $out"
ctl protect 0123456789abcdef01 >/dev/null 2>"$dir/err"; r=$?
if [ "$r" != 1 ] || ! grep -q 'no such peer' "$dir/err"; then
  # (a 1 in 2^72 chance that a real id starts so)
  fail "protect of an unknown prefix: exit $r, $(cat "$dir/err")"
fi
ctl protect abc >/dev/null 2>&1; r=$?
[ "$r" = 1 ] || fail "protect with 3 digits: exit $r"
ctl unprotect "$id2" >/dev/null || fail "unprotect"
out=$(ctl protected) && [ -z "$out" ] || fail "protected after unprotect: '$out'"
ctl unprotect "$id2" >/dev/null 2>&1; r=$?
[ "$r" = 1 ] || fail "unprotect of a peer not protected: exit $r"
echo "ok: protect, protected, unprotect (by prefix), errors"

# disconnect: the link closes ("no slot" to the peer); node 2, whose
# bootstrap node 1 is, waits (60 s +-25%) before it dials again, as error
# 14 asks. connect: a dial to node 3 on command.
closes() { ctl metrics | sed -n 's/^meshmap_connection_closes_total{reason="no slot"} \([0-9]*\)$/\1/p'; }
ctl disconnect "${id2:0:16}" >/dev/null || fail "disconnect"
wait_for 20 eval '[ "$(closes)" -ge 1 ]' || fail "disconnect: no link closed"
ctl disconnect "$id3" >/dev/null 2>"$dir/err"; r=$?
[ "$r" = 1 ] && grep -q 'not linked' "$dir/err" || fail "disconnect of a peer not linked: exit $r"
ctl connect "127.0.0.1:${ports[3]}" >/dev/null || fail "connect"
with3() { ctl peers | grep -q "^${id3:0:16} "; }
wait_for 30 with3 || fail "connect: node 3 is not in the peer table"
# (the status line comes once a second: the one after the link counts it)
wait_for 10 eval '[ "$(field 1 peers)" = 2 ]' ||
  fail "connect: node 1 has $(field 1 peers) links, want 2 (nodes 0 and 3)"
ctl peers | grep -q "^${id2:0:16} " && fail "disconnect: node 2 dialled back at once"
ctl connect nowhere >/dev/null 2>&1; r=$?
[ "$r" = 1 ] || fail "connect nowhere: exit $r"
echo "ok: disconnect, connect"

# SIGHUP: the file changed
sed -i -e 's|^ban = 10.99.0.0/16|ban = 10.98.0.0/16|' -e "s|^listen = .*|listen = 127.0.0.1:1|" "$conf"
echo "protect = $id0" >>"$conf"
echo "max-degree = 20" >>"$conf"
echo "recv-rate-kb = 500" >>"$conf"
kill -HUP "${pids[1]}"
wait_for 10 grep -q '^reloaded ' "$dir/n1.log" || fail "no 'reloaded' line"
for want in 'reload: listen cannot change at run time' 'reload: ban on 10.99.0.0/16 lifted' \
    'reload: 10.98.0.0/16 banned' "reload: $id0 protected" 'reload: limits and timers: degree 12, max-degree 20' \
    'reload: bandwidth: receive 500 kB/s, send 0 kB/s'; do
  grep -qF "$want" "$dir/n1.log" || fail "reload: no '$want'"
done
out=$(ctl bans) && grep -q '^10.98.0.0/16 ' <<<"$out" && ! grep -q '^10.99.0.0/16 ' <<<"$out" ||
  fail "bans after reload: $out"
out=$(ctl protected) && [ "$out" = "$id0" ] || fail "protected after reload: '$out'"
ctl metrics >"$dir/metrics2.txt"
grep -q '^meshmap_bandwidth_limit_bytes_per_second{dir="in"} 500000$' "$dir/metrics2.txt" ||
  fail "metrics: the reloaded bandwidth limit is not shown"
grep -q '^meshmap_limit{name="max_degree"} 20$' "$dir/metrics2.txt" ||
  fail "metrics: the reloaded max-degree is not shown"
# a broken file: nothing changes
echo "max-degree = 99" >>"$conf"
kill -HUP "${pids[1]}"
wait_for 10 grep -q "^reload failed: $conf:[0-9]*: --max-degree: links in \[1, 32\]" "$dir/n1.log" ||
  fail "a broken file: no 'reload failed' naming the line"
out=$(ctl bans) && grep -q '^10.98.0.0/16 ' <<<"$out" || fail "bans changed by a broken file: $out"
sed -i '$d' "$conf"
# log rotation: move the file, SIGHUP, a new file
mv "$dir/n1.json" "$dir/n1.json.1"
kill -HUP "${pids[1]}"
wait_for 10 test -s "$dir/n1.json" || fail "the log file was not reopened after SIGHUP"
python3 -c '
import json, sys
n = 0
for path in sys.argv[1:]:
    for line in open(path):
        o = json.loads(line)
        assert set(o) >= {"ts", "level", "msg"}, o
        n += 1
assert n >= 3, n
' "$dir/n1.json.1" "$dir/n1.json" || fail "the JSON log lines do not parse"
echo "ok: SIGHUP reload (bans, protect, limits; fixed settings named; a broken file ignored; log reopened)"

# SIGTERM: goodbye and snapshot
kill -TERM "${pids[1]}"; wait "${pids[1]}"; r=$?; pids[1]=0
[ "$r" = 0 ] || fail "node 1 exit $r on SIGTERM"
grep -Eq '^goodbye: ([0-9]+) of \1 links closed' "$dir/n1.log" || fail "no goodbye line: $(grep goodbye "$dir/n1.log")"
grep -q '^snapshot: .*n1.snap, saved [1-9]' "$dir/n1.log" && test -s "$dir/n1.snap" || fail "no snapshot saved"
grep -q '"node: goodbye sent to [1-9]' "$dir/n1.json" || fail "no goodbye in the log"
zero() { [ "$(field 0 peers)" = 0 ]; }
wait_for 10 zero || fail "node 0 still has a link to the stopped node"
echo "ok: graceful stop (goodbye to every peer, snapshot saved)"

for i in 0 2 3; do kill -TERM "${pids[$i]}"; wait "${pids[$i]}" || fail "node $i did not stop cleanly"; pids[$i]=0; done
sanitizer_check
if grep -q 'AddressSanitizer\|ThreadSanitizer\|runtime error' "$dir"/n1.json*; then fail "a sanitizer reported (n1.json)"; fi
[ "$fails" -eq 0 ] && echo "operate test: ok"
[ "$fails" -eq 0 ]
