#!/usr/bin/env bash
# Runs on the device machine (H100, root, no DPDK) from the repository root,
# with the binaries of scripts/gpu-carry.sh in .carry/gpu:
#   1. djinn-dp --probe (the GPU must show through gpudev),
#   2. the GPU unit tests (gpudev memory, the gather engine, the data-plane
#      placer over a net_ring pair: real mbufs into and out of GPU memory),
#   3. bench-gpu: byte-exact net_ring transfers into GPU memory (1 B, 1 MiB,
#      256 MiB, 1 GiB) and cudaMemcpy H2D vs the staged gather, for the
#      fragment sizes of MTU 1500 (1416 B) and MTU 9000 (8916 B),
#   4. bench-gpu-send: a 256 MiB GPU-source send, staged ring vs one whole
#      device-to-host copy.
# Logs and JSON go to $OUT (or /tmp/gpu-check); a short table comes last.
#   BENCH_ARGS="--reps 3" bash scripts/gpu-device-check.sh
set -u
bin=$(pwd)/.carry/gpu
out=${OUT:-/tmp/gpu-check}
export LD_LIBRARY_PATH=$bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
mkdir -p "$out"
status=0
step() { echo; echo "=== $*"; }

step "GPU"
nvidia-smi --query-gpu=name,pci.bus_id,driver_version,memory.total --format=csv,noheader || true

# 2 MiB hugepages for EAL; the binaries fall back to --no-huge without them.
echo 2048 >/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages 2>/dev/null
mkdir -p /dev/hugepages
mountpoint -q /dev/hugepages || mount -t hugetlbfs nodev /dev/hugepages 2>/dev/null
grep -E 'HugePages_(Total|Free)' /proc/meminfo

step "djinn-dp --probe"
"$bin"/djinn-dp --file-prefix dj_probe -- --probe 2>&1 | tee "$out/probe.log" || status=1

step "unit tests"
for t in test_gpu test_gpu_device "test_gpu_dp gpu"; do
	log="$out/${t%% *}.log"
	timeout 300 "$bin"/$t >"$log" 2>&1
	rc=$?
	echo "$t: exit $rc"; grep -E "^ +(tests|asserts)|SKIP|FAILED|Test: .*FAIL" "$log"
	[ $rc = 0 ] || status=1
done

step "bench-gpu (MTU 1500: 1416 B fragments)"
"$bin"/bench-gpu --file-prefix dj_bench -- --verify 1,1M,256M,1G --bench 1G --payload 1416 \
	--json "$out/bench-1416.json" ${BENCH_ARGS:-} 2>&1 | tee "$out/bench-1416.log"
[ "${PIPESTATUS[0]}" = 0 ] || status=1

step "bench-gpu (MTU 9000: 8916 B fragments)"
"$bin"/bench-gpu --file-prefix dj_bench -- --verify 1G --bench 1G --payload 8916 \
	--json "$out/bench-8916.json" ${BENCH_ARGS:-} 2>&1 | tee "$out/bench-8916.log"
[ "${PIPESTATUS[0]}" = 0 ] || status=1

step "bench-gpu-send (256 MiB GPU source: staged ring vs whole copy)"
"$bin"/bench-gpu-send -l 0-3 --file-prefix dj_bgs -- --gpu 0 --size 256M --reps 5 \
	--json "$out/gpu-send.json" 2>&1 | tee "$out/gpu-send.log"
[ "${PIPESTATUS[0]}" = 0 ] || status=1

step "summary"
grep -hE "^(verify|cudaMemcpy|gather|tx)|^ +[0-9.]+%" "$out"/bench-*.log
grep -hE "^(mode|staged|whole) " "$out"/gpu-send.log
echo "device check: $([ $status = 0 ] && echo PASS || echo FAIL)"
exit $status
