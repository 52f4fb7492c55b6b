#!/usr/bin/env bash
# Sourced by the data-plane device checks (dpperf-device-check.sh,
# dptrace-device-check.sh): what the machine is, and 2 MiB hugepages for
# EAL, and the cleanup of background peers. Defines, runs nothing.

# Background processes a check started: killed by device_cleanup (trap it
# on EXIT).
pids=()
device_cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }

# device_banner: the CPU model, how many CPUs, the load.
device_banner() {
	echo "=== machine"
	grep -m1 'model name' /proc/cpuinfo
	echo "CPUs: $(nproc)"
	uptime
}

# device_hugepages WANT FREE_MIN NO_HUGE_MB: raise the 2 MiB hugepages to
# WANT (never lower them) and mount hugetlbfs; sets the array mem to EAL's
# memory arguments: --in-memory where FREE_MIN pages are free, else
# --no-huge -m NO_HUGE_MB (EAL refuses --in-memory with --no-huge).
device_hugepages() {
	local want=$1 free_min=$2 no_huge_mb=$3
	local hp=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages

	[ "$(cat "$hp" 2>/dev/null || echo "$want")" -ge "$want" ] || echo "$want" >"$hp" 2>/dev/null
	mkdir -p /dev/hugepages
	mountpoint -q /dev/hugepages || mount -t hugetlbfs nodev /dev/hugepages 2>/dev/null
	mem=(--in-memory)
	[ "$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)" -ge "$free_min" ] 2>/dev/null ||
		mem=(--no-huge -m "$no_huge_mb")
}
