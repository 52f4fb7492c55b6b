#!/usr/bin/env bash
# Runs on the device machine (H100, root, no DPDK) from the repository root,
# with the binaries of scripts/gpu-carry.sh in .carry/gpu:
#   1. djinn-dp --probe (the GPU must show through gpudev),
#   2. the GPU unit tests (gpudev memory, the gather engine, the data-plane
#      placer over a net_ring pair: real mbufs into and out of GPU memory),
#   3. bench-gpu: byte-exact net_ring transfers into GPU memory (1 B, 1 MiB,
#      256 MiB, 1 GiB) through both receive movers (the data plane's placer
#      and its gather bursts into the gather kernel, pinned chunks + copy
#      engine), and cudaMemcpy H2D vs the staged gather vs a read-only probe
#      of the same fragments vs the copy mover, for the fragment sizes of MTU
#      1500 (1416 B) and MTU 9000 (8916 B), $RUNS separate runs of each
#      (default 5), the sizes interleaved, all with bench-gpu's defaults
#      (the placer's: gather bursts of 128 and SMs/4 blocks at 1416 B); at
#      1416 B each run is followed by the defaults before gather bursts
#      (--gather-burst 32 --blocks 66: one rx burst each, SMs/2 blocks on
#      the H100) for the same 1 GiB; each run keeps best and worst of its
#      --reps (default 5),
#   4. a sweep of the persistent gather's blocks and gather burst at 1416 B
#      (256 MiB, one run each): what limits it against the probe,
#   5. bench-gpu-send: a 256 MiB GPU-source send, staged ring vs one whole
#      device-to-host copy,
#   6. the receive spread over queues (bench-gpu --verify-queues 1,2,4,8
#      --verify-prebuilt): 1 GiB into GPU memory through 1, 2, 4 and 8
#      net_ring pairs, each with a sender and a receive thread on CPUs of
#      their own, through both movers, the senders building each packet as
#      they send it and then with every packet built before the start (the
#      receive side alone), at 1416 B and 8916 B, $RUNS runs interleaved,
#      each run with its baselines (the one-thread verify, cudaMemcpy H2D
#      and the read probe on 256 MiB); runs stop starting after
#      QUEUES_BUDGET_S seconds of the step (default 80: about 3 runs);
#      QUEUE_SIZE (default 1G) for a quick try, QUEUE_ARGS for more options.
# Logs and JSON go to $OUT (or /tmp/gpu-check); a short table comes last.
# About 9-11 minutes on the H100 host; runs stop starting after BUDGET_S
# (default 300 s), sweep pairs after SWEEP_BUDGET_S (default 480 s).
#   RUNS=3 BENCH_ARGS="--reps 3" bash scripts/gpu-device-check.sh
# ONLY=queues runs step 6 alone (and the GPU's name), about 2 minutes:
#   RUNS=5 ONLY=queues bash scripts/gpu-device-check.sh
set -u
bin=$(pwd)/.carry/gpu
out=${OUT:-/tmp/gpu-check}
only=${ONLY:-all}
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
nproc

