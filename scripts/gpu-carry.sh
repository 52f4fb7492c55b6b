#!/usr/bin/env bash
# Build the GPU checks here and copy the statically linked binaries into
# .carry/gpu (git-ignored) for the device machine:
#   scripts/gpu-carry.sh [build-dir]        (default build)
# then, through the device tool: carry [".carry/gpu"],
#   command: bash scripts/gpu-device-check.sh
# (ONLY=queues bash scripts/gpu-device-check.sh: the receive spread over
# queues alone, bench-gpu --verify-queues, about 2 minutes).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
builddir=${1:-build}
cd "$top"
[ -f "$builddir/build.ninja" ] || bash scripts/setup.sh "$builddir"
ninja -C "$builddir" apps/djinn-dp apps/bench-gpu apps/bench-gpu-send tests/unit/gpu/test_gpu \
	tests/unit/gpu/test_gpu_device tests/unit/gpu/test_packer tests/unit/gpu_dp/test_gpu_dp \
	>/dev/null
# bench-gpu-read-probe stays behind: bench-gpu has a read probe of its own,
# and the carry must stay under 40 MiB.
rm -rf .carry/gpu
mkdir -p .carry/gpu
cp "$builddir"/apps/djinn-dp "$builddir"/apps/bench-gpu "$builddir"/apps/bench-gpu-send \
	"$builddir"/tests/unit/gpu/test_gpu "$builddir"/tests/unit/gpu/test_gpu_device \
	"$builddir"/tests/unit/gpu/test_packer "$builddir"/tests/unit/gpu_dp/test_gpu_dp .carry/gpu/
strip .carry/gpu/*
# The device machine has no CUnit, cJSON, libmicrohttpd or libcurl: take
# them along, with what they need.
bash scripts/carry-libs.sh .carry/gpu .carry/gpu/djinn-dp .carry/gpu/bench-gpu \
	.carry/gpu/bench-gpu-send .carry/gpu/test_gpu .carry/gpu/test_gpu_device .carry/gpu/test_packer \
	.carry/gpu/test_gpu_dp
du -sh .carry/gpu
