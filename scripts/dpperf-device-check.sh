#!/usr/bin/env bash
# Issue 17, goals 1 and 2, on the device machine (16 cores, root, no DPDK
# install, no `ip`), from the repository root with the binaries of
# scripts/dpperf-carry.sh in .carry/dpperf. Two djinn-bench processes on
# net_memif, pure polling (idle naps off), one polling lcore per queue
# pair on its own core: receiver lcores on CPUs 0..q-1, sender lcores on
# 8..8+q-1, each main (control) thread on the next free CPU (with 8 queues
# it shares the last lcore's CPU). Each transfer is striped over q
# sessions, one per queue (djinn-bench --queues q --stripes q). Next to it,
# in every round, memcpy with q threads (djinn-bench --mode memcpy) and one
# kernel TCP stream on loopback. ROUNDS rounds (default 5), the kinds
# interleaved within each round; then bench-proto (the CRC path). With
# INTR=1 (the default) each round also runs the one-queue pair with
# --idle interrupt (idle lcores sleep until a frame wakes them; row "1i")
# and with --idle interrupt --caller-runs (waiting threads run the
# sleeping lcore's loop: run to completion; row "1r").
# The control plane too (PARTS with "ctl"): djinn-dp with q queue pairs
# (host memory, --gpu none; lcores on CPUs 0..q-1) and djinn-bench --mode
# ctl as its client with q queues (CPUs 8..8+q-1): PUT and GET through the
# control plane over DPDK, striped over q stripes (parts of at least
# STRIPE_MIN, default 8M), against the same server's TCP fallback (kernel
# TCP), interleaved size by size in each run.
# A table of medians (min-max) over the rounds and ratios, then one JSON
# object; logs and per-run JSON in $OUT (default /tmp/dpperf-check).
#   ROUNDS=5 QUEUES="1 2 4 8" SIZES=4K,64K,1M,16M,64M,256M,1G INTR=1 PARTS="dp ctl" \
#     bash scripts/dpperf-device-check.sh
set -u
bin=$(pwd)/.carry/dpperf
out=${OUT:-/tmp/dpperf-check}
rounds=${ROUNDS:-5}
queues=${QUEUES:-1 2 4 8}
sizes=${SIZES:-4K,64K,1M,16M,64M,256M,1G}
# The control plane's rows (PUT and GET, over DPDK and its TCP fallback)
# stop at 256 MiB to keep the run short; CTL_SIZES=...,1G adds it.
ctl_sizes=${CTL_SIZES:-4K,64K,1M,16M,64M,256M}
idle_us=${IDLE_US:-0}
intr=${INTR:-1}
parts=${PARTS:-dp ctl}
stripe_min=${STRIPE_MIN:-8M}
has() { case " $parts " in *" $1 "*) return 0 ;; esac; return 1; }
export LD_LIBRARY_PATH=$bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
mkdir -p "$out"
ncpu=$(nproc)
py=$(command -v python3 || echo /usr/bin/python3)
# pin CPU CMD...: on CPU where taskset exists (gVisor may lack it).
pin() {
	local cpu=$1
	shift
	if command -v taskset >/dev/null; then taskset -c "$cpu" "$@"; else "$@"; fi
}
status=0
. "$(dirname "$0")/device-env.sh"
trap device_cleanup EXIT
device_banner
# 2 MiB hugepages for EAL (8 queues need 8 x 128 MiB of receive pool per
# process): raised to HUGEPAGES (default 4096), never lowered; djinn-bench
# falls back to --no-huge (1 GiB, enough for 4 queues) without them.
# Without 2048 free: --no-huge with 3 GiB per process (EAL's default
# there, 1 GiB, is too little for 8 queues' pools).
device_hugepages "${HUGEPAGES:-4096}" 2048 3072
grep -E 'HugePages_(Total|Free)' /proc/meminfo

# lcores FIRST_CPU Q: EAL --lcores mapping: main lcore 0 on the CPU after
# the Q polling lcores (the last one's with 8), lcores 1..Q on
# FIRST_CPU..FIRST_CPU+Q-1; CPUs wrap on a smaller machine.
lcores() {
	local first=$1 q=$2 main map
	main=$((q < 8 ? first + q : first + q - 1))
	map="0@$((main % ncpu))"
	for i in $(seq 1 "$q"); do map="$map,$i@$(((first + i - 1) % ncpu))"; done
	echo "$map"
}

# memif Q ROUND [interrupt|rtc]: one striped run, q queues and q stripes;
# with interrupt, idle lcores sleep on the rx interrupt (tag memif-q<Q>i),
# with rtc also waiting threads run their loop (tag memif-q<Q>r).
memif() {
	local q=$1 r=$2 tag="memif-q$1-r$2"
	local common=(--mode transfer --sizes "$sizes" --no-crc --queues "$q" --stripes "$q"
		      --idle-sleep-us "$idle_us" --initial-credit 4096)
	case "${3:-}" in
	interrupt) tag="memif-q$1i-r$2"; common+=(--idle interrupt) ;;
	rtc) tag="memif-q$1r-r$2"; common+=(--idle interrupt --caller-runs) ;;
	esac
	device_memif_pair "$bin"/djinn-bench "$(lcores 0 "$q")" "$(lcores 8 "$q")" "$tag" \
		"${common[@]}"
}

