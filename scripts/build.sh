#!/usr/bin/env bash
# Configure and build one configuration into build/<name>.
#   release  -O2 -g, -Werror, jemalloc
#   asan     ASan + UBSan, libc malloc
#   tsan     TSan, libc malloc
#   nojemalloc  release flags with libc malloc
#   fuzz     clang, libFuzzer targets with ASan+UBSan (no tests)
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:-release}
jobs=$(nproc)
case "$name" in
  release)    opts=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DMESHMAP_WERROR=ON) ;;
  nojemalloc) opts=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DMESHMAP_WERROR=ON -DMESHMAP_JEMALLOC=OFF -DMESHMAP_BENCH=OFF) ;;
  asan)       opts=(-DCMAKE_BUILD_TYPE=Debug -DMESHMAP_WERROR=ON -DMESHMAP_JEMALLOC=OFF -DMESHMAP_SANITIZE=address -DMESHMAP_BENCH=OFF) ;;
  tsan)       opts=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DMESHMAP_WERROR=ON -DMESHMAP_JEMALLOC=OFF -DMESHMAP_SANITIZE=thread -DMESHMAP_BENCH=OFF) ;;
  fuzz)       opts=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DMESHMAP_WERROR=ON -DMESHMAP_JEMALLOC=OFF -DMESHMAP_FUZZ=ON -DMESHMAP_BENCH=OFF) ;;
  *) echo "build.sh: unknown configuration '$name' (release|nojemalloc|asan|tsan|fuzz)" >&2; exit 2 ;;
esac
# gcc everywhere but for fuzzing (libFuzzer is clang's): gcc's TSan build
# hides ck_ring's internal copies (see runtime/tsan.h). CC from the
# environment is ignored on purpose.
if [ "$name" = fuzz ]; then cc=clang cxx=clang++; else cc=gcc cxx=g++; fi
cmake -S . -B "build/$name" -DCMAKE_C_COMPILER=$cc -DCMAKE_CXX_COMPILER=$cxx "${opts[@]}" >/dev/null
cmake --build "build/$name" -j "$jobs"
