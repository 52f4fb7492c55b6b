#!/usr/bin/env bash
# Regenerate the charts in docs/img from the benchmark JSON kept in
# docs/bench (small files), optionally running the host benchmarks first.
#   scripts/plots.sh                  charts from docs/bench as it is
#   scripts/plots.sh --run [N]        first N runs (default 3) of
#                                     scripts/bench-memif.sh --quick and of
#                                     bench-fallback, replacing docs/bench/host
# GPU charts come from docs/bench/gpu/*.json: the JSON files the device check
# writes (OUT=/tmp/gpu-check bash scripts/gpu-device-check.sh leaves
# bench-1416.json and bench-8916.json there); copy them in and run this again.
# BUILD (default build) names the build folder.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
build=${BUILD:-build}
data=docs/bench
py=/usr/bin/python3

if [ "${1:-}" = --run ]; then
	runs=${2:-3}
	[ -x "$build/apps/djinn-bench" ] || { echo "plots: build first ($build)" >&2; exit 1; }
	rm -rf "$data/host"
	mkdir -p "$data/host"
	for i in $(seq "$runs"); do
		tmp=$(mktemp -d /tmp/djinn-plots.XXXXXX)
		load0=$(cut -d' ' -f1-3 /proc/loadavg)
		OUT=$tmp bash scripts/bench-memif.sh "$build" --quick >"$tmp/table.txt" 2>&1 ||
			{ cat "$tmp/table.txt"; exit 1; }
		load1=$(cut -d' ' -f1-3 /proc/loadavg)
		mkdir -p "$data/host/run-$i"
		cp "$tmp"/*.json "$data/host/run-$i/"
		# What plot-bench.py says under the charts: when, where, how loaded.
		"$py" - "$data/host/run-$i/meta.json" "$load0" "$load1" <<'PY'
import json, os, subprocess, sys, time
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
            if l.startswith("model name")), "?")
rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                     text=True).stdout.strip()
json.dump({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count(),
           "cpu": cpu, "load_before": sys.argv[2], "load_after": sys.argv[3], "rev": rev,
           "commands": ["scripts/bench-memif.sh --quick", "bench-fallback --rounds 3"]},
          open(sys.argv[1], "w"), indent=1)
PY
		"$build/apps/bench-fallback" --rounds 3 --json >"$data/host/fallback-$i.json"
		rm -rf "$tmp"
		echo "plots: run $i of $runs done (load $load0 -> $load1)"
	done
fi

args=()
for d in "$data"/host/run-*/; do [ -d "$d" ] && args+=(--memif "$d"); done
for f in "$data"/host/fallback-*.json; do [ -f "$f" ] && args+=(--fallback "$f"); done
for f in "$data"/gpu/bench-*.json; do [ -f "$f" ] && args+=(--gpu "$f"); done
[ ${#args[@]} -gt 0 ] || { echo "plots: no benchmark JSON in $data (scripts/plots.sh --run)" >&2; exit 1; }
"$py" scripts/plot-bench.py "${args[@]}" --out docs/img