tcp() {
	local r=$1 port=$((47200 + $1))
	pin 0 "$bin"/djinn-bench --mode tcp --role recv --sizes "$sizes" --tcp-port "$port" \
		--json "$out/tcp-r$r-recv.json" >"$out/tcp-r$r-recv.log" 2>&1 &
	pids=($!)
	pin $((8 % ncpu)) "$bin"/djinn-bench --mode tcp --role send --sizes "$sizes" \
		--tcp-port "$port" --json "$out/tcp-r$r.json" >"$out/tcp-r$r.log" 2>&1 ||
		{ echo "tcp round $r failed"; status=1; }
	wait "${pids[0]}" || true
	pids=()
}

# ctl Q ROUND: djinn-dp with q queues, djinn-bench --mode ctl its client.
ctl() {
	local q=$1 r=$2 sock="/tmp/dpperf-ctl-$$-$1.sock" tag="ctl-q$1-r$2"
	local port=$((47300 + $2 * 16 + $1)) srv
	rm -f "$sock"
	"$bin"/djinn-dp --lcores "$(lcores 0 "$q")" --main-lcore 0 --no-pci "${mem[@]}" \
		--file-prefix "dpc$$q" --log-level=lib.eal:warning \
		--vdev "net_memif0,role=server,socket=$sock,socket-abstract=no,bsize=9216" \
		-- --ctl-port "$port" --stats-interval 0 --gpu none --dp-queues "$q" \
		--dp-idle-sleep-us "$idle_us" >"$out/$tag-server.log" 2>&1 &
	srv=$!
	pids=($srv)
	for _ in $(seq 300); do
		grep -qs "control plane: listening" "$out/$tag-server.log" && break
		kill -0 "$srv" 2>/dev/null || break
		sleep 0.1
	done
	"$bin"/djinn-bench --lcores "$(lcores 8 "$q")" --main-lcore 0 --no-pci "${mem[@]}" \
		--file-prefix "dpk$$q" --log-level=lib.eal:warning \
		--vdev "net_memif0,role=client,socket=$sock,socket-abstract=no,bsize=9216" \
		-- --mode ctl --ctl-port "$port" --queues "$q" --stripes "$q" \
		--stripe-min "$stripe_min" --sizes "$ctl_sizes" --idle-sleep-us "$idle_us" \
		--local 198.18.0.2 --json "$out/$tag.json" >"$out/$tag.log" 2>&1 ||
		{ echo "ctl q=$q round $r: client failed ($out/$tag.log)"; status=1; }
	kill -INT "$srv" 2>/dev/null
	wait "$srv" || { echo "ctl q=$q round $r: server exit $? ($out/$tag-server.log)"; status=1; }
	pids=()
	rm -f "$sock"
}

for r in $(seq 1 "$rounds"); do
	echo "=== round $r ($(date +%T), load $(cut -d' ' -f1 /proc/loadavg))"
	if [ "$intr" = 1 ] && has dp; then
		memif 1 "$r" interrupt
		memif 1 "$r" rtc
	fi
	for q in $queues; do
		if has dp; then
			memif "$q" "$r"
			"$bin"/djinn-bench --mode memcpy --threads "$q" --sizes "$sizes" \
				--json "$out/memcpy-q$q-r$r.json" >"$out/memcpy-q$q-r$r.log" 2>&1 ||
				{ echo "memcpy q=$q failed"; status=1; }
		fi
		if has ctl; then ctl "$q" "$r"; fi
	done
	if has dp; then tcp "$r"; fi
done

if has dp; then
	echo "=== bench-proto (1 KiB fragments; receive loop with and without CRC32C)"
	pin $((2 % ncpu)) "$bin"/bench-proto --json "$out/bench-proto.json" | sed -n '1,13p'
fi

if has dp; then
echo "=== summary: medians (min-max) over $rounds rounds, Gbit/s"
"$py" - "$out" "$rounds" "$queues" <<'PY' || status=1
import glob, json, os, statistics, sys
out, rounds, queues = sys.argv[1], int(sys.argv[2]), [int(q) for q in sys.argv[3].split()]
def rows(path):
    try:
        return {r["size"]: r["gbps"] for r in json.load(open(path))["rows"]}
    except (OSError, ValueError, KeyError):
        return {}
def runs(pattern):
    per = {}
    for r in range(1, rounds + 1):
        for size, g in rows(os.path.join(out, pattern % r)).items():
            per.setdefault(size, []).append(g)
    return per
