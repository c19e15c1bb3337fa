#!/usr/bin/env bash
# Quick start: install what is missing, build, run the main job: a local
# network of 8 meshmap nodes on loopback, shown converging to one map.
# Extra arguments go to scripts/localnet.sh (e.g. --nodes 20).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh release
exec bash scripts/localnet.sh "$@"
