#!/usr/bin/env bash
# Issue 17, goals 1 and 4: where a small transfer's time goes on the device
# machine, from the repository root with the binaries of
# scripts/dptrace-carry.sh in .carry/dptrace. The layout of
# scripts/dpperf-device-check.sh's q=1 memif pair: pure polling
# (--idle-sleep-us 0), receiver lcore on CPU 0 and its main (control)
# thread on CPU 1, sender lcore on CPU 8 and main on CPU 9, --no-crc
# --frame 9014 --initial-credit 4096, memif bsize 9216.
# ROUNDS rounds (default 3), in each: transfers of SIZES (default
# 4K,64K,1M; ITERS each, default 200) and a 64 B pingpong (COUNT round
# trips, default 10000), by djinn-bench-base (when carried) and
# djinn-bench-plain, interleaved; a table of their p50s (median and
# min-max over the rounds). Then one traced run of each (djinn-bench built
# with -Ddp_trace=true, DJ_DP_TRACE set) and the legs of every transfer
# by scripts/dptrace.py. EXTRA adds djinn-bench options to every run
# (e.g. "--idle interrupt --caller-runs"). Logs, JSON and traces in $OUT/dptrace-check
# (OUT default /tmp). About a minute.
#   ROUNDS=3 SIZES=4K,64K,1M ITERS=200 COUNT=10000 bash scripts/dptrace-device-check.sh
set -u
bin=$(pwd)/.carry/dptrace
# A folder of its own under OUT: it is emptied first.
out=${OUT:-/tmp}/dptrace-check
rounds=${ROUNDS:-3}
sizes=${SIZES:-4K,64K,1M}
iters=${ITERS:-200}
count=${COUNT:-10000}
extra=${EXTRA:-}
export LD_LIBRARY_PATH=$bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
rm -rf "$out"
mkdir -p "$out"
ncpu=$(nproc)
py=$(command -v python3 || echo /usr/bin/python3)
status=0
. "$(dirname "$0")/device-env.sh"
trap device_cleanup EXIT
device_banner
echo "tree $(cat "$bin/rev" 2>/dev/null), base $(cat "$bin/base-rev" 2>/dev/null || echo none)"
device_hugepages 1024 512 2048

# pair BINARY TAG MODE_ARGS...: one memif pair, q=1, as dpperf's.
pair() {
	local b=$1 tag=$2
	shift 2
	device_memif_pair "$bin/$b" "0@$((1 % ncpu)),1@0" "0@$((9 % ncpu)),1@$((8 % ncpu))" "$tag" \
		"$@" --no-crc --frame 9014 --idle-sleep-us 0 --initial-credit 4096 $extra
}

kinds=(plain)
[ -x "$bin/djinn-bench-base" ] && kinds=(base plain)
for r in $(seq 1 "$rounds"); do
	for k in "${kinds[@]}"; do
		pair "djinn-bench-$k" "$k-transfer-r$r" --mode transfer --sizes "$sizes" --iters "$iters"
		pair "djinn-bench-$k" "$k-pingpong-r$r" --mode pingpong --sizes 64 --count "$count"
	done
done

echo "=== p50 us of the sender's clock, median (min-max) over $rounds rounds"
"$py" - "$out" "$rounds" "${kinds[@]}" <<'PY'
import json, statistics, sys
out, rounds, kinds = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def rows(path):
    try:
        return {r["size"]: r["p50_us"] for r in json.load(open(path))["rows"]}
    except (OSError, ValueError, KeyError):
        return {}
table = {}
for k in kinds:
    for mode in ("transfer", "pingpong"):
        for r in range(1, rounds + 1):
            for size, p50 in rows("%s/%s-%s-r%d-send.json" % (out, k, mode, r)).items():
                table.setdefault((mode, size), {}).setdefault(k, []).append(p50)
print("%-9s %9s" % ("mode", "size") + "".join(" %24s" % k for k in kinds))
summary = []
for (mode, size), per in sorted(table.items()):
    cells = []
    for k in kinds:
        v = per.get(k, [])
        cells.append(" %24s" % ("%.1f (%.1f-%.1f)" % (statistics.median(v), min(v), max(v))
                                if v else "-"))
        summary.append({"mode": mode, "size": size, "kind": k, "p50_us": v})
    print("%-9s %9d" % (mode, size) + "".join(cells))
json.dump(summary, open(out + "/p50.json", "w"))
PY

echo "=== traced runs (djinn-bench -Ddp_trace=true)"
# A pingpong round trip leaves about 11 records on each lcore: room for
# COUNT round trips and more.
export DJ_DP_TRACE_RECS=$((count * 16 > 131072 ? count * 16 : 131072))
DJ_DP_TRACE="$out/trace-transfer" pair djinn-bench traced-transfer --mode transfer \
	--sizes "$sizes" --iters "$iters"
DJ_DP_TRACE="$out/trace-pingpong" pair djinn-bench traced-pingpong --mode pingpong \
	--sizes 64 --count "$count"
grep -h '^transfer\|^pingpong' "$out/traced-transfer-send.log" "$out/traced-pingpong-send.log"
"$py" scripts/dptrace.py --json "$out/legs.json" "$out"/trace-*.tsv || status=1
echo "logs, JSON and traces in $out"
exit $status
