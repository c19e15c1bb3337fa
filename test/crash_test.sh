#!/usr/bin/env bash
# Crash safety of the node binary's snapshot (issue 10, scenario 10): a
# node holding 3,000 bans (a snapshot of about 200 KB) saves its snapshot
# every 20 ms while more bans are added through its admin interface, and
# is SIGKILLed at a random moment, KILLS times. Each
# restart must load a whole snapshot, never a torn one: the log says
# "snapshot FILE: A addresses, B bans" (never "not loaded"), B never
# falls below what the previous start loaded and never passes the bans
# added, and no temporary file piles up.
#   crash_test.sh MESHMAP_BINARY [KILLS]
set -u
bin=$1 kills=${2:-40}
. "$(dirname "$0")/proc_lib.sh"
proc_init 2
port=${ports[0]} admin=127.0.0.1:${ports[1]}
"$bin" keygen --difficulty 8 --out "$dir/k" >/dev/null 2>&1 || { echo "keygen failed"; exit 1; }
start() {
  "$bin" node --key "$dir/k" --difficulty 8 --network crash --listen "127.0.0.1:$port" \
    --admin "$admin" --status 0 --select-ms 0 --snapshot "$dir/s" --snapshot-ms 20 \
    --log-level info >"$dir/n0.log" 2>&1 &
  pids[0]=$!
  wait_for 20 "$bin" ctl --admin "$admin" health >/dev/null 2>&1 || { fail "the node did not come up: $(tail -3 "$dir/n0.log")"; return 1; }
}
ban() { # ban FROM TO: addresses 10.x.y.1 for FROM..TO-1, over one HTTP connection
  python3 - "${ports[1]}" "$1" "$2" <<'PY' || fail "bans $1..$2 refused"
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
for i in range(int(sys.argv[2]), int(sys.argv[3])):
    c.request("POST", "/ban?target=10.%d.%d.1&seconds=86400&reason=crash+test" % (i // 250, i % 250))
    r = c.getresponse()
    r.read()
    assert r.status == 200, (i, r.status)
PY
}
added=0 prev=0 torn=0 tmp_seen=0
start || exit 1
ban 0 3000; added=3000
for k in $(seq 1 "$kills"); do
  # more bans: each save differs from the last
  ban "$added" $((added + 5)); added=$((added + 5))
  sleep "0.0$((RANDOM % 10))$((RANDOM % 10))"
  kill -KILL "${pids[0]}"; wait "${pids[0]}" 2>/dev/null; pids[0]=0
  [ -e "$dir/s.tmp" ] && tmp_seen=$((tmp_seen + 1))
  start || break
  line=$(grep -m1 'snapshot ' "$dir/n0.log")
  case $line in
  *"not loaded"*) torn=$((torn + 1)); fail "kill $k: $line" ;;
  *" addresses, "*" bans"*)
    b=$(sed -n 's/.* addresses, \([0-9]*\) bans.*/\1/p' <<<"$line")
    [ "$b" -ge "$prev" ] && [ "$b" -le "$added" ] || fail "kill $k: $b bans loaded (the last start loaded $prev, $added added)"
    prev=$b ;;
  *) fail "kill $k: no snapshot line: $(head -3 "$dir/n0.log")" ;;
  esac
done
# what the kills left: the snapshot, at most one temporary file, the key
n=$(find "$dir" -maxdepth 1 -name 's*' | wc -l)
[ "$n" -le 2 ] || fail "$n snapshot files left: $(ls "$dir")"
echo "figure crash_kills $kills"
echo "figure crash_torn_loads $torn"
echo "figure crash_kills_with_a_temporary_file $tmp_seen"
echo "figure crash_bans_last_loaded $prev of $added added"
[ "$prev" -gt 0 ] || fail "no start ever loaded a ban: the saves did not happen"
kill -TERM "${pids[0]}"; wait "${pids[0]}" || fail "the node did not stop cleanly"
pids[0]=0
# A crash leaves the signal and the stack in the log (cmd/node.c), or, in
# a sanitizer build, the sanitizer's own report (a log of its own here, so
# that sanitizer_check below does not take it for a finding)
"$bin" node --key "$dir/k" --difficulty 8 --network crash --listen "127.0.0.1:$port" \
  --admin "$admin" --status 0 --select-ms 0 >"$dir/segv.log" 2>&1 &
pids[0]=$!
wait_for 20 "$bin" ctl --admin "$admin" health >/dev/null 2>&1 || fail "the node did not come up for the crash report"
kill -SEGV "${pids[0]}"; wait "${pids[0]}"; rc=$?; pids[0]=0
if grep -q 'Sanitizer' "$dir/segv.log"; then
  echo "the sanitizer reported the SIGSEGV (exit $rc)"
else
  [ "$rc" = 139 ] || fail "after SIGSEGV the node exited $rc, not 139 (the signal's default action)"
  # the handler's own frame is on every stack (the signal may land on
  # any thread); addr2line comes with the compiler (binutils)
  crash_report "$dir/segv.log" "$bin" | grep -q '^on_fatal at ' ||
    fail "no stack naming on_fatal in the crash report: $(tail -5 "$dir/segv.log")"
fi
sanitizer_check
[ "$fails" -eq 0 ] && echo "crash: ok"
[ "$fails" -eq 0 ]
