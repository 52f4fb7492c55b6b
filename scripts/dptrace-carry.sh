#!/usr/bin/env bash
# Build the transfer trace's checks here and copy the statically linked
# djinn-bench binaries (DPDK inside) into .carry/dptrace (git-ignored) for
# the device machine:
#   djinn-bench        this tree with -Ddp_trace=true (build folder TRACEDIR,
#                      default build-trace): traced runs, DJ_DP_TRACE=prefix
#   djinn-bench-plain  this tree's default build (BUILDDIR, default build)
#   djinn-bench-base   BASE (a git revision, optional, e.g. main), default
#                      options, built in a temporary worktree: the baseline
#                      that scripts/dptrace-device-check.sh interleaves
#   [BASE=main] bash scripts/dptrace-carry.sh
# then, through the device tool: carry [".carry/dptrace"],
#   command: bash scripts/dptrace-device-check.sh
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
tracedir=${TRACEDIR:-build-trace}
builddir=${BUILDDIR:-build}
cd "$top"
[ -f "$tracedir/build.ninja" ] || bash scripts/setup.sh "$tracedir" -Ddp_trace=true
[ -f "$builddir/build.ninja" ] || bash scripts/setup.sh "$builddir"
# Both folders on this tree's DPDK (its patches may have changed since
# they were set up).
prefix=$(bash scripts/build-dpdk.sh | tail -n 1)
for d in "$tracedir" "$builddir"; do
	meson configure "$d" -Dpkg_config_path="$prefix/lib/pkgconfig" >/dev/null
done
ninja -C "$tracedir" apps/djinn-bench >/dev/null
ninja -C "$builddir" apps/djinn-bench >/dev/null
dest=.carry/dptrace
rm -rf "$dest"
mkdir -p "$dest"
cp "$tracedir/apps/djinn-bench" "$dest/djinn-bench"
cp "$builddir/apps/djinn-bench" "$dest/djinn-bench-plain"
if [ -n "${BASE:-}" ]; then
	wt=$(mktemp -d /tmp/dptrace-base.XXXXXX)
	trap 'git -C "$top" worktree remove --force "$wt" >/dev/null 2>&1 || rm -rf "$wt"' EXIT
	git worktree add --detach "$wt" "$BASE" >/dev/null
	# The base's own DPDK (its patches), so that a DPDK patch is
	# compared too.
	prefix=$(bash "$wt/scripts/build-dpdk.sh" | tail -n 1)
	meson setup "$wt/build" "$wt" -Dpkg_config_path="$prefix/lib/pkgconfig" >/dev/null
	ninja -C "$wt/build" apps/djinn-bench >/dev/null
	cp "$wt/build/apps/djinn-bench" "$dest/djinn-bench-base"
	git -C "$wt" rev-parse --short HEAD >"$dest/base-rev"
fi
git rev-parse --short HEAD >"$dest/rev"
bins=("$dest"/djinn-bench*)
strip "${bins[@]}"
bash scripts/carry-libs.sh "$dest" "${bins[@]}"
du -sh "$dest"
