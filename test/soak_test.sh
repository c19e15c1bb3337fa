#!/usr/bin/env bash
# Scenario 11, the soak (a documented command, not in CI: it runs for as
# long as you give it). On loopback, no root:
#   node T, long-lived, under watch;
#   6 honest nodes linked to T and to each other, churning: every 15 s one
#   of them is killed (SIGKILL or SIGTERM, in turn) and restarted 5 s later
#   with the same key and port;
#   a mixed flood against T, over and over: broadcasts, direct messages,
#   events and duplicates at 2,000 a second, beside garbage connections,
#   4 GB frame headers, stalled handshakes and forged signatures
#   (meshmap flood), and a probe that sends valid frames of the largest
#   size for 20 s of every minute.
# Every 10 s it samples T's RSS, open file descriptors, links and map size
# (soak.csv in the kept directory). Checks at the end: T never died, every
# churned node stopped cleanly on SIGTERM, and no leak: after the first
# quarter (warm-up), the median RSS of the last quarter is within 10% (or
# 2 MB) of the second quarter's, and the most file descriptors of the last
# quarter within 16 of the second quarter's.
#   soak_test.sh MESHMAP_BINARY [SECONDS]      (default 3600)
# KEEP=1 keeps the logs and soak.csv.
set -u
bin=$1 secs=${2:-3600}
. "$(dirname "$0")/proc_lib.sh"
proc_init 7
for i in $(seq 0 6); do
  "$bin" keygen --difficulty 10 --out "$dir/k$i" >/dev/null 2>&1 || { echo "keygen failed"; exit 1; }
done
common=(--difficulty 10 --network soak --workers 2 --status 5 --max-conns-per-ip 512
  --max-pending-per-ip 64 --idle-timeout 6 --confirm-timeout 10 --unreachable-timeout 20)
