#!/usr/bin/env bash
# Build the fleet's binaries here and copy them into .carry/fleet (git-ignored)
# for the GPU machine: djinn-dp, djinn, bench-fleet, the two scripts that
# drive them, and every shared library they need beyond glibc, the C++
# runtime and CUDA's (DPDK is linked statically; libcurl, which djinn-dp
# links for etcd, comes with its dependencies):
#   scripts/fleet-carry.sh [build-dir]          (default build)
# then, through the device tool: carry [".carry/fleet"],
#   command: bash .carry/fleet/fleet-device-check.sh
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
builddir=${1:-build}
cd "$top"
[ -f "$builddir/build.ninja" ] || bash scripts/setup.sh "$builddir"
ninja -C "$builddir" apps/djinn-dp apps/djinn apps/bench-fleet >/dev/null
grep -q "CUDA *: *YES\|CUDA.*true" "$builddir/meson-logs/meson-log.txt" 2>/dev/null ||
	echo "fleet-carry: warning: is $builddir built with CUDA? (-Dcuda=enabled)" >&2
dest=.carry/fleet
rm -rf "$dest"
mkdir -p "$dest"
cp "$builddir"/apps/djinn-dp "$builddir"/apps/djinn "$builddir"/apps/bench-fleet \
	scripts/bench-fleet.sh scripts/fleet-device-check.sh "$dest"/
strip "$dest"/djinn-dp "$dest"/djinn "$dest"/bench-fleet
bash scripts/carry-libs.sh "$dest" "$dest"/djinn-dp "$dest"/djinn "$dest"/bench-fleet
ls "$dest"
du -sh "$dest"