tcp = runs("tcp-r%d.json")
memif = {q: runs("memif-q%d-r%%d-send.json" % q) for q in queues}
memcpy = {q: runs("memcpy-q%d-r%%d.json" % q) for q in queues}
med = lambda v: statistics.median(v) if v else 0.0
fmt = lambda v: "%7.1f (%.1f-%.1f)" % (med(v), min(v), max(v)) if v else "-"
extra = [("1i", "interrupt", runs("memif-q1i-r%d-send.json")),
         ("1r", "interrupt+caller-runs", runs("memif-q1r-r%d-send.json"))]
summary = []
print("%10s %3s %22s %22s %22s %8s %8s %8s" % ("size", "q", "memif striped", "memcpy q threads",
      "kernel TCP (1 stream)", "/TCP", "/memcpy", "/q=1"))
for size in sorted(tcp):
    for q in queues:
        m, c, t = memif[q].get(size, []), memcpy[q].get(size, []), tcp.get(size, [])
        one = med(memif[queues[0]].get(size, []))
        print("%10d %3d %22s %22s %22s %7.2fx %7.2fx %7.2fx" % (size, q, fmt(m), fmt(c), fmt(t),
              med(m) / med(t) if med(t) else 0, med(m) / med(c) if med(c) else 0,
              med(m) / one if one else 0))
        summary.append({"size": size, "queues": q, "memif_gbps": m, "memcpy_gbps": c,
                        "tcp_gbps": t, "memif_median": med(m), "memcpy_median": med(c),
                        "tcp_median": med(t)})
    for row, idle, per in extra:
        if not per.get(size):
            continue
        m, t, one = per[size], tcp.get(size, []), med(memif[queues[0]].get(size, []))
        print("%10d %3s %22s %22s %22s %7.2fx %8s %7.2fx" % (size, row, fmt(m), "", fmt(t),
              med(m) / med(t) if med(t) else 0, "", med(m) / one if one else 0))
        summary.append({"size": size, "queues": 1, "idle": idle, "memif_gbps": m,
                        "tcp_gbps": t, "memif_median": med(m), "tcp_median": med(t)})
print(json.dumps({"bench": "dpperf-device-check", "rounds": rounds, "rows": summary}))
PY
fi

if has ctl; then
echo "=== control plane: PUT/GET through djinn-dp, DPDK striped vs its TCP fallback, Gbit/s"
"$py" - "$out" "$rounds" "$queues" <<'PY' || status=1
import json, os, statistics, sys
out, rounds, queues = sys.argv[1], int(sys.argv[2]), [int(q) for q in sys.argv[3].split()]
def runs(q):
    per = {}
    for r in range(1, rounds + 1):
        try:
            rows = json.load(open(os.path.join(out, "ctl-q%d-r%d.json" % (q, r))))["rows"]
        except (OSError, ValueError, KeyError):
            continue
        for row in rows:
            per.setdefault((row["size"], row["label"]), []).append(row["gbps"])
    return per
med = lambda v: statistics.median(v) if v else 0.0
fmt = lambda v: "%6.1f (%.1f-%.1f)" % (med(v), min(v), max(v)) if v else "-"
data = {q: runs(q) for q in queues}
sizes = sorted({s for q in queues for (s, _) in data[q]})
summary = []
print("%10s %3s %20s %20s %7s %20s %20s %7s %7s %7s" % ("size", "q", "PUT dpdk", "PUT tcp",
      "/TCP", "GET dpdk", "GET tcp", "/TCP", "PUT/q=1", "GET/q=1"))
for size in sizes:
    for q in queues:
        d = data[q]
        pd, pt = d.get((size, "put-dpdk"), []), d.get((size, "put-tcp"), [])
        gd, gt = d.get((size, "get-dpdk"), []), d.get((size, "get-tcp"), [])
        p1 = med(data[queues[0]].get((size, "put-dpdk"), []))
        g1 = med(data[queues[0]].get((size, "get-dpdk"), []))
        ratio = lambda a, b: med(a) / med(b) if med(b) else 0
        print("%10d %3d %20s %20s %6.2fx %20s %20s %6.2fx %6.2fx %6.2fx" % (size, q, fmt(pd),
              fmt(pt), ratio(pd, pt), fmt(gd), fmt(gt), ratio(gd, gt),
              med(pd) / p1 if p1 else 0, med(gd) / g1 if g1 else 0))
        summary.append({"size": size, "queues": q, "put_dpdk_gbps": pd, "put_tcp_gbps": pt,
                        "get_dpdk_gbps": gd, "get_tcp_gbps": gt})
print(json.dumps({"bench": "dpperf-device-check ctl", "rounds": rounds, "rows": summary}))
PY
fi
echo "device check: $([ $status = 0 ] && echo PASS || echo FAIL)"
exit $status
