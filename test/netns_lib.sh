# The multi-host harness (sourced): real node processes, each in a network
# namespace of its own, on one emulated LAN. Needs root, iproute2, nft
# (nftables) for packet loss, iptables and test/netdelay for latency.
# Nothing leaves the namespaces: the LAN is a bridge inside a namespace of
# its own, not linked to the host's network.
#
#   ns_init N     namespaces mmt<PID>-0 .. N-1 (node i: 10.<77+R>.0.<i+1>/8 on
#                 eth0, R = ${ns_rng[i]:-0}: set ns_rng before ns_init to put
#                 nodes in other /16 ranges; and its own loopback) and a hub namespace
#                 mmt<PID>-hub holding bridges br0 (the LAN) and br1 (the far
#                 side of a partition), port v<i> for node i. Also what
#                 proc_lib.sh gives ($dir, pids, fail, last, field,
#                 wait_for, sanitizer_check). Exits 77 (ctest: skipped, not
#                 passed) when this machine cannot make namespaces.
#   ns_ip I       node i's address
#   ns_exec I CMD...   run CMD in node i's namespace
#   ns_down I / ns_up I   node i's cable pulled / plugged back (its port on
#                 the bridge down: what it sends and what is sent to it is
#                 lost without a word, no reset, no ICMP)
#   ns_side I B   node i's port moved to bridge B (0 or 1): nodes on
#                 different bridges cannot reach each other, silently
#   ns_loss I PCT packets arriving at node i dropped at random, PCT percent
#                 (nft numgen); 0 removes the rule
#   ns_delay I MS [JITTER]   packets node i sends on its cable held MS ms,
#                 +- JITTER ms (uniform), in arrival order: an iptables
#                 NFQUEUE rule and test/netdelay in its namespace ($ns_netdelay
#                 must name the binary; this kernel has no netem); 0 removes it
# The EXIT trap kills every process left and deletes every namespace, also
# when the test fails or is interrupted; a later run deletes namespaces left
# by a run that was killed (SIGKILL leaves no trap).
. "$(dirname "${BASH_SOURCE[0]}")/proc_lib.sh"

ns_pfx=mmt$$
ns_count=0
ns_rng=()

ns_skip() { echo "SKIP: $*"; exit 77; }

ns_init() {
  local n=$1 i
  [ "$(id -u)" = 0 ] || ns_skip "network namespaces need root"
  command -v ip >/dev/null || ns_skip "no ip (iproute2)"
  # namespaces of runs that died without cleaning up
  for i in $(ip netns list 2>/dev/null | sed -n 's/^\(mmt[0-9]*\)-.*/\1/p' | sort -u); do
    kill -0 "${i#mmt}" 2>/dev/null && continue
    ip netns list | sed -n "s/^\($i-[^ ]*\).*/\1/p" | while read -r ns; do
      ip netns pids "$ns" | xargs -r kill -KILL 2>/dev/null
      ip netns del "$ns"
    done
  done
  proc_init "$n"
  trap ns_cleanup EXIT
  trap 'exit 1' INT TERM
  ip netns add "$ns_pfx-hub" 2>/dev/null || ns_skip "cannot create a network namespace"
  ns_count=$n
  local hub=(ip -n "$ns_pfx-hub")
  "${hub[@]}" link set lo up
  for b in br0 br1; do
    "${hub[@]}" link add "$b" type bridge || { echo "cannot create a bridge"; exit 1; }
    "${hub[@]}" link set "$b" up
  done
  for i in $(seq 0 $((n - 1))); do
    ip netns add "$ns_pfx-$i" || { echo "cannot create namespace $ns_pfx-$i"; exit 1; }
    "${hub[@]}" link add "v$i" type veth peer name eth0 netns "$ns_pfx-$i" ||
      { echo "cannot create node $i's cable"; exit 1; }
    "${hub[@]}" link set "v$i" master br0 up
    ip -n "$ns_pfx-$i" link set lo up
    ip -n "$ns_pfx-$i" addr add "$(ns_ip "$i")/8" dev eth0
    ip -n "$ns_pfx-$i" link set eth0 up
  done
}
ns_cleanup() {
  local i
  for p in "${pids[@]}"; do [ "$p" -gt 0 ] && kill -KILL "$p" 2>/dev/null; done
  # and whatever else still runs in a namespace (a namespace outlives its
  # deletion while a process is in it)
  for i in $(seq 0 $((ns_count - 1))); do
    ip netns pids "$ns_pfx-$i" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
  done
  wait 2>/dev/null
  for i in $(seq 0 $((ns_count - 1))); do ip netns del "$ns_pfx-$i" 2>/dev/null; done
  ip netns del "$ns_pfx-hub" 2>/dev/null
  if [ -n "${KEEP:-}" ]; then echo "kept $dir"; else rm -rf "$dir"; fi
}
ns_ip() { echo "10.$((77 + ${ns_rng[$1]:-0})).$(($1 / 250)).$(($1 % 250 + 1))"; }
ns_exec() { local i=$1; shift; ip netns exec "$ns_pfx-$i" "$@"; }
ns_down() { ip -n "$ns_pfx-hub" link set "v$1" down; }
ns_up() { ip -n "$ns_pfx-hub" link set "v$1" up; }
ns_side() { ip -n "$ns_pfx-hub" link set "v$1" master "br$2"; }
ns_netdelay=${ns_netdelay:-}
ns_delay_pid=()
ns_delay() {
  local i=$1 ms=$2 jit=${3:-0} t
  ns_exec "$i" iptables -t mangle -D OUTPUT -o eth0 -j NFQUEUE --queue-num 0 --queue-bypass 2>/dev/null
  if [ -n "${ns_delay_pid[$i]:-}" ]; then
    kill -TERM "${ns_delay_pid[$i]}" 2>/dev/null; wait "${ns_delay_pid[$i]}" 2>/dev/null
    ns_delay_pid[$i]=""
  fi
  [ "$ms" -gt 0 ] || return 0
  [ -n "$ns_netdelay" ] && [ -x "$ns_netdelay" ] || { echo "no netdelay binary (\$ns_netdelay: '$ns_netdelay')"; return 1; }
  command -v iptables >/dev/null || { echo "no iptables: cannot queue packets to netdelay"; return 1; }
  ip netns exec "$ns_pfx-$i" "$ns_netdelay" --queue 0 --delay "$ms" --jitter "$jit" \
    --seed "$((i + 1))" >"$dir/delay$i.log" 2>&1 &
  ns_delay_pid[$i]=$!
  for t in $(seq 50); do grep -q ready "$dir/delay$i.log" && break; sleep 0.1; done
  grep -q ready "$dir/delay$i.log" || { echo "netdelay in node $i's namespace did not start:"; cat "$dir/delay$i.log"; return 1; }
  # --queue-bypass: with netdelay gone, packets pass rather than stop
  ns_exec "$i" iptables -t mangle -A OUTPUT -o eth0 -j NFQUEUE --queue-num 0 --queue-bypass
}
ns_loss() {
  local i=$1 pct=$2
  ns_exec "$i" nft delete table inet mmloss 2>/dev/null
  [ "$pct" -gt 0 ] || return 0
  command -v nft >/dev/null || { echo "no nft (nftables): cannot drop packets"; return 1; }
  ns_exec "$i" nft -f - <<EOF
table inet mmloss {
  chain in {
    type filter hook input priority 0; policy accept;
    iifname "eth0" numgen random mod 100 < $pct drop
  }
}
EOF
}