# The receive spread over queues: every count of queues in one process, so
# that each run's rows share its baselines; the runs interleave the sizes.
queues_step() {
	local start=$SECONDS run payload log size=${QUEUE_SIZE:-1G}
	local bytes
	bytes=$(numfmt --from=iec "$size")
	step "receive spread over queues: $size, 1/2/4/8 queues, $runs runs"
	for run in $(seq 1 "$runs"); do
		if [ $((SECONDS - start)) -gt "${QUEUES_BUDGET_S:-80}" ]; then
			echo "time budget spent: queue runs $run-$runs skipped"
			break
		fi
		for payload in 1416 8916; do
			log="$out/queues-$payload-run$run.log"
			timeout 120 "$bin"/bench-gpu --file-prefix dj_bq -- --verify "$size" \
				--verify-queues 1,2,4,8 --verify-prebuilt \
				--bench 256M --mode persistent --reps 3 \
				--payload $payload --json "$out/queues-$payload-run$run.json" \
				${QUEUE_ARGS:-} >"$log" 2>&1
			rc=$?
			echo "-- run $run, $payload B: exit $rc"
			grep -E "end to end|full ring" "$log"
			[ $rc = 0 ] || status=1
		done
	done
	step "summary: receive spread over queues (GB/s end to end, per run)"
	for payload in 1416 8916; do
		echo "-- $payload B, $(ls "$out"/queues-$payload-run*.log 2>/dev/null | wc -l) runs"
		for what in "cudaMemcpy H2D pinned" "read probe mbuf" "verify $bytes B staged" \
			"verify $bytes B copy chunks" \
			"verify $bytes B "{staged,"copy chunks"}" x"{1,2,4,8} \
			"verify $bytes B "{staged,"copy chunks"}" x"{1,2,4,8}" prebuilt"; do
			printf '  %-45s' "$what"
			for f in "$out"/queues-$payload-run*.log; do
				# The table's row (what, then bytes), not the
				# queue lines before it. Names may be longer than
				# their 40-character column: count from the end
				# (bytes, ms, GB/s, worst GB/s, check).
				grep -m1 -E "^$what +[0-9]" "$f" | awk '{ printf " %s", $(NF - 2) }'
			done
			echo
		done
	done
}

runs=${RUNS:-5}
if [ "$only" = queues ]; then
	queues_step
	echo "device check (queues): $([ $status = 0 ] && echo PASS || echo FAIL)"
	exit $status
fi

step "djinn-dp --probe"
"$bin"/djinn-dp --file-prefix dj_probe -- --probe 2>&1 | tee "$out/probe.log" || status=1

step "unit tests"
for t in test_gpu test_gpu_device test_packer "test_gpu_dp gpu"; do
	log="$out/${t%% *}.log"
	timeout 300 "$bin"/$t >"$log" 2>&1
	rc=$?
	echo "$t: exit $rc"; grep -E "^ +(tests|asserts)|SKIP|FAILED|Test: .*FAIL" "$log"
	[ $rc = 0 ] || status=1
done

# The first run of each size verifies every transfer size; later runs 1 GiB.
# A device call may run 10 minutes and the device check must end within 8:
# runs that would start after BUDGET_S seconds (default 300) are skipped,
# and the summary says how many ran.
for run in $(seq 1 "$runs"); do
	if [ "$SECONDS" -gt "${BUDGET_S:-300}" ]; then
		echo "time budget spent: runs $run-$runs skipped"
		break
	fi
	for payload in 1416 8916; do
		verify=1G
		[ "$run" = 1 ] && [ "$payload" = 1416 ] && verify=1,1M,256M,1G
		step "bench-gpu run $run/$runs ($payload B fragments) at $SECONDS s"
		timeout 120 "$bin"/bench-gpu --file-prefix dj_bench -- --verify $verify --bench 1G \
			--payload $payload --json "$out/bench-$payload-run$run.json" ${BENCH_ARGS:-} \
			>"$out/bench-$payload-run$run.log" 2>&1
		rc=$?
		grep "^placer:" "$out/bench-$payload-run$run.log"
		sed -n '/^what /,$p' "$out/bench-$payload-run$run.log" | grep -v '^[{ ]*"\|^\]}'
		[ $rc = 0 ] || { echo "bench-gpu: exit $rc"; status=1; }
		[ "$payload" = 1416 ] || continue
		# The same run's baseline: the defaults before gather bursts.
		timeout 120 "$bin"/bench-gpu --file-prefix dj_bench -- --verify 1G --mover gather \
			--bench 1G --mode persistent --payload 1416 --gather-burst 32 --blocks 66 \
			--json "$out/before-1416-run$run.json" ${BENCH_ARGS:-} \
			>"$out/before-1416-run$run.log" 2>&1 || echo "bench-gpu (before): exit $?"
		grep "^placer:" "$out/before-1416-run$run.log" | sed 's/^/before: /'
		grep -E "^(verify|  gather|gather persistent)" "$out/before-1416-run$run.log" |
			sed 's/^/before: /'
	done
done

