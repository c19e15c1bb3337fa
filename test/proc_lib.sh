# Shared by the tests that run real node processes on loopback (sourced).
#   proc_init N: a temporary directory $dir, N free loopback ports in
#   ${ports[@]}, ${pids[@]} all 0, a cleanup trap that kills what is left
#   (KEEP=1 keeps the directory). Node i logs to $dir/n$i.log.
# Then: fail MSG (counts), last I (node I's last status line),
#   field I NAME (a number from it), wait_for SECONDS COMMAND...,
#   sanitizer_check (fails if any log holds a sanitizer report),
#   maps_true I... (the listed nodes' maps are the truth, see below).
proc_init() {
  local n=$1
  dir=$(mktemp -d)
  fails=0
  pids=()
  for _ in $(seq "$n"); do pids+=(0); done
  trap proc_cleanup EXIT
  # free ports, picked by binding port 0 (python3 is a dependency)
  read -r -a ports < <(python3 -c '
import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$n")
}
proc_cleanup() {
  for p in "${pids[@]}"; do [ "$p" -gt 0 ] && kill -KILL "$p" 2>/dev/null; done
  wait 2>/dev/null
  if [ -n "${KEEP:-}" ]; then echo "kept $dir"; else rm -rf "$dir"; fi
}
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
last() { grep '^status ' "$dir/n$1.log" | tail -n 1; }
field() { sed -n "s/.* $2=\(-\{0,1\}[0-9]*\).*/\1/p" <<<"$(last "$1")"; }
wait_for() {
  local t=$1; shift
  for _ in $(seq $((t * 10))); do "$@" && return 0; sleep 0.1; done
  return 1
}
# crash_report LOG BINARY: a node's crash report (cmd/node.c writes the
# signal and its stack to stderr), its frames in the binary named by
# addr2line where there is one. Prints nothing if the log holds none.
crash_report() {
  local log=$1 b=$2 rep offs
  rep=$(sed -n '/^meshmap: fatal signal/,/^meshmap: end of stack/p' "$log" 2>/dev/null)
  [ -n "$rep" ] || return 0
  head -70 <<<"$rep"
  offs=$(sed -n 's/^[^ ]*meshmap(+\(0x[0-9a-f]*\)).*/\1/p' <<<"$rep")
  if [ -n "$offs" ] && command -v addr2line >/dev/null; then
    echo "the frames in $b:"
    # shellcheck disable=SC2086
    addr2line -f -i -p -e "$b" $offs
  fi
}
sanitizer_check() {
  if grep -q 'AddressSanitizer\|ThreadSanitizer\|runtime error' "$dir"/n*.log; then
    fail "a sanitizer reported:"; grep -h -A5 'Sanitizer\|runtime error' "$dir"/n*.log | head -30
  fi
}
# The listed nodes' maps (their last status lines): N records, one
# component, all the same confirmed edges, which are exactly the links the
# nodes hold (edge digests).
maps_true() {
  local n=$# sum=0 digest= i
  for i in "$@"; do
    [ "$(field "$i" map_records)" = "$n" ] && [ "$(field "$i" components)" = 1 ] || return 1
    sum=$((sum + $(field "$i" links_digest)))
    if [ -z "$digest" ]; then digest=$(field "$i" map_digest)
    elif [ "$digest" != "$(field "$i" map_digest)" ]; then return 1; fi
  done
  [ $((2 * digest)) = "$sum" ]
}
