#!/usr/bin/env bash
# Sourced by the data-plane device checks (dpperf-device-check.sh,
# dptrace-device-check.sh): what the machine is, 2 MiB hugepages for EAL,
# a djinn-bench memif pair, and the cleanup of background peers. Defines,
# runs nothing.

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

# device_memif_pair BIN RECV_LCORES SEND_LCORES TAG ARGS...: one djinn-bench
# pair on memif (bsize 9216), ARGS to both: the receiver, memif's server,
# in the background on EAL --lcores RECV_LCORES, the sender, its client, on
# SEND_LCORES; logs and JSON in $out/TAG-{recv,send}.{log,json}. Uses mem
# (device_hugepages); a side that fails is said and sets status=1.
device_memif_pair() {
	local b=$1 rl=$2 sl=$3 tag=$4 sock="/tmp/djinn-dev-$$-$4.sock"
	local vdev="socket=$sock,socket-abstract=no,bsize=9216"
	shift 4
	rm -f "$sock"
	"$b" --lcores "$rl" --main-lcore 0 --no-pci "${mem[@]}" --file-prefix "dvr$$" \
		--log-level=lib.eal:warning --vdev "net_memif0,role=server,$vdev" \
		-- "$@" --role recv --json "$out/$tag-recv.json" >"$out/$tag-recv.log" 2>&1 &
	pids=($!)
	"$b" --lcores "$sl" --main-lcore 0 --no-pci "${mem[@]}" --file-prefix "dvs$$" \
		--log-level=lib.eal:warning --vdev "net_memif0,role=client,$vdev" \
		-- "$@" --role send --json "$out/$tag-send.json" >"$out/$tag-send.log" 2>&1 ||
		{ echo "$tag: sender failed ($out/$tag-send.log)"; status=1; }
	wait "${pids[0]}" || { echo "$tag: receiver failed ($out/$tag-recv.log)"; status=1; }
	pids=()
	rm -f "$sock"
}
