#!/usr/bin/env bash
# Install meshmap into a temporary prefix, build the example program with
# pkg-config alone (no path into the source or build tree), and run it.
#   install_test.sh BUILD_DIR EXAMPLE_SOURCE
set -u
build=$1 src=$2
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null || { echo "FAIL: install"; exit 1; }
pc=$(find "$prefix" -name meshmap.pc | head -n 1)
[ -n "$pc" ] || { echo "FAIL: no meshmap.pc installed"; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc")
# the prefix in the installed .pc is the configured one; point it here
flags=$(pkg-config --define-variable=prefix="$prefix" --cflags --libs meshmap) ||
  { echo "FAIL: pkg-config meshmap"; exit 1; }
echo "pkg-config: $flags"
cc -std=c17 -Wall -Werror "$src" $flags -o "$prefix/blockrelay" ||
  { echo "FAIL: the example does not build against the installed library"; exit 1; }
libdir=$(pkg-config --define-variable=prefix="$prefix" --variable=libdir meshmap)
LD_LIBRARY_PATH=$libdir timeout 100 "$prefix/blockrelay" || { echo "FAIL: the example failed"; exit 1; }
# the binary, the example config and the systemd unit
"$prefix/bin/meshmap" --version | grep -q '^meshmap ' || { echo "FAIL: bin/meshmap"; exit 1; }
conf=$prefix/etc/meshmap/meshmap.conf
unit=$prefix/lib/systemd/system/meshmap.service
[ -f "$conf" ] && [ -f "$unit" ] || { echo "FAIL: no example config or systemd unit"; exit 1; }
"$prefix/bin/meshmap" keygen --difficulty 8 --out "$prefix/k" >/dev/null 2>&1
"$prefix/bin/meshmap" node --config "$conf" --key "$prefix/k" --difficulty 8 --check-config \
  >"$prefix/check.out" 2>&1 || { echo "FAIL: the example config does not check:"; cat "$prefix/check.out"; exit 1; }
grep -q '^configuration ok' "$prefix/check.out" || { echo "FAIL: --check-config output"; exit 1; }
# systemd's own checker, on a copy whose paths point into the prefix
if command -v systemd-analyze >/dev/null; then
  bindir=$(sed -n 's|^ExecStart=\(.*\)/meshmap node.*|\1|p' "$unit")
  sed "s|$bindir|$prefix/bin|g" "$unit" >"$prefix/meshmap.service"
  out=$(systemd-analyze verify "$prefix/meshmap.service" 2>&1) ||
    { echo "FAIL: systemd-analyze verify:"; echo "$out"; exit 1; }
  echo "systemd-analyze verify: ok${out:+ ($out)}"
fi
echo "install test: ok"