# T's admin port
read -r aport < <(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
start() { # start I: node i on its port; 1-6 bootstrap to T and to node 1
  local i=$1 extra=()
  if [ "$i" = 0 ]; then
    extra=(--admin "127.0.0.1:$aport" --select-ms 0 --degree 24 --max-degree 32)
  else
    extra=(--bootstrap "127.0.0.1:${ports[0]}" --degree 4 --max-degree 8)
    [ "$i" != 1 ] && extra+=(--bootstrap "127.0.0.1:${ports[1]}")
  fi
  "$bin" node --key "$dir/k$i" --listen "127.0.0.1:${ports[$i]}" "${common[@]}" "${extra[@]}" \
    >>"$dir/n$i.log" 2>&1 &
  pids[$i]=$!
}
for i in $(seq 0 6); do start "$i"; sleep 0.2; done
tpid=${pids[0]}
t_end=$(($(date +%s) + secs))
target=(--target "127.0.0.1:${ports[0]}" --difficulty 10 --network soak)

# the flood, over and over until the end
(
  while [ "$(date +%s)" -lt "$t_end" ]; do
    left=$((t_end - $(date +%s))); [ "$left" -gt 60 ] && left=60; [ "$left" -ge 5 ] || break
    "$bin" flood "${target[@]}" --json --sources 2 --sinks 4 --rate 2000 --count $((2000 * left)) \
      --duration "$left" --mix bcast=4,direct=2,event=1,dup=1 \
      --garbage 20 --oversize 2 --halfopen 20 --forged 2 >>"$dir/flood.json" 2>>"$dir/flood.err"
    echo "flood exit $?" >>"$dir/flood.err"
  done
) &
fpid=$!
# the junk probe: 20 s of every minute
(
  while [ "$(date +%s)" -lt $((t_end - 25)) ]; do
    "$bin" probe "${target[@]}" --kind junk --duration 20 --json >>"$dir/junk.json" 2>>"$dir/junk.err"
    sleep 40
  done
) &
jpid=$!

echo "t_s,rss_kb,fds,links,map_records" >"$dir/soak.csv"
t0=$(date +%s) k=0 sig=KILL bad_stops=0 churns=0 next_churn=$((t0 + 15))
while [ "$(date +%s)" -lt "$t_end" ]; do
  now=$(date +%s)
  if ! kill -0 "$tpid" 2>/dev/null; then fail "T died at $((now - t0)) s"; tail -20 "$dir/n0.log"; break; fi
  rss=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB$/\1/p' "/proc/$tpid/status")
  fds=$(ls "/proc/$tpid/fd" | wc -l)
  echo "$((now - t0)),$rss,$fds,$(field 0 peers),$(field 0 map_records)" >>"$dir/soak.csv"
  if [ "$now" -ge "$next_churn" ]; then
    i=$((1 + k % 6)); k=$((k + 1))
    kill -"$sig" "${pids[$i]}" 2>/dev/null
    wait "${pids[$i]}" 2>/dev/null; rc=$?
    # SIGTERM must stop cleanly (0); SIGKILL gives 137
    [ "$sig" = TERM ] && [ "$rc" != 0 ] && { bad_stops=$((bad_stops + 1)); echo "node $i: exit $rc on SIGTERM"; }
    [ "$sig" = KILL ] && sig=TERM || sig=KILL
    churns=$((churns + 1))
    sleep 5
    start "$i"
    next_churn=$((now + 15))
  fi
  sleep 10
done
kill "$fpid" "$jpid" 2>/dev/null; wait "$fpid" "$jpid" 2>/dev/null
pkill -f "$bin flood ${target[*]}" 2>/dev/null
echo "figure soak_seconds $(( $(date +%s) - t0 )), churns $churns, SIGTERM stops not clean $bad_stops"
[ "$bad_stops" = 0 ] || fail "$bad_stops churned nodes did not stop cleanly on SIGTERM"
kill -0 "$tpid" 2>/dev/null || fail "T is not running at the end"
python3 - "$dir/soak.csv" "$dir/flood.json" "$dir/junk.json" <<'PY' || fail "leak or flood check"
import csv, json, statistics, sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if r["rss_kb"]]
n = len(rows)
assert n >= 8, "too few samples (%d): run longer" % n
q = n // 4
mid, last = rows[q:2 * q], rows[3 * q:]
med = lambda rs, k: statistics.median(int(r[k]) for r in rs)
top = lambda rs, k: max(int(r[k]) for r in rs)
r2, r4 = med(mid, "rss_kb"), med(last, "rss_kb")
f2, f4 = top(mid, "fds"), top(last, "fds")
print("figure soak_samples %d; T's RSS median %d kB (2nd quarter) -> %d kB (last), max %d kB; "
      "fds max %d -> %d" % (n, r2, r4, top(rows, "rss_kb"), f2, f4))
sent = deliv = exp = runs = 0
hostile = {}
for line in open(sys.argv[2]):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    runs += 1
    sent += r.get("sent", 0); deliv += r.get("delivered", 0); exp += r.get("expected", 0)
    for k, v in r.get("hostile", {}).items():
        a, c = hostile.get(k, (0, 0))
        hostile[k] = (a + v["attempts"], c + v["closed_by_target"])
print("figure soak_flood %d runs: %d messages sent, %d of %d deliveries; hostile closed by T: %s"
      % (runs, sent, deliv, exp, ", ".join("%s %d/%d" % (k, c, a) for k, (a, c) in sorted(hostile.items()))))
junk = [json.loads(l) for l in open(sys.argv[3]) if l.startswith("{")]
print("figure soak_junk %d probes, %d frames of 49 KB, %d closed by T"
      % (len(junk), sum(j["frames"] for j in junk), sum(1 for j in junk if j["closed"])))
assert runs > 0 and sent > 0, "the flood never ran"
for k, (a, c) in hostile.items():
    assert a == c, "hostile %s: %d of %d closed by T" % (k, c, a)
assert r4 <= max(r2 * 1.10, r2 + 2048), "RSS grew: %d -> %d kB" % (r2, r4)
assert f4 <= f2 + 16, "file descriptors grew: %d -> %d" % (f2, f4)
PY
for i in "${!pids[@]}"; do
  [ "${pids[$i]}" -gt 0 ] || continue
  kill -TERM "${pids[$i]}"; wait "${pids[$i]}" || fail "node $i did not stop cleanly (exit $?)"
  pids[$i]=0
done
sanitizer_check
[ "$fails" = 0 ] && echo "soak: ok" || { echo "soak: $fails failures"; exit 1; }
