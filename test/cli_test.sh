#!/usr/bin/env bash
# Black-box tests of the meshmap command line: exit codes and messages.
set -u
bin=$1
fails=0
expect() { # expect <want-rc> <regex> <args...>
  local want=$1 re=$2; shift 2
  local out rc
  out=$("$bin" "$@" 2>&1); rc=$?
  if [ "$rc" -ne "$want" ] || ! grep -Eq -- "$re" <<<"$out"; then
    echo "FAIL: meshmap $* -> rc=$rc (want $want), output:"; echo "$out" | sed 's/^/  | /'
    fails=$((fails + 1))
  else
    echo "ok: meshmap $*"
  fi
}
expect 0 '^meshmap [0-9]+\.[0-9]+\.[0-9]+$' --version
expect 0 'usage: meshmap <command>' --help
expect 2 'usage: meshmap <command>'
expect 2 "unknown command 'nosuch'" nosuch
expect 2 'unrecognized option' demo --bogus
expect 2 "--actors: '0' is not a whole number in \[2, 1000000\]" demo --actors 0
expect 2 "--laps: 'x' is not a whole number" demo --laps x
expect 2 "unexpected argument 'extra'" demo extra
expect 0 'example: meshmap demo' demo --help
# The demo checks its own counts and exits 1 if any hop or timer is missing.
expect 0 'hops +([0-9]+) \(expected \1\)' demo --workers 2 --actors 64 --laps 50
# keygen: prints the id, writes 0600, never replaces silently.
tmp=$(mktemp -d)
expect 0 '^[0-9a-f]{64}$' keygen --difficulty 8 --out "$tmp/k"
mode=$(stat -c %a "$tmp/k")
if [ "$mode" != 600 ]; then echo "FAIL: key file mode $mode, want 600"; fails=$((fails + 1)); fi
expect 1 'File exists \(use --force to replace it\)' keygen --difficulty 8 --out "$tmp/k"
expect 0 '^[0-9a-f]{64}$' keygen --difficulty 8 --out "$tmp/k" --force
expect 2 "--difficulty: '41' is not a whole number in \[0, 40\]" keygen --difficulty 41
expect 1 'No such file or directory' keygen --difficulty 1 --out "$tmp/no/such/dir/k"
# node: argument and key errors are named and exit non-zero before any socket opens.
expect 2 '--key FILE is required' node
expect 2 "--listen: 'nonsense' is not HOST:PORT" node --key "$tmp/k" --listen nonsense
expect 2 "--bootstrap: 'bad:xx' is not a reachable HOST:PORT" node --key "$tmp/k" --difficulty 8 --bootstrap bad:xx
expect 1 'proof of work has [0-9]+ bits, the network requires 30' node --key "$tmp/k" --difficulty 30
expect 1 'No such file or directory' node --key "$tmp/nokey"
expect 2 "--degree: links in \[1, 32\] \(got '33'\)" node --key "$tmp/k" --degree 33
expect 2 "--max-degree \(4\) is below --degree \(12\)" node --key "$tmp/k" --max-degree 4
expect 2 "--select-ms: milliseconds in \[0, 3600000\]" node --key "$tmp/k" --select-ms -1
printf 'key = %s\ndegree = 8\nmax-degree = 6\n' "$tmp/k" >"$tmp/bad4.conf"
expect 2 "--max-degree \(6\) is below --degree \(8\)" node --config "$tmp/bad4.conf"
printf 'key = %s\nrelay = maybe\n' "$tmp/k" >"$tmp/bad5.conf"
expect 2 "bad5.conf:2: relay: yes or no \(got 'maybe'\)" node --config "$tmp/bad5.conf"
printf 'key = %s\nyoung-inbound = often\n' "$tmp/k" >"$tmp/bad7.conf"
expect 2 "bad7.conf:2: young-inbound: yes or no \(got 'often'\)" node --config "$tmp/bad7.conf"
expect 1 "relay mode: max_degree 16 \+ max_inbound 20 above the map's claim limit" node --key "$tmp/k" --difficulty 8 --relay --max-inbound 20
expect 2 "--advertise: 'nowhere' is not a HOST:PORT" node --key "$tmp/k" --difficulty 8 --advertise nowhere
expect 2 "--log-format: text or json \(got 'xml'\)" node --key "$tmp/k" --log-format xml
expect 2 "--log-level: error, warn, info or debug \(got 'loud'\)" node --key "$tmp/k" --log-level loud
expect 2 "--protect: a peer id, 64 hex digits \(got 'abc'\)" node --key "$tmp/k" --protect abc
expect 2 "--ban: a peer id \(64 hex digits\), an IP address or a CIDR range \(got '10.0.0.0/33'\)" node --key "$tmp/k" --ban 10.0.0.0/33
expect 2 "--shutdown-timeout: seconds in \[0, 600\] \(got '601'\)" node --key "$tmp/k" --shutdown-timeout 601
expect 2 "--mem-budget: megabytes in \[8, 1048576\] \(got '1'\)" node --key "$tmp/k" --mem-budget 1
expect 2 "unrecognized option '--bogus'" node --key "$tmp/k" --bogus
expect 2 "--listen: a value is needed" node --key "$tmp/k" --listen
expect 2 "unexpected argument 'extra'" node --key "$tmp/k" extra
expect 1 "--log-file /nonexistent/dir/x.log: No such file or directory" node --key "$tmp/k" --difficulty 8 --log-file /nonexistent/dir/x.log
expect 0 'examples:' node --help
expect 0 'examples:' ctl --help
expect 0 'meshmap map --dot \| dot -Tpng' map --help
expect 2 '--dot or --json, not both' map --dot --json
expect 1 'cannot reach 127.0.0.1:1' map --admin 127.0.0.1:1
expect 2 'protect PEER' ctl protect
expect 2 'connect HOST:PORT' ctl connect a b
# --check-config: the settings as they will run, the key checked, nothing started
printf 'key = %s\ndifficulty = 8\nbootstrap = 127.0.0.1:9\nban = 10.1.0.0/16\nrelay = yes\n' "$tmp/k" >"$tmp/check.conf"
expect 0 '^configuration ok: .*check.conf' node --config "$tmp/check.conf" --check-config
expect 0 'degree 12, max-degree 16, relay yes, max-inbound 16, young-inbound no' node --config "$tmp/check.conf" --check-config
expect 0 'young-inbound yes' node --config "$tmp/check.conf" --young-inbound --check-config
expect 0 'bootstrap 127.0.0.1:9' node --config "$tmp/check.conf" --check-config
expect 1 'proof of work has [0-9]+ bits, the network requires 30' node --config "$tmp/check.conf" --difficulty 30 --check-config
printf 'key = %s\ncheck-config = 1\n' "$tmp/k" >"$tmp/bad6.conf"
expect 2 "bad6.conf:2: unknown setting 'check-config'" node --config "$tmp/bad6.conf"
# node --config: every bad line is named by file and line, exit 2.
printf 'key = %s\nttl = 0\n' "$tmp/k" >"$tmp/bad1.conf"
expect 2 "bad1.conf:2: --ttl: hops in \[1, 255\] \(got '0'\)" node --config "$tmp/bad1.conf"
printf '# comment\n\nkey = %s\nfoo = 1\n' "$tmp/k" >"$tmp/bad2.conf"
expect 2 "bad2.conf:4: unknown setting 'foo'" node --config "$tmp/bad2.conf"
printf 'key %s\n' "$tmp/k" >"$tmp/bad3.conf"
expect 2 "bad3.conf:1: expected 'name = value'" node --config "$tmp/bad3.conf"
expect 2 'none.conf: No such file or directory' node --config "$tmp/none.conf"
# A good config file runs the node; a flag after it overrides it.
printf 'key = %s   # the identity\ndifficulty = 8\nlisten = 127.0.0.1:1\nstatus = 1\n' "$tmp/k" >"$tmp/ok.conf"
"$bin" node --config "$tmp/ok.conf" --listen 127.0.0.1:0 >"$tmp/cnode.log" 2>&1 &
npid=$!
for _ in $(seq 100); do grep -q '^status ' "$tmp/cnode.log" && break; sleep 0.1; done
kill -TERM "$npid"; wait "$npid"; nrc=$?
if [ "$nrc" -ne 0 ] || ! grep -q '^listening on 127\.0\.0\.1:' "$tmp/cnode.log" ||
   grep -q '^listening on 127\.0\.0\.1:1$' "$tmp/cnode.log" || ! grep -q '^status ' "$tmp/cnode.log"; then
  echo "FAIL: meshmap node --config -> rc=$nrc, log:"; sed 's/^/  | /' "$tmp/cnode.log"; fails=$((fails + 1))
else
  echo "ok: meshmap node --config runs, and a later flag overrides the file"
fi
# A node started with a good key listens, reports status, and exits 0 on SIGTERM.
"$bin" node --key "$tmp/k" --difficulty 8 --listen 127.0.0.1:0 --status 1 >"$tmp/node.log" 2>&1 &
npid=$!
for _ in $(seq 100); do grep -q '^status ' "$tmp/node.log" && break; sleep 0.1; done
kill -TERM "$npid"; wait "$npid"; nrc=$?
if [ "$nrc" -ne 0 ] || ! grep -Eq '^listening on 127\.0\.0\.1:[0-9]+$' "$tmp/node.log" || ! grep -q '^stopping (SIGTERM)' "$tmp/node.log"; then
  echo "FAIL: meshmap node under SIGTERM -> rc=$nrc, log:"; sed 's/^/  | /' "$tmp/node.log"; fails=$((fails + 1))
else
  echo "ok: meshmap node listens, reports status and stops on SIGTERM"
fi
rm -rf "$tmp"
[ "$fails" -eq 0 ]
