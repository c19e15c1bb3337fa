# Shared by the macro benchmarks (sourced): a `meshmap node` process as the
# target, its CPU seconds, and meshmap flood's JSON fields.
#   bench_init: $bin, $dir (removed at exit), a key in $dir/target.key
#   target_start ARGS...: starts the node (difficulty 8, network "bench",
#     127.0.0.1, an admin port); sets $tpid, $tport, $tadm
#   target_stop; cpu_s PID; jf FILE KEY.PATH (a number from a JSON file)
#   machine_line: the machine, for the tables
bench_init() {
  cd "$(dirname "$0")/.."
  [ -x build/release/meshmap ] || bash scripts/build.sh release >/dev/null || exit 1
  bin=build/release/meshmap
  dir=$(mktemp -d)
  tpid=
  trap '[ -n "$tpid" ] && kill "$tpid" 2>/dev/null; rm -rf "$dir"' EXIT
  "$bin" keygen --difficulty 8 --out "$dir/target.key" >/dev/null 2>&1
}
target_start() {
  MESHMAP_LOG=error "$bin" node --key "$dir/target.key" --difficulty 8 --network bench \
    --listen 127.0.0.1:0 --admin 127.0.0.1:0 --status 0 --gossip-eager 0 "$@" >"$dir/target.log" 2>&1 &
  tpid=$!
  tport= tadm=
  for _ in $(seq 100); do
    tport=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$dir/target.log")
    tadm=$(sed -n 's/^admin on \(.*\)$/\1/p' "$dir/target.log")
    [ -n "$tport" ] && [ -n "$tadm" ] && return 0
    sleep 0.1
  done
  echo "the target did not start:"; cat "$dir/target.log"; exit 1
}
target_stop() { kill "$tpid" 2>/dev/null; wait "$tpid" 2>/dev/null; tpid=; }
cpu_s() { awk '{print ($14 + $15) / '"$(getconf CLK_TCK)"'}' "/proc/$1/stat"; }
rss_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
jf() { python3 -c 'import json,sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): v = v[k]
print(v)' "$1" "$2"; }
metric() { "$bin" ctl --admin "$tadm" metrics | sed -n "s/^$1 \([0-9.e+]*\)$/\1/p"; }
machine_line() {
  echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -sr); $(date -u +%Y-%m-%d)."
}
