#!/usr/bin/env bash
# GPU operations on the device machine (H100), in one call.
#
# Here, first:   scripts/ops-device-check.sh --carry [build-dir]   (default build-ops)
#   builds test_gpu_ops, test_gpu_ops_transformer, test_remote_ops and
#   bench-ops and copies them, with libcunit and libcjson, into .carry/ops
#   (git-ignored).
# There, through the device tool: carry [".carry/ops"],
#   command: bash scripts/ops-device-check.sh
#   1. the GPU operation tests: every op against the CPU reference at several
#      shapes, odd sizes included, tolerances per dtype (see
#      tests/unit/gpu_ops/gpu_test_util.h); then the transformer ops
#      (embedding and its index check, narrow, slice_write, argmax, rms_norm,
#      the fused attention);
#   2. every op through the server's GPU runtime (test_remote_ops gpu:
#      slice_write in place, embedding's refusal);
#   3. bench-ops: fp16 matmul through Djinn vs cuBLAS direct, memory-bound ops
#      vs the copy bandwidth, fused vs unfused attention (decode, prefill);
#   4. compute-sanitizer memcheck over both op tests (time-boxed).
# Logs and JSON go to $OUT (or /tmp/ops-check); a short table comes last.
#   BENCH_ARGS="--reps 20" bash scripts/ops-device-check.sh
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
bin=$top/.carry/ops

if [ "${1:-}" = --carry ]; then
	set -e
	builddir=${2:-build-ops}
	cd "$top"
	[ -f "$builddir/build.ninja" ] || bash scripts/setup.sh "$builddir"
	tests="tests/unit/gpu_ops/test_gpu_ops tests/unit/gpu_ops/test_gpu_ops_transformer
		tests/integration/runtime/test_remote_ops"
	ninja -C "$builddir" apps/bench-ops $tests >/dev/null
	mkdir -p "$bin"
	for t in apps/bench-ops $tests; do
		cp "$builddir/$t" "$bin"/
		strip "$bin/$(basename "$t")"
	done
	# The device machine has no CUnit or cJSON.
	bash scripts/carry-libs.sh "$bin" "$bin"/bench-ops "$bin"/test_gpu_ops \
		"$bin"/test_gpu_ops_transformer "$bin"/test_remote_ops
	du -sh "$bin"
	exit 0
fi

out=${OUT:-/tmp/ops-check}
mkdir -p "$out"
export LD_LIBRARY_PATH=$bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
status=0
step() { echo; echo "=== $*"; }

step "GPU and libraries"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm \
	--format=csv,noheader || true
# The binaries look in /usr/local/cuda/lib64 (rpath); else take PyTorch's cuBLAS.
if ldd "$bin"/bench-ops | grep -q "libcublas.*not found"; then
	lib=$(find / -name 'libcublas.so.13' -not -path '/proc/*' 2>/dev/null | head -n 1)
	[ -n "$lib" ] && export LD_LIBRARY_PATH=$(dirname "$lib"):$LD_LIBRARY_PATH
fi
ldd "$bin"/bench-ops | grep -E "cublas|not found"

for t in test_gpu_ops test_gpu_ops_transformer; do
	step "GPU operation tests: $t"
	"$bin"/$t >"$out/$t.log" 2>&1
	rc=$?
	echo "$t: exit $rc"
	grep -E "test seed|^ +(suites|tests|asserts)|FAILED|failed|element [0-9]+:|got -?[0-9]+ \"" \
		"$out/$t.log" | head -n 40
	[ $rc = 0 ] || status=1
done

step "every op through the GPU runtime (test_remote_ops gpu)"
"$bin"/test_remote_ops gpu >"$out/remote_ops.log" 2>&1
rc=$?
echo "test_remote_ops gpu: exit $rc"
grep -E "seed|^ +(suites|tests|asserts)|FAILED|differs|has no remote case" "$out/remote_ops.log" |
	head -n 20
[ $rc = 0 ] || status=1

step "bench-ops"
"$bin"/bench-ops --json "$out/bench.json" ${BENCH_ARGS:-} >"$out/bench.log" 2>&1
[ $? = 0 ] || status=1
grep -vE '^\{' "$out/bench.log"

for t in test_gpu_ops_transformer test_gpu_ops; do
	step "compute-sanitizer memcheck, $t (at most ${MEMCHECK_S:-120} s)"
	if ! command -v compute-sanitizer >/dev/null; then
		echo "compute-sanitizer not found"
		break
	fi
	timeout "${MEMCHECK_S:-120}" compute-sanitizer --tool memcheck --error-exitcode 9 \
		"$bin"/$t >"$out/memcheck_$t.log" 2>&1
	rc=$?
	case $rc in
	0) echo "memcheck: clean" ;;
	124) echo "memcheck: stopped at the time limit; $(grep -c 'Invalid' "$out/memcheck_$t.log") errors so far" ;;
	*) echo "memcheck: exit $rc"; grep -m 10 -E "Invalid|ERROR SUMMARY" "$out/memcheck_$t.log"; status=1 ;;
	esac
done

for t in test_gpu_ops test_gpu_ops_transformer; do
	step "summary: worst error / tolerance per op and dtype ($t)"
	sed -n '/^op  *dtype/,$p' "$out/$t.log"
done
step "summary: bench"
sed -n '/^bench-ops on/,/^host cost/p' "$out/bench.log"
sed -n '/^attention, head dim/,/^$/p' "$out/bench.log"
echo "ops device check: $([ $status = 0 ] && echo PASS || echo FAIL)"
exit $status
