#!/usr/bin/env bash
# Build the server, the client tool and the remote-ops test here and copy them
# (statically linked DPDK; the shared libraries they need alongside,
# scripts/carry-libs.sh) into .carry/runtime
# (git-ignored) for the GPU machine:
#   scripts/runtime-carry.sh [build-dir]          (default build)
# then, through the device tool: carry [".carry/runtime"],
#   command: bash scripts/runtime-device-check.sh
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
builddir=${1:-build}
cd "$top"
[ -f "$builddir/build.ninja" ] || bash scripts/setup.sh "$builddir"
ninja -C "$builddir" apps/djinn-dp apps/djinn apps/bench-alloc \
	tests/integration/runtime/test_remote_ops tests/integration/runtime/test_tenant_isolation \
	tests/unit/gpu_dp/test_gpu_dp >/dev/null
mkdir -p .carry/runtime
cp "$builddir"/apps/djinn-dp "$builddir"/apps/djinn "$builddir"/apps/bench-alloc \
	"$builddir"/tests/integration/runtime/test_remote_ops \
	"$builddir"/tests/integration/runtime/test_tenant_isolation \
	tests/integration/runtime/test_demo.sh \
	"$builddir"/tests/unit/gpu_dp/test_gpu_dp .carry/runtime/
strip .carry/runtime/djinn-dp .carry/runtime/djinn .carry/runtime/bench-alloc \
	.carry/runtime/test_remote_ops .carry/runtime/test_tenant_isolation .carry/runtime/test_gpu_dp
bash scripts/carry-libs.sh .carry/runtime .carry/runtime/djinn-dp .carry/runtime/djinn \
	.carry/runtime/bench-alloc .carry/runtime/test_remote_ops \
	.carry/runtime/test_tenant_isolation .carry/runtime/test_gpu_dp
du -sh .carry/runtime
