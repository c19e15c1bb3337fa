#!/usr/bin/env bash
# Quick start: install what is missing, build, run the main job.
# For now the main job is the runtime demo; extra arguments go to it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh release
exec build/release/meshmap demo "$@"
