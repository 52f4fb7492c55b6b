#!/usr/bin/env bash
# Runs on the GPU machine with the binaries of scripts/runtime-carry.sh:
#   1. djinn-dp --probe (ports and the GPU through gpudev),
#   2. every operation remotely on the GPU runtime against the local CPU
#      reference, and every CUDA operation writing its whole output
#      (poisoned twice) (test_remote_ops gpu), plus the host runtime,
#   2b. tenant isolation on the GPU runtime (test_tenant_isolation gpu:
#      ALLOC after another session freed the same size reads zeros, 64 B to
#      64 MiB; abandoned PUTs leave nothing), and what the zeroing costs
#      (bench-alloc --gpu 0: pool allocation with and without
#      cudaMemsetAsync, 64 KiB / 16 MiB / 1 GiB, and ALLOC through a server),
#   3. the data-plane GPU placer test (test_gpu_dp gpu: net_ring pair, real
#      mbufs, byte-exact into and out of GPU memory),
#   4. the demo between djinn-dp (--gpu 0: GPU memory, CUDA operations) and
#      djinn, over memif (DPDK: 512x512 and 2048x2048, i.e. 2 x 16 MiB put,
#      16 MiB got; the resident gather kernel, and 2048 again with a kernel
#      per burst) and over TCP. A
#      DPDK demo that falls back to TCP fails the check.
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

# runtime_test BINARY TITLE: its gpu and host modes, a summary of each.
runtime_test() {
	local test=$1 title=$2 mode
	for mode in gpu host; do
		step "$title, $mode runtime"
		"$bin"/$test $([ $mode = gpu ] && echo gpu) >"$out/${test}_$mode.log" 2>&1
		local rc=$?
		grep -E "seed|Test:|not zero|never written|asserts|tests " "$out/${test}_$mode.log"
		echo "exit $rc"; [ $rc = 0 ] || status=1
	done
}
runtime_test test_remote_ops "remote operations"
runtime_test test_tenant_isolation "tenant isolation"
step "what zeroing a new tensor costs (bench-alloc, 3 runs of 10 iterations each)"
for run in 1 2 3; do
	"$bin"/bench-alloc --gpu 0 --iters 10 2>&1 | tee -a "$out/bench_alloc_gpu.log"
done

step "data-plane GPU placer: net_ring pair, real mbufs into GPU memory (test_gpu_dp gpu)"
timeout 100 "$bin"/test_gpu_dp gpu >"$out/test_gpu_dp.log" 2>&1
rc=$?
grep -E "seed|Test:|passed|FAILED|asserts|tests |SKIP|CU_ASSERT" "$out/test_gpu_dp.log"
echo "exit $rc"; [ $rc = 0 ] || status=1

# demo MODE SIZE: djinn-dp --gpu 0 and the djinn client, over memif
# (dpdk) or TCP; the DPDK runs must not fall back to TCP.
demo() {
	local mode=$1 size=$2 gather=${3:-persistent}
	local port=$((20000 + RANDOM % 20000)) sock=/tmp/dj-rt-$mode.memif
	local log="$out/server_${mode}_${size}_$gather.log" clog="$out/demo_${mode}_${size}_$gather.log"
	step "demo --size $size with djinn-dp --gpu 0 over $mode (gather: $gather)"
	if [ $mode = dpdk ]; then
		"$bin"/djinn-dp --vdev "net_memif0,role=server,socket=$sock,socket-abstract=no,bsize=9216" \
			-l 0-1 -- --gpu 0 --gpu-gather $gather --ctl-port $port --stats-interval 0 \
			>"$log" 2>&1 &
	else
		"$bin"/djinn-dp -- --no-dpdk --gpu 0 --ctl-port $port --stats-interval 0 \
			>"$log" 2>&1 &
	fi
	local server=$!
	for _ in $(seq 300); do grep -q "control plane: listening" "$log" && break; sleep 0.1; done
	grep -E "^compute|^data plane|^control plane" "$log"
	if [ $mode = dpdk ]; then
		timeout 120 "$bin"/djinn --vdev "net_memif0,role=client,socket=$sock,socket-abstract=no,bsize=9216" \
			-l 2-3 -- --port $port --path dpdk demo --size $size >"$clog" 2>&1
	else
		timeout 120 "$bin"/djinn --port $port --path tcp demo --size $size >"$clog" 2>&1
	fi
	local rc=$?
	grep -v '^EAL\|^TELEMETRY' "$clog"
	kill -INT $server; wait $server
	grep -E "^stats:|GPU placement|dp placer|redone" "$log"
	if [ $rc != 0 ] || ! grep -qw MATCH "$clog" || grep -q "redone over TCP" "$clog" "$log" ||
	   { [ $mode = dpdk ] && ! grep -q "over DPDK" "$clog"; }; then
		echo "demo $mode $size $gather: FAIL (exit $rc)"; status=1
	else
		echo "demo $mode $size $gather: PASS"
	fi
}
demo dpdk 512
demo dpdk 2048
demo dpdk 2048 launch
demo tcp 512
echo; echo "runtime device check: $([ $status = 0 ] && echo PASS || echo FAIL)"
exit $status
