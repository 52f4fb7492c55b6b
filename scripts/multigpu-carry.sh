#!/usr/bin/env bash
# Build the multi-GPU checks here and copy them into .carry/multigpu
# (git-ignored) for the GPU machine: djinn-dp, djinn, djinn-llm, bench-move, the tests
# of every operation on a GPU (test_gpu_ops, test_gpu_ops_transformer,
# test_remote_ops), of moves between devices (test_rt_devices) and of the
# per-device data-plane placer (test_gpu_dp), the injected topologies, the
# device script, and every shared library they need beyond glibc, the C++
# runtime and CUDA's (scripts/carry-libs.sh; DPDK is linked statically):
#   scripts/multigpu-carry.sh [build-dir]          (default build)
# then, through the device tool (any number of GPUs): carry [".carry/multigpu"],
#   command: bash .carry/multigpu/multigpu-device-check.sh
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
builddir=${1:-build}
cd "$top"
[ -f "$builddir/build.ninja" ] || bash scripts/setup.sh "$builddir"
bins="apps/djinn-dp apps/djinn apps/djinn-llm apps/bench-move tests/unit/gpu_ops/test_gpu_ops
      tests/unit/gpu_ops/test_gpu_ops_transformer tests/integration/runtime/test_remote_ops
      tests/unit/runtime/test_rt_devices tests/unit/gpu_dp/test_gpu_dp"
# shellcheck disable=SC2086
ninja -C "$builddir" $bins >/dev/null
grep -q "have_cuda\|nvcc" "$builddir/meson-logs/meson-log.txt" 2>/dev/null ||
	echo "multigpu-carry: warning: is $builddir built with CUDA?" >&2
dest=.carry/multigpu
rm -rf "$dest"
mkdir -p "$dest/topologies"
for b in $bins; do cp "$builddir/$b" "$dest"/; done
cp scripts/multigpu-device-check.sh "$dest"/
cp tests/unit/runtime/topologies/*.json "$dest/topologies"/
(cd "$dest" && strip djinn-dp djinn djinn-llm bench-move test_gpu_ops test_gpu_ops_transformer \
	test_remote_ops test_rt_devices test_gpu_dp)
# shellcheck disable=SC2046
bash scripts/carry-libs.sh "$dest" $(for b in $bins; do echo "$dest/$(basename "$b")"; done)
ls "$dest"
du -sh "$dest"
