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
echo "install test: ok"
