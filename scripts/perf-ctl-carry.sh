#!/usr/bin/env bash
# Build bench-fallback here and copy it into .carry/perf-ctl (git-ignored)
# for the GPU machine, with scripts/perf-ctl-device-check.sh and every
# shared library it needs beyond glibc and CUDA's (scripts/carry-libs.sh):
#   scripts/perf-ctl-carry.sh [build-dir] [before-build-dir]
# before-build-dir: a build of an earlier tree (e.g. main before the binary
# frames, 927c8b8; its bench-fallback has --small but not --json-frames); its
# bench-fallback goes along as bench-fallback-before, which the check runs
# interleaved with this one. Then, through the device tool: carry
# [".carry/perf-ctl"], command: bash .carry/perf-ctl/perf-ctl-device-check.sh
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
builddir=${1:-build}
before=${2:-}
cd "$top"
[ -f "$builddir/build.ninja" ] || bash scripts/setup.sh "$builddir"
ninja -C "$builddir" apps/bench-fallback >/dev/null
dest=.carry/perf-ctl
rm -rf "$dest"
mkdir -p "$dest"
cp "$builddir"/apps/bench-fallback scripts/perf-ctl-device-check.sh "$dest"/
bins=("$dest"/bench-fallback)
if [ -n "$before" ]; then
	ninja -C "$before" apps/bench-fallback >/dev/null
	cp "$before"/apps/bench-fallback "$dest"/bench-fallback-before
	bins+=("$dest"/bench-fallback-before)
fi
strip "${bins[@]}"
bash scripts/carry-libs.sh "$dest" "${bins[@]}"
ls "$dest"
du -sh "$dest"
