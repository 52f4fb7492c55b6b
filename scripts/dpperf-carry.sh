#!/usr/bin/env bash
# Build the data-plane performance checks here and copy the statically
# linked binaries (DPDK inside: djinn-bench, bench-proto, and djinn-dp for
# the control-plane runs) into .carry/dpperf (git-ignored) for the device
# machine:
#   scripts/dpperf-carry.sh [build-dir]        (default build)
# then, through the device tool: carry [".carry/dpperf"],
#   command: bash scripts/dpperf-device-check.sh
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
builddir=${1:-build}
cd "$top"
[ -f "$builddir/build.ninja" ] || bash scripts/setup.sh "$builddir"
ninja -C "$builddir" apps/djinn-bench apps/bench-proto apps/djinn-dp >/dev/null
mkdir -p .carry/dpperf
bins=(djinn-bench bench-proto djinn-dp)
for b in "${bins[@]}"; do
	cp "$builddir/apps/$b" .carry/dpperf/
	strip ".carry/dpperf/$b"
done
bash scripts/carry-libs.sh .carry/dpperf "${bins[@]/#/.carry/dpperf/}"
du -sh .carry/dpperf