# Blocks:gather-burst pairs, the likeliest best first; 33 = SMs/4 on the
# H100 (the new default), 66 = SMs/2 with bursts of 32 (the default
# before). Pairs that would start after SWEEP_BUDGET_S seconds (default
# 480) are skipped, so that the whole check ends inside a device call.
step "gather sweep at 1416 B (persistent, 256 MiB): blocks x gather burst at $SECONDS s"
for pair in 33:128 44:128 33:256 44:256 33:64 44:64 33:32 44:32 66:32 66:128 132:128 132:32 \
	264:128 264:32; do
	blocks=${pair%:*}
	burst=${pair#*:}
	if [ "$SECONDS" -gt "${SWEEP_BUDGET_S:-480}" ]; then
		echo "time budget spent: sweep from $pair on skipped"
		break
	fi
	timeout 60 "$bin"/bench-gpu --file-prefix dj_bench -- --verify none --bench 256M \
		--payload 1416 --mode persistent --blocks $blocks --gather-burst $burst --reps 3 \
		--json "$out/sweep-b$blocks-u$burst.json" >"$out/sweep-b$blocks-u$burst.log" 2>&1 ||
		echo "sweep blocks $blocks burst $burst: failed"
	grep -E "^  gather persistent" "$out/sweep-b$blocks-u$burst.log" |
		sed "s/^/blocks $blocks burst $burst: /"
done

step "bench-gpu-send (256 MiB GPU source: staged ring vs whole copy)"
"$bin"/bench-gpu-send -l 0-3 --file-prefix dj_bgs -- --gpu 0 --size 256M --reps 5 \
	--json "$out/gpu-send.json" 2>&1 | tee "$out/gpu-send.log"
[ "${PIPESTATUS[0]}" = 0 ] || status=1

# Inside one device call (10 minutes) only where the steps before left
# room; else run it alone with ONLY=queues.
if [ "$SECONDS" -lt "${QUEUES_AFTER_S:-420}" ]; then
	queues_step
else
	step "receive spread over queues: skipped at $SECONDS s (run ONLY=queues)"
fi

step "summary"
grep -h "mover auto" "$out"/test_gpu_dp.log
for payload in 1416 8916; do
	echo "-- $payload B, $(ls "$out"/bench-$payload-run*.log | wc -l) runs: GB/s (best of each run's reps)"
	for what in "cudaMemcpy H2D" "gather persistent mbuf" "gather oneshot mbuf" \
		"read probe mbuf" "copy chunks mbuf" "verify 1073741824 B staged" \
		"verify 1073741824 B copy"; do
		printf '  %-28s' "$what"
		for f in "$out"/bench-$payload-run*.log; do
			# Columns after the 40 of "what": bytes, ms, GB/s, worst GB/s.
			grep -m1 "^$what" "$f" | awk '{ split(substr($0, 41), c, " "); printf " %s", c[3] }'
		done
		echo
	done
	echo "  share of the read probe (mbuf layout), per run:"
	for f in "$out"/bench-$payload-run*.log; do
		grep -E "^  (gather (persistent|oneshot)|copy chunks) mbuf" "$f" | tr -s ' ' |
			sed 's/^/   /'
	done
	[ "$payload" = 1416 ] || continue
	echo "-- 1416 B, the defaults before gather bursts (x32, 66 blocks), same runs:"
	for what in "gather persistent mbuf" "verify 1073741824 B staged"; do
		printf '  %-28s' "$what"
		for f in "$out"/before-1416-run*.log; do
			grep -m1 "^$what" "$f" | awk '{ split(substr($0, 41), c, " "); printf " %s", c[3] }'
		done
		echo
	done
	echo "  share of the read probe (mbuf layout), per run:"
	for f in "$out"/before-1416-run*.log; do
		grep -E "^  gather persistent mbuf" "$f" | tr -s ' ' | sed 's/^/   /'
	done
done
grep -hE "^(mode|staged|whole) " "$out"/gpu-send.log
echo "device check: $([ $status = 0 ] && echo PASS || echo FAIL)"
exit $status
