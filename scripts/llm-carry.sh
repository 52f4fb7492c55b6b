#!/usr/bin/env bash
# Build the server, the LLM demo and the client tool here and copy them
# (statically linked DPDK; the shared libraries they need alongside; CUDA's
# libraries are the GPU machine's own) into .carry/llm (git-ignored) for the GPU machine:
#   scripts/llm-carry.sh [build-dir]          (default build)
# then, through the device tool: carry [".carry/llm"],
#   command: bash scripts/llm-device-check.sh
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
builddir=${1:-build}
cd "$top"
[ -f "$builddir/build.ninja" ] || bash scripts/setup.sh "$builddir"
ninja -C "$builddir" apps/djinn-dp apps/djinn-llm apps/djinn apps/bench-batch >/dev/null
mkdir -p .carry/llm
cp "$builddir"/apps/djinn-dp "$builddir"/apps/djinn-llm "$builddir"/apps/djinn \
	"$builddir"/apps/bench-batch .carry/llm/
strip .carry/llm/djinn-dp .carry/llm/djinn-llm .carry/llm/djinn .carry/llm/bench-batch
# Every shared library they need beyond glibc, the C++ runtime and CUDA's
# (djinn-dp links libmicrohttpd and libcurl for metrics and etcd).
bash scripts/carry-libs.sh .carry/llm .carry/llm/djinn-dp .carry/llm/djinn-llm .carry/llm/djinn \
	.carry/llm/bench-batch
du -sh .carry/llm
