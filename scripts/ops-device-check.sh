#!/usr/bin/env bash
# GPU operations on the device machine (H100), in one call.
#
# Here, first:   scripts/ops-device-check.sh --carry [build-dir]   (default build-ops)
#   builds test_gpu_ops and bench-ops and copies them, with libcunit, into
#   .carry/ops (git-ignored).
# There, through the device tool: carry [".carry/ops"],
#   command: bash scripts/ops-device-check.sh
#   1. the GPU operation tests: every op against the CPU reference at several
#      shapes, odd sizes included, tolerances per dtype (see the test's head);
#   2. bench-ops: fp16 matmul through Djinn vs cuBLAS direct, memory-bound ops
#      vs the copy bandwidth;
#   3. compute-sanitizer memcheck over the tests (time-boxed).
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
	ninja -C "$builddir" apps/bench-ops tests/unit/gpu_ops/test_gpu_ops >/dev/null
	mkdir -p "$bin"
	cp "$builddir"/apps/bench-ops "$builddir"/tests/unit/gpu_ops/test_gpu_ops "$bin"/
	strip "$bin"/bench-ops "$bin"/test_gpu_ops
	# The device machine has no CUnit.
	cp "$(ldconfig -p | awk '/libcunit.so.1 /{print $NF; exit}')" "$bin"/
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

step "GPU operation tests"
"$bin"/test_gpu_ops >"$out/test.log" 2>&1
rc=$?
echo "test_gpu_ops: exit $rc"
grep -E "test seed|^ +(suites|tests|asserts)|FAILED|gpu run failed|element [0-9]+:" "$out/test.log" |
	head -n 40
[ $rc = 0 ] || status=1

step "bench-ops"
"$bin"/bench-ops --json "$out/bench.json" ${BENCH_ARGS:-} >"$out/bench.log" 2>&1
[ $? = 0 ] || status=1
grep -vE '^\{' "$out/bench.log"

step "compute-sanitizer memcheck (at most 150 s)"
if command -v compute-sanitizer >/dev/null; then
	timeout 150 compute-sanitizer --tool memcheck --error-exitcode 9 \
		"$bin"/test_gpu_ops >"$out/memcheck.log" 2>&1
	rc=$?
	case $rc in
	0) echo "memcheck: clean" ;;
	124) echo "memcheck: stopped at the time limit; $(grep -c 'Invalid' "$out/memcheck.log") errors so far" ;;
	*) echo "memcheck: exit $rc"; grep -m 10 -E "Invalid|ERROR SUMMARY" "$out/memcheck.log"; status=1 ;;
	esac
else
	echo "compute-sanitizer not found"
fi

step "summary: worst error / tolerance per op and dtype"
sed -n '/^op  *dtype/,$p' "$out/test.log"
step "summary: bench"
sed -n '/^bench-ops on/,/^host cost/p' "$out/bench.log"
echo "ops device check: $([ $status = 0 ] && echo PASS || echo FAIL)"
exit $status
