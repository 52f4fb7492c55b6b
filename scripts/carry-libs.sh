#!/usr/bin/env bash
# Copy the shared libraries that the given binaries need into DEST, for the
# GPU machine, which has glibc, the C++ runtime and CUDA but not our other
# dependencies (cJSON, CUnit, libmicrohttpd, libcurl and theirs): what ldd
# lists, less what every Linux and the CUDA toolkit have. DPDK is linked
# statically. Every scripts/*-carry.sh and --carry step uses this one list.
#   scripts/carry-libs.sh DEST BINARY...
set -euo pipefail
dest=$1
shift
for b in "$@"; do
	ldd "$b" | awk '$3 ~ /^\// {print $3}'
done | sort -u | while read -r lib; do
	# CUDA's by their folder (libcu* would also take libcunit and libcurl).
	case $lib in
	*/cuda/*|*/cuda-[0-9]*/*|*/libcuda.so*|*/libnv*) continue ;;
	esac
	case $(basename "$lib") in
	libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|libresolv.so*|ld-linux*|\
	libstdc++.so*|libgcc_s.so*) ;;
	*) cp -L "$lib" "$dest"/ ;;
	esac
done
