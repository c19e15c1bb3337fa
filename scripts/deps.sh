#!/usr/bin/env bash
# Install the Debian 12 packages meshmap needs, only those that are missing.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config   # toolchain (gcc brings libasan/libtsan)
  libck-dev                          # Concurrency Kit
  libssl-dev openssl                 # OpenSSL (and `openssl speed` for benches)
  libmbedtls-dev                     # mbedTLS
  libmsgpack-dev                     # msgpack-c
  libjemalloc-dev                    # jemalloc
  libbenchmark-dev                   # Google Benchmark
  python3                            # bench/report.py
  clang libclang-rt-14-dev           # libFuzzer (the fuzz configuration)
  graphviz                           # dot: the admin test parses the map's DOT
  gnuplot-nox                        # scripts/sim_report.sh: the simulator's plots
  prometheus                         # promtool: the admin test checks /metrics
  curl                               # the admin test's raw HTTP requests
  iproute2 nftables                  # the netns tests: namespaces, bridges, loss
  iptables libnetfilter-queue-dev    # netns_latency: NFQUEUE to test/netdelay
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#PKGS[@]} packages present"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
echo "deps: installing ${missing[*]}"
$SUDO apt-get update -qq
# The prometheus package brings promtool, and a server that it would start:
# keep it from starting while we install (policy-rc.d), and disable it.
prc=/usr/sbin/policy-rc.d made_prc=0
if [ ! -e "$prc" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$prc" >/dev/null && $SUDO chmod +x "$prc" && made_prc=1
fi
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
rc=$?
[ "$made_prc" -eq 1 ] && $SUDO rm -f "$prc"
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
exit $rc
