#!/usr/bin/env bash
# Build the server, the LLM demo and the client tool here and copy them
# (statically linked DPDK; cJSON alongside; CUDA's libraries are the GPU
# machine's own) into .carry/llm (git-ignored) for the GPU machine:
#   scripts/llm-carry.sh [build-dir]          (default build)
# then, through the device tool: carry [".carry/llm"],
#   command: bash scripts/llm-device-check.sh
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
builddir=${1:-build}
cd "$top"
[ -f "$builddir/build.ninja" ] || bash scripts/setup.sh "$builddir"
ninja -C "$builddir" apps/djinn-dp apps/djinn-llm apps/djinn >/dev/null
mkdir -p .carry/llm
cp "$builddir"/apps/djinn-dp "$builddir"/apps/djinn-llm "$builddir"/apps/djinn .carry/llm/
strip .carry/llm/djinn-dp .carry/llm/djinn-llm .carry/llm/djinn
cp "$(ldconfig -p | awk '$1 == "libcjson.so.1" {print $NF; exit}')" .carry/llm/
du -sh .carry/llm
