#!/usr/bin/env bash
# Set up (idempotent) and run the main job: djinn-dp starts EAL on its default
# memif vdev, reports the ports and GPUs it found, and exits.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash scripts/setup.sh build >/dev/null
exec build/apps/djinn-dp -- --probe
