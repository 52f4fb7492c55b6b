#!/usr/bin/env bash
# Reserve and mount 2 MiB hugepages for DPDK (root).
#   scripts/hugepages.sh [PAGES] [MOUNTPOINT]     default 1024 pages (2 GiB), /dev/hugepages
#   scripts/hugepages.sh --status
# Programs fall back to --no-huge (and say so) where this was not done.
set -euo pipefail
sysfs=/sys/kernel/mm/hugepages/hugepages-2048kB
if [ "${1:-}" = --status ]; then
	grep -E 'HugePages_(Total|Free)|Hugepagesize' /proc/meminfo
	grep hugetlbfs /proc/mounts || echo "no hugetlbfs mounted"
	exit 0
fi
pages=${1:-1024}
mnt=${2:-/dev/hugepages}
if [ "$(id -u)" != 0 ]; then
	echo "hugepages: needs root (programs will run with --no-huge instead)" >&2
	exit 1
fi
have=$(cat "$sysfs/nr_hugepages")
if [ "$have" -lt "$pages" ]; then
	echo "$pages" > "$sysfs/nr_hugepages"
fi
got=$(cat "$sysfs/nr_hugepages")
[ "$got" -ge "$pages" ] || echo "hugepages: asked for $pages, the kernel gave $got" >&2
mkdir -p "$mnt"
grep -qs " $mnt hugetlbfs " /proc/mounts || mount -t hugetlbfs -o pagesize=2M nodev "$mnt"
echo "hugepages: $got x 2 MiB reserved, hugetlbfs at $mnt"
