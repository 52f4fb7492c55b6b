#!/usr/bin/env bash
# Set up (idempotent) and run every test: the unit and integration suites, the
# unit suite again under AddressSanitizer and UBSan, then each fuzz target for
# 10 seconds (scripts/fuzz.sh).
#   scripts/test.sh [meson test args...]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash scripts/setup.sh build
# Integration tests try hugepages first and fall back to --no-huge themselves;
# reserving some here (as root) exercises the hugepage path too.
[ "$(id -u)" = 0 ] && bash scripts/hugepages.sh 512 >/dev/null 2>&1 || true
status=0
meson test -C build --print-errorlogs --num-processes 2 "$@" || status=$?
# The sanitizer build leaves CUDA out: ASan and the CUDA runtime do not mix.
bash scripts/setup.sh build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dcuda=disabled >/dev/null
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	meson test -C build-asan --suite unit --print-errorlogs --num-processes 2 || status=$?
# Every libFuzzer target for a short while (scripts/fuzz.sh; longer runs by hand).
bash scripts/fuzz.sh 10 || status=$?
# One plain closing line over all runs (meson's own summary is per run).
python3 - build/meson-logs/testlog.json build-asan/meson-logs/testlog.json \
	build-fuzz/testlog.json <<'PY' || true
import json, sys
counts = {"OK": 0, "FAIL": 0, "SKIP": 0}
for path in sys.argv[1:]:
    try:
        lines = open(path).readlines()
    except OSError:
        continue
    for line in lines:
        r = json.loads(line)["result"]
        key = "OK" if r in ("OK", "EXPECTEDFAIL") else "SKIP" if r == "SKIP" else "FAIL"
        counts[key] += 1
print(f"{counts['OK']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped")
PY
exit $status
