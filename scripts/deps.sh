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
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
