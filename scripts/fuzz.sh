#!/usr/bin/env bash
# Build the libFuzzer targets (tests/fuzz, clang + ASan + UBSan, build folder
# build-fuzz) and run each for SECONDS (default 10); fails if any target
# crashes, leaks, hangs (FUZZ_TIMEOUT, default 120 s, on one input) or
# breaks an invariant.
#   scripts/fuzz.sh [SECONDS] [TARGET...]   fuzz (all targets by default)
#   scripts/fuzz.sh --seeds                 regenerate tests/fuzz/corpus/*/ seeds
#                                           (minimised with -merge=1)
#   scripts/fuzz.sh --coverage [TARGET...]  line coverage of the corpora (llvm-cov)
# Each target starts from its committed corpus (tests/fuzz/corpus/TARGET:
# seeds from gen_seeds plus regress-* inputs that once failed) and seeds
# freshly generated from the current code; what it finds stays in
# build-fuzz/corpus/TARGET for the next run, failures in build-fuzz/artifacts.
# Run scripts/setup.sh first on a fresh machine (it installs clang), or let
# scripts/test.sh do both. Each target's result also goes to
# build-fuzz/testlog.json (one JSON line each) for test.sh's closing count.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bdir=build-fuzz
targets_all=(fuzz_dp_wire fuzz_dp_channel fuzz_ctl_server fuzz_ctl_client fuzz_ctl_bin fuzz_npy
	fuzz_op_attrs)

