#!/usr/bin/env bash
# What an idle lcore does, measured: memif transfer goodput and the 64 B
# round trip with each idle mode (djinn-bench --idle: nap, interrupt,
# poll; "interrupt+caller-runs" adds djinn-bench --caller-runs, each + one
# more option) against kernel TCP on loopback, in ROUNDS interleaved rounds (each
# round runs every mode, then TCP, through scripts/bench-memif.sh), then
# medians (min-max) over the rounds and the ratios to TCP.
#   ROUNDS=5 MODES="nap interrupt interrupt+caller-runs" SIZES=4K,64K,256K,1M,4M,16M,64M ITERS=100 \
#     scripts/bench-idle.sh [build-dir]
# Per-run JSON under $OUT (default /tmp/djinn-bench-idle.<pid>); the summary
# also as $OUT/summary.json. The layout (CPUs, IDLE_US, ...) is
# bench-memif.sh's.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
builddir=${1:-build}
rounds=${ROUNDS:-5}
modes=${MODES:-nap interrupt interrupt+caller-runs}
export SIZES=${SIZES:-4K,64K,256K,1M,4M,16M,64M} ITERS=${ITERS:-100}
out=${OUT:-/tmp/djinn-bench-idle.$$}
mkdir -p "$out"

for r in $(seq 1 "$rounds"); do
	echo "== round $r ($(date +%T), load $(cut -d' ' -f1 /proc/loadavg))"
	for m in $modes; do
		OUT=$out/$m-r$r STEPS="nocrc pingpong" IDLE_MODE=${m//+/ --} \
			bash "$here/bench-memif.sh" "$builddir" >"$out/$m-r$r.txt" 2>&1 ||
			echo "bench-idle: $m round $r failed ($out/$m-r$r.txt)" >&2
	done
	OUT=$out/tcp-r$r STEPS=tcp bash "$here/bench-memif.sh" "$builddir" >"$out/tcp-r$r.txt" 2>&1 ||
		echo "bench-idle: tcp round $r failed" >&2
done

/usr/bin/python3 - "$out" "$rounds" "$modes" <<'PY'
import json, os, statistics, sys
out, rounds, modes = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
def rows(path, key):
    try:
        return {r["size"]: r[key] for r in json.load(open(path))["rows"]}
    except (OSError, ValueError, KeyError):
        return {}
def runs(kind, name, key):
    per = {}
    for r in range(1, rounds + 1):
        for size, v in rows(os.path.join(out, "%s-r%d" % (kind, r), name), key).items():
            per.setdefault(size, []).append(v)
    return per
med = lambda v: statistics.median(v) if v else 0.0
fmt = lambda v: "%.2f (%.2f-%.2f)" % (med(v), min(v), max(v)) if v else "-"
tcp = runs("tcp", "tcp-send.json", "gbps")
gbps = {m: runs(m, "transfer-nocrc-send.json", "gbps") for m in modes}
rtt = {m: runs(m, "pingpong-send.json", "p50_us") for m in modes}
print("Gbit/s, median (min-max) over %d rounds" % rounds)
print("| size | " + " | ".join("memif %s" % m for m in modes) + " | kernel TCP | " +
      " | ".join("%s / TCP" % m for m in modes) + " |")
print("|---" * (2 * len(modes) + 2) + "|")
summary = {"rounds": rounds, "modes": modes, "rows": [], "pingpong_p50_us": {}}
for size in sorted(tcp):
    t = tcp[size]
    label = "%d KiB" % (size >> 10) if size < 1 << 20 else "%d MiB" % (size >> 20)
    print("| %s | %s | %s | %s |" % (label, " | ".join(fmt(gbps[m].get(size, [])) for m in modes),
          fmt(t), " | ".join("%.2fx" % (med(gbps[m].get(size, [])) / med(t) if med(t) else 0)
                             for m in modes)))
    summary["rows"].append({"size": size, "tcp_gbps": t,
                            **{m + "_gbps": gbps[m].get(size, []) for m in modes}})
for m in modes:
    v = rtt[m].get(64, [])
    print("64 B round trip p50, %s: %s us" % (m, fmt(v)))
    summary["pingpong_p50_us"][m] = v
json.dump(summary, open(os.path.join(out, "summary.json"), "w"))
print("JSON in", out)
PY
