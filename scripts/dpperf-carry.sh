#!/usr/bin/env bash
# Build the data-plane performance checks here and copy the statically
# linked binaries (DPDK inside) into .carry/dpperf (git-ignored) for the
# device machine:
#   scripts/dpperf-carry.sh [build-dir]        (default build)
# then, through the device tool: carry [".carry/dpperf"],
#   command: bash scripts/dpperf-device-check.sh
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
builddir=${1:-build}
cd "$top"
[ -f "$builddir/build.ninja" ] || bash scripts/setup.sh "$builddir"
ninja -C "$builddir" apps/djinn-bench apps/bench-proto >/dev/null
mkdir -p .carry/dpperf
cp "$builddir"/apps/djinn-bench "$builddir"/apps/bench-proto .carry/dpperf/
strip .carry/dpperf/djinn-bench .carry/dpperf/bench-proto
bash scripts/carry-libs.sh .carry/dpperf .carry/dpperf/djinn-bench .carry/dpperf/bench-proto
du -sh .carry/dpperf
