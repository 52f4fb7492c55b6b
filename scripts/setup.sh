#!/usr/bin/env bash
# Set up a fresh Debian 12 machine for Djinn and build it; idempotent.
#   scripts/setup.sh [build-dir] [extra meson options...]
# 1. Debian packages (apt-get update only when something is missing),
# 2. the deb-src entry that the pinned DPDK source comes from,
# 3. the pinned static DPDK (scripts/build-dpdk.sh; cached),
# 4. meson setup + ninja for the build folder (default: build).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
builddir=${1:-build}
[ $# -gt 0 ] && shift

# python3-torch, python3-pytest, python3-pip: the Python frontend (python/), its
# tests and `pip install ./python`, for /usr/bin/python3.
packages=(meson ninja-build pkg-config gcc g++ python3-pyelftools dpkg-dev xz-utils
	libnuma-dev libcjson-dev libcunit1-dev libssl-dev openssl iproute2 procps python3-numpy
	libmicrohttpd-dev prometheus tmux python3-matplotlib libcurl4-openssl-dev etcd-server
	etcd-client
	clang-14 libclang-rt-14-dev llvm-14
	python3-torch python3-pytest python3-pip)

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done

src_list=/etc/apt/sources.list.d/djinn-deb-src.sources
need_src=0
if [ -z "${DJINN_DPDK_TARBALL:-}" ] && ! grep -rqs '^Types:.*deb-src\|^deb-src ' /etc/apt/sources.list /etc/apt/sources.list.d/; then
	need_src=1
	echo "setup: adding a deb-src entry for bookworm ($src_list)"
	as_root tee "$src_list" >/dev/null <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi

dpdk_prefix=$("$here/build-dpdk.sh" --print-prefix)
if [ ${#missing[@]} -gt 0 ] || { [ "$need_src" = 1 ] && [ ! -f "$dpdk_prefix/.complete" ]; }; then
	echo "setup: apt-get update"
	as_root apt-get update -q >/dev/null
fi
if [ ${#missing[@]} -gt 0 ]; then
	echo "setup: installing ${missing[*]}"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
fi

dpdk_prefix=$("$here/build-dpdk.sh" | tail -n 1)

cd "$top"
if [ ! -f "$builddir/build.ninja" ]; then
	meson setup "$builddir" -Dpkg_config_path="$dpdk_prefix/lib/pkgconfig" "$@"
else
	# Keep an existing build folder pointed at the current DPDK prefix.
	meson configure "$builddir" -Dpkg_config_path="$dpdk_prefix/lib/pkgconfig" "$@" >/dev/null
fi
ninja -C "$builddir"
