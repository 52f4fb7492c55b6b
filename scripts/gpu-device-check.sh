#!/usr/bin/env bash
# Runs on the device machine (H100, root, no DPDK) from the repository root,
# with the binaries of scripts/gpu-carry.sh in .carry/gpu:
#   1. djinn-dp --probe (the GPU must show through gpudev),
#   2. the GPU unit tests,
#   3. bench-gpu: byte-exact net_ring transfers into GPU memory (1 B, 1 MiB,
#      256 MiB, 1 GiB) and cudaMemcpy H2D vs the staged gather, for MTU-size
#      and jumbo payloads.
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
for t in test_gpu test_gpu_device; do
	"$bin/$t" >"$out/$t.log" 2>&1
	rc=$?
	echo "$t: exit $rc"; grep -E "^ +(tests|asserts)|SKIP|FAILED|Test: .*FAIL" "$out/$t.log"
	[ $rc = 0 ] || status=1
done

step "bench-gpu (MTU payload 1400 B)"
"$bin"/bench-gpu --file-prefix dj_bench -- --verify 1,1M,256M,1G --bench 1G --payload 1400 \
	--json "$out/bench-1400.json" ${BENCH_ARGS:-} 2>&1 | tee "$out/bench-1400.log"
[ "${PIPESTATUS[0]}" = 0 ] || status=1

step "bench-gpu (jumbo payload 8000 B)"
"$bin"/bench-gpu --file-prefix dj_bench -- --verify 1G --bench 1G --payload 8000 \
	--json "$out/bench-8000.json" ${BENCH_ARGS:-} 2>&1 | tee "$out/bench-8000.log"
[ "${PIPESTATUS[0]}" = 0 ] || status=1

step "persistent kernel: blocks"
for payload in 1400 8000; do
	for blocks in 66 132; do
		"$bin"/bench-gpu --file-prefix dj_bench -- --verify none --bench 1G --payload $payload \
			--mode persistent --blocks $blocks --reps 3 2>/dev/null |
			awk -v b=$blocks '/^gather/{g=$0} /%$/ && g {print "blocks " b ": " g " " $NF; g=""}'
	done
done

step "read-only ceilings (bench-gpu-read-probe)"
[ -x "$bin"/bench-gpu-read-probe ] && "$bin"/bench-gpu-read-probe | grep -E "cudaMemcpy|SM +x1|TMA +x1"

step "summary"
grep -hE "^(verify|cudaMemcpy|gather|tx)|^ +[0-9.]+%" "$out"/bench-*.log
echo "device check: $([ $status = 0 ] && echo PASS || echo FAIL)"
exit $status
