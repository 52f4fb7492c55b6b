#!/usr/bin/env bash
# Runs on the GPU machine with the binaries of scripts/runtime-carry.sh:
#   1. djinn-dp --probe (ports and the GPU through gpudev),
#   2. every operation remotely on the GPU runtime against the local CPU
#      reference (test_remote_ops gpu), plus the host runtime,
#   3. the demo between djinn-dp (--gpu 0: GPU memory, CUDA operations) and
#      djinn, over memif (DPDK) and over TCP.
set -u
bin=$(pwd)/.carry/runtime
out=${OUT:-/tmp/runtime-check}
export LD_LIBRARY_PATH=$bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
mkdir -p "$out"
status=0
step() { echo; echo "=== $*"; }
echo 1024 >/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages 2>/dev/null
mkdir -p /dev/hugepages
mountpoint -q /dev/hugepages || mount -t hugetlbfs nodev /dev/hugepages 2>/dev/null

step "djinn-dp --probe"
"$bin"/djinn-dp --file-prefix dj_rt_probe -- --probe 2>&1 | grep -v '^EAL: \(Detected\|Selected\|No free\|Probe\)' | tee "$out/probe.log"

for mode in gpu host; do
	step "remote operations, $mode runtime"
	"$bin"/test_remote_ops $([ $mode = gpu ] && echo gpu) >"$out/remote_ops_$mode.log" 2>&1
	rc=$?
	grep -E "seed|Test:|asserts|tests " "$out/remote_ops_$mode.log"
	echo "exit $rc"; [ $rc = 0 ] || status=1
done

step "demo with djinn-dp --gpu 0 (memif/DPDK and TCP)"
for mode in dpdk tcp; do
	port=$((20000 + RANDOM % 20000)) sock=/tmp/dj-rt-$mode.memif
	if [ $mode = dpdk ]; then
		"$bin"/djinn-dp --vdev "net_memif0,role=server,socket=$sock,socket-abstract=no,bsize=9216" \
			-l 0-1 -- --gpu 0 --ctl-port $port --stats-interval 0 \
			>"$out/server_$mode.log" 2>&1 &
	else
		"$bin"/djinn-dp -- --no-dpdk --gpu 0 --ctl-port $port --stats-interval 0 \
			>"$out/server_$mode.log" 2>&1 &
	fi
	server=$!
	for _ in $(seq 300); do grep -q "control plane: listening" "$out/server_$mode.log" && break; sleep 0.1; done
	grep -E "^compute|^data plane|^control plane" "$out/server_$mode.log"
	if [ $mode = dpdk ]; then
		"$bin"/djinn --vdev "net_memif0,role=client,socket=$sock,socket-abstract=no,bsize=9216" \
			-l 2-3 -- --port $port --path dpdk demo --size 512 2>&1 | grep -v '^EAL\|^TELEMETRY'
	else
		"$bin"/djinn --port $port --path tcp demo --size 512 2>&1
	fi
	rc=${PIPESTATUS[0]}
	echo "demo $mode: exit $rc"; [ $rc = 0 ] || status=1
	kill -INT $server; wait $server
done
echo; echo "runtime device check: $([ $status = 0 ] && echo PASS || echo FAIL)"
exit $status
