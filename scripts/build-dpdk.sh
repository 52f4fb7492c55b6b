#!/usr/bin/env bash
# Build the pinned DPDK that Djinn links against: Debian's 22.11 source (or a
# tarball), our patches (scripts/dpdk/: gpu/cuda, net/memif), static libraries only, into a cache
# prefix outside the repository keyed by version and patch hash.
#
#   scripts/build-dpdk.sh [--tarball PATH] [--print-prefix]
#
# Prints the prefix on its last line. A second run with the same inputs finds
# the finished prefix and returns in about a second.
# Environment: DJINN_CACHE (default ~/.cache/djinn), DJINN_DPDK_TARBALL,
# CUDA_HOME (default /usr/local/cuda).
set -euo pipefail

DPDK_VERSION=22.11.11
DEBIAN_VERSION=22.11.11-0+deb12u1
here=$(cd "$(dirname "$0")" && pwd)
patch_dir=$here/dpdk
cache=${DJINN_CACHE:-$HOME/.cache/djinn}
tarball=${DJINN_DPDK_TARBALL:-}
cuda_home=${CUDA_HOME:-/usr/local/cuda}
print_prefix_only=0

while [ $# -gt 0 ]; do
	case "$1" in
	--tarball) tarball=$2; shift 2 ;;
	--print-prefix) print_prefix_only=1; shift ;;
	-h|--help) sed -n 2,12p "$0"; exit 0 ;;
	*) echo "build-dpdk: unknown argument $1" >&2; exit 2 ;;
	esac
done

# Optional libraries we never use (22.11 refuses to disable mandatory ones);
# drivers are an allow-list below.
disable_libs="bitratestats,cfgfile,flow_classify,gro,kni,jobstats,latencystats"
disable_libs+=",metrics,node,pdump,pipeline,port,power,table,vhost"
drivers="bus/pci,bus/vdev,mempool/ring,net/null,net/ring,net/memif,net/af_packet"
drivers+=",net/tap,net/virtio,gpu/cuda"
# Vendor drivers only where their development packages are installed.
if pkg-config --exists libibverbs libmlx5 2>/dev/null; then
	drivers+=",bus/auxiliary,common/mlx5,net/mlx5"
fi
if pkg-config --exists libxdp libbpf 2>/dev/null; then
	drivers+=",net/af_xdp"
fi

# The key covers everything that changes the result.
key=$( {
	echo "$DPDK_VERSION $drivers $disable_libs"
	cat "$patch_dir"/*.patch
	[ -n "$tarball" ] && sha256sum "$tarball" | cut -d' ' -f1
	[ -f "$cuda_home/include/cuda.h" ] && grep -m1 'define CUDA_VERSION' "$cuda_home/include/cuda.h"
	# Optional libraries DPDK links when present change what we must link.
	for lib in libelf libbsd libarchive libpcap jansson openssl zlib libibverbs libxdp libbpf; do
		pkg-config --exists "$lib" 2>/dev/null && echo "$lib"
	done
	true
} | sha256sum | cut -c1-12)
prefix=$cache/dpdk-$DPDK_VERSION-$key

if [ "$print_prefix_only" = 1 ]; then echo "$prefix"; exit 0; fi
if [ -f "$prefix/.complete" ]; then
	echo "build-dpdk: cached DPDK $DPDK_VERSION at $prefix" >&2
	echo "$prefix"
	exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/djinn-dpdk.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

if [ -n "$tarball" ]; then
	echo "build-dpdk: unpacking $tarball" >&2
	tar xf "$tarball"
else
	if ! apt-get source --print-uris -q "dpdk=$DEBIAN_VERSION" >/dev/null 2>&1; then
		echo "build-dpdk: no deb-src entry for bookworm: run scripts/setup.sh (as root) first" >&2
		exit 1
	fi
	echo "build-dpdk: fetching Debian source dpdk=$DEBIAN_VERSION" >&2
	apt-get source -q --download-only "dpdk=$DEBIAN_VERSION" >&2
	tar xf "dpdk_$DPDK_VERSION.orig.tar.xz"
fi
src=$(find . -maxdepth 1 -type d -name 'dpdk*' | head -n 1)
[ -n "$src" ] || { echo "build-dpdk: no dpdk source folder found" >&2; exit 1; }
cd "$src"
for p in "$patch_dir"/*.patch; do
	echo "build-dpdk: applying $(basename "$p")" >&2
	patch -p1 --forward --quiet < "$p"
done

cuda_args=""
[ -f "$cuda_home/include/cuda.h" ] && cuda_args="-I$cuda_home/include"

# platform=generic: the binaries must run on other x86-64 machines (the GPU host).
meson setup build --prefix="$prefix" --libdir=lib \
	-Ddefault_library=static -Dplatform=generic -Dtests=false \
	-Denable_docs=false -Ddisable_apps='*' -Dexamples= \
	-Denable_drivers="$drivers" -Ddisable_libs="$disable_libs" \
	-Dc_args="$cuda_args" >build.log 2>&1 || { tail -n 40 build.log >&2; exit 1; }

# Fail loudly if a driver we rely on was skipped (missing dependency).
for d in gpu_cuda net_memif net_af_packet net_null net_ring net_tap bus_vdev; do
	grep -q "define RTE_${d^^} 1" build/rte_build_config.h && continue
	if [ "$d" = gpu_cuda ] && [ -z "$cuda_args" ]; then
		echo "build-dpdk: no CUDA headers at $cuda_home: gpu/cuda driver left out" >&2
		continue
	fi
	grep -A1 "^$d\|${d/_//}" build.log | head -n 5 >&2 || true
	echo "build-dpdk: driver $d was not enabled (missing dependency?)" >&2
	exit 1
done

ninja -C build install >build-ninja.log 2>&1 || { tail -n 40 build-ninja.log >&2; exit 1; }
# Static only: with no shared objects in the prefix nothing can link librte_*.so.
find "$prefix/lib" -maxdepth 1 -name 'librte_*.so*' -delete
rm -rf "$prefix/lib/dpdk"
touch "$prefix/.complete"
echo "build-dpdk: installed DPDK $DPDK_VERSION into $prefix" >&2
echo "$prefix"
