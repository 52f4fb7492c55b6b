#!/usr/bin/env bash
# Set up (idempotent) and run every test: the unit and integration suites, the
# unit suite again under AddressSanitizer and UBSan, each fuzz target for 10
# seconds (scripts/fuzz.sh), then the Python frontend's pytest suite
# (python/tests, against build/libdjinn.so and a djinn-dp of its own).
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
# The Python frontend: Debian's interpreter (python3 on PATH may lack torch).
# -rs prints each skip's reason; the junit file feeds the tally below.
pyxml=build/meson-logs/pytest.xml
rm -f "$pyxml"
/usr/bin/python3 -m pytest python/tests -q -rs -p no:cacheprovider --junitxml="$pyxml" ||
	status=$?
# One plain closing line over every run (each prints its own summary):
# meson's and fuzz.sh's testlog.json files count a test each, pytest's junit
# file a case each.
python3 - build/meson-logs/testlog.json build-asan/meson-logs/testlog.json \
	build-fuzz/testlog.json "$pyxml" <<'PY' || true
import json, os, sys
import xml.etree.ElementTree as ET
counts = {"OK": 0, "FAIL": 0, "SKIP": 0}
for path in sys.argv[1:]:
    if path.endswith(".xml"):
        if not os.path.exists(path):
            counts["FAIL"] += 1  # pytest did not even start
            continue
        for case in ET.parse(path).getroot().iter("testcase"):
            tags = {child.tag for child in case}
            key = "FAIL" if tags & {"failure", "error"} else "SKIP" if "skipped" in tags else "OK"
            counts[key] += 1
        continue
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