mode=fuzz
secs=10
if [ "${1:-}" = --seeds ] || [ "${1:-}" = --coverage ]; then
	mode=${1#--}
	shift
elif [ $# -gt 0 ]; then
	secs=$1
	shift
fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${targets_all[@]}")

# One JSON line per target for scripts/test.sh's closing count; none until run.
rm -f "$bdir/testlog.json"
cc=$(command -v clang-14 || command -v clang || true)
if [ -z "$cc" ]; then
	echo "fuzz: clang not found: run scripts/setup.sh (it installs clang-14 and libFuzzer)" >&2
	exit 1
fi
if [ ! -f "$bdir/build.ninja" ]; then
	CC=$cc meson setup "$bdir" -Dfuzz=enabled >/dev/null
fi
# Quiet when it builds; the whole log when it does not.
if ! ninja -C "$bdir" >"$bdir/build.log" 2>&1; then
	cat "$bdir/build.log" >&2
	echo "fuzz: the fuzz build failed" >&2
	exit 1
fi

# Fresh seeds from the project's own encoders (they follow format changes),
# in a folder of this run's own: two runs may fuzz different targets at once.
seeds="$bdir/seeds.$$"
trap 'rm -rf "$seeds"' EXIT
"$bdir/tests/fuzz/gen_seeds" "$seeds" >/dev/null

if [ "$mode" = seeds ]; then
	# Only the seeds that add coverage to the regress-* inputs: libFuzzer's
	# -merge=1 picks them (naming its copies by SHA-1), the named originals
	# are kept.
	for t in "${targets_all[@]}"; do
		c="tests/fuzz/corpus/$t"
		m="$bdir/merged/$t"
		mkdir -p "$c"
		find "$c" -type f ! -name 'regress-*' -delete
		rm -rf "$m"
		mkdir -p "$m"
		"$bdir/tests/fuzz/$t" -merge=1 "$m" "$c" "$seeds/$t" >"$bdir/merged/$t.log" 2>&1
		kept=0
		for f in "$seeds/$t"/*; do
			if [ -f "$m/$(sha1sum <"$f" | cut -c1-40)" ]; then
				cp "$f" "$c/"
				kept=$((kept + 1))
			fi
		done
		echo "fuzz: $t: $kept of $(ls "$seeds/$t" | grep -c .) seeds kept"
	done
	echo "fuzz: seeds regenerated in tests/fuzz/corpus (regress-* inputs kept)"
	exit 0
fi

if [ "$mode" = coverage ]; then
	# The same targets built for source-based coverage, run once over
	# every corpus input (-runs=0): what the corpora reach, line by line.
	cdir=build-fuzz-cov
	prof="-fprofile-instr-generate -fcoverage-mapping"
	[ -f "$cdir/build.ninja" ] || CC=$cc meson setup "$cdir" -Dfuzz=enabled \
		-Dc_args="$prof" -Dc_link_args="$prof" >/dev/null
	ninja -C "$cdir" >/dev/null
	for t in "${targets[@]}"; do
		rm -rf "$cdir/prof/$t"
		mkdir -p "$cdir/prof/$t" "$bdir/corpus/$t"
		LLVM_PROFILE_FILE="$cdir/prof/$t/%p.profraw" "$cdir/tests/fuzz/$t" -runs=0 \
			"$bdir/corpus/$t" "tests/fuzz/corpus/$t" "$seeds/$t" >"$cdir/prof/$t.log" 2>&1
		llvm-profdata-14 merge -sparse "$cdir/prof/$t"/*.profraw -o "$cdir/prof/$t.profdata"
		llvm-cov-14 report "$cdir/tests/fuzz/$t" -instr-profile="$cdir/prof/$t.profdata" \
			>"$cdir/prof/$t.txt"
		echo "coverage: $t ($(ls "$bdir/corpus/$t" "tests/fuzz/corpus/$t" "$seeds/$t" |
			grep -c .) inputs; per file: $cdir/prof/$t.txt)"
		# Columns: file, regions (3), functions (3), lines (3), branches (3).
		awk '/\.c |^TOTAL/ {printf "  %-34s lines %5s, missed %5s: %7s; branches %7s\n",
			$1, $8, $9, $10, $13}' "$cdir/prof/$t.txt"
	done
	exit 0
fi

# An input that runs this long is a hang (inputs take milliseconds; the one
# hang found so far ran for hours). Not less: a loaded VM stalls niced
# processes for long at times (49 s was seen while other jobs filled this
# 2-core machine), and a stall is not a hang.
timeout=${FUZZ_TIMEOUT:-120}
status=0
for t in "${targets[@]}"; do
	work="$bdir/corpus/$t"
	log="$bdir/logs/$t.$$.log" # this run's own: runs may overlap
	mkdir -p "$work" "$bdir/artifacts" "$bdir/logs"
	dict=()
	case $t in
	fuzz_ctl_*) dict=(-dict=tests/fuzz/dict/ctl.dict) ;;
	fuzz_npy) dict=(-dict=tests/fuzz/dict/npy.dict) ;;
	fuzz_op_attrs) dict=(-dict=tests/fuzz/dict/op_attrs.dict) ;;
	esac
	rc=0
	"$bdir/tests/fuzz/$t" -max_total_time="$secs" -timeout="$timeout" -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$bdir/artifacts/$t-" "${dict[@]}" \
		"$work" "tests/fuzz/corpus/$t" "$seeds/$t" >"$log" 2>&1 || rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
	cov=$(grep -o 'cov: [0-9]* ft: [0-9]* corp: [0-9]*/[0-9a-zA-Z]*' "$log" | tail -n 1)
	line="$t: ${execs:-?} execs, ${speed:-?}/s, ${cov:-no coverage line}"
	if [ $rc -ne 0 ]; then
		status=1
		line="$line: FAILED (rc $rc, see $log)"
		grep -E 'ERROR|invariant|SUMMARY|Test unit written' "$log" | head -n 8 >&2 || true
	fi
	echo "fuzz: $line"
	printf '{"name": "%s", "result": "%s"}\n' "$t" "$([ $rc -eq 0 ] && echo OK || echo FAIL)" \
		>>"$bdir/testlog.json"
done
if [ $status -eq 0 ]; then
	echo "fuzz: ${#targets[@]} targets, ${secs} s each: no failure"
else
	echo "fuzz: failures (inputs in $bdir/artifacts); reproduce with $bdir/tests/fuzz/TARGET FILE" >&2
fi
exit $status
