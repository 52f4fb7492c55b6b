#!/usr/bin/env bash
# The standard data-plane benchmark: two djinn-bench processes on memif, one
# polling lcore each (process 1 polls on CPU 1, process 2 on CPU 0), then the
# same tensor sizes through plain kernel TCP on loopback in the same run, and
# the ratios.
#   scripts/bench-memif.sh [build-dir] [--quick]
# Results: a table on stdout, JSON per step in $OUT (default /tmp/djinn-bench-memif.<pid>).
# On a machine with more cores, give each process its own pair (the control
# thread off the polling core): RECV_LCORES=2,3 RECV_MAIN=2 SEND_LCORES=4,5 SEND_MAIN=4,
# and IDLE_US=0 (pure polling). FRAME/BSIZE change the frame and memif buffer
# size (9014/9216; 32014/32768 measured slower here: 54 vs 94 Gbit/s at 64 MiB).
# The default IDLE_US=20 lets idle lcores nap
# (djinn-bench --idle-sleep-us), which on 2 shared cores is faster;
# IDLE_MODE=interrupt (or nap, poll) is passed as djinn-bench --idle.
# STEPS (default "raw nocrc crc zc pingpong tcp") picks the parts to run;
# SIZES and ITERS replace the transfer sizes and iterations per size.
# scripts/bench-idle.sh runs it in interleaved rounds. Without HUGE_MIN (1024)
# free hugepages both sides run --no-huge -m NO_HUGE_MB (1024) and the
# zero-copy step is left out.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
builddir=${1:-build}
quick=${2:-}
bench="$here/../$builddir/apps/djinn-bench"
[ -x "$bench" ] || { echo "bench-memif: $bench not built (ninja -C $builddir)" >&2; exit 1; }
out=${OUT:-/tmp/djinn-bench-memif.$$}
mkdir -p "$out"
sizes=4K,64K,1M,16M,64M,256M,1G
iters=
pp_count=10000
if [ "$quick" = --quick ]; then
	sizes=4K,1M,64M,256M
	iters="--iters 10"
	pp_count=2000
fi
sizes=${SIZES:-$sizes}
iters=${ITERS:+--iters $ITERS}
iters=${iters:-}
steps=" ${STEPS:-raw nocrc crc zc pingpong tcp} "
idle_mode=${IDLE_MODE:+--idle $IDLE_MODE}
step() { [[ "$steps" == *" $1 "* ]]; }
sock="/tmp/djinn-bench-memif.$$.sock"
frame=${FRAME:-9014}
bsize=${BSIZE:-9216}
idle_us=${IDLE_US:-20}
# memif loses nothing and its ring paces the sender: no slow start needed.
credit=${INITIAL_CREDIT:-4096}
recv_lcores=${RECV_LCORES:-0,1} recv_main=${RECV_MAIN:-0}
send_lcores=${SEND_LCORES:-0,1} send_main=${SEND_MAIN:-1}
# Hugepages where enough are free (512 x 2 MiB per process), else --no-huge
# (EAL refuses --in-memory with it); the zero-copy step needs hugepages.
mem=(--in-memory)
if [ "$(awk '/HugePages_Free/ {print $2}' /proc/meminfo 2>/dev/null || echo 0)" -lt "${HUGE_MIN:-1024}" ]; then
	mem=(--no-huge -m "${NO_HUGE_MB:-1024}")
	steps=${steps/ zc / }
	echo "bench-memif: fewer than 1024 free hugepages: --no-huge, no zero-copy step" >&2
fi
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -f "$sock"; }
trap cleanup EXIT

# pair NAME RECV_ARGS SEND_ARGS [zc]: by default the receiver is the memif
# server, polling on CPU 1, the sender on CPU 0. With zc the receiver is a
# zero-copy memif client (the sender writes straight into its mbufs: one copy
# fewer; needs hugepages and --single-file-segments).
pair() {
	local name=$1 recv_args=$2 send_args=$3 zc=${4:-}
	local recv_vdev="net_memif0,role=server,socket=$sock,socket-abstract=no,bsize=$bsize"
	local send_vdev="net_memif0,role=client,socket=$sock,socket-abstract=no,bsize=$bsize"
	local recv_eal=()
	if [ -n "$zc" ]; then
		recv_vdev="net_memif0,role=client,socket=$sock,socket-abstract=no,bsize=$bsize,zero-copy=yes"
		send_vdev="net_memif0,role=server,socket=$sock,socket-abstract=no,bsize=$bsize"
		recv_eal=(--single-file-segments)
	fi
	rm -f "$sock"
	"$bench" -l "$recv_lcores" --main-lcore "$recv_main" --no-pci "${mem[@]}" --file-prefix "djb$$r" \
		--log-level=lib.eal:warning "${recv_eal[@]}" --vdev "$recv_vdev" \
		-- $recv_args --idle-sleep-us "$idle_us" $idle_mode --initial-credit "$credit" \
		--json "$out/$name-recv.json" \
		>"$out/$name-recv.log" 2>&1 &
	pids=($!)
	"$bench" -l "$send_lcores" --main-lcore "$send_main" --no-pci "${mem[@]}" --file-prefix "djb$$s" \
		--log-level=lib.eal:warning --vdev "$send_vdev" \
		-- $send_args --idle-sleep-us "$idle_us" $idle_mode --initial-credit "$credit" \
		--json "$out/$name-send.json" \
		>"$out/$name-send.log" 2>&1 || {
		echo "bench-memif: $name failed, see $out/$name-send.log" >&2; }
	wait "${pids[0]}" || echo "bench-memif: $name receiver failed, see $out/$name-recv.log" >&2
	pids=()
}

step raw && echo "== raw fragment rate, memif, 1 lcore per side (each on its process's main lcore)"
step raw && for payload in 1416 8916; do
	pair "raw$payload" "--mode rx --frame $frame --payload $payload" \
		"--mode tx --frame $frame --payload $payload --duration 3"
	grep -h '^tx\|^rx' "$out/raw$payload-send.log" "$out/raw$payload-recv.log" || true
done

for crc in nocrc crc; do
	step $crc || continue
	flag=$([ $crc = nocrc ] && echo --no-crc || true)
	echo "== transfer goodput, memif, frames $frame B, $crc"
	pair "transfer-$crc" "--mode transfer --role recv --sizes $sizes $iters $flag --frame $frame" \
		"--mode transfer --role send --sizes $sizes $iters $flag --frame $frame"
	grep -h '^transfer' "$out/transfer-$crc-send.log" || true
done

if ! step zc; then
	:
elif grep -qs ' hugetlbfs ' /proc/mounts && [ "$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)" -ge 256 ]; then
	echo "== transfer goodput, zero-copy memif receiver, frames $frame B, nocrc"
	pair transfer-zc "--mode transfer --role recv --sizes $sizes $iters --no-crc --frame $frame" \
		"--mode transfer --role send --sizes $sizes $iters --no-crc --frame $frame" zc
	grep -h '^transfer' "$out/transfer-zc-send.log" || true
else
	echo "== (no zero-copy memif run: it needs 256 free hugepages, scripts/hugepages.sh)"
fi

if step pingpong; then
	echo "== pingpong, 64 B transfers each way"
	pair pingpong "--mode pingpong --role recv --sizes 64 --count $pp_count" \
		"--mode pingpong --role send --sizes 64 --count $pp_count"
	grep -h '^pingpong' "$out/pingpong-send.log" || true
fi

if step tcp; then
	echo "== kernel TCP on loopback, same sizes (default socket options, TCP_NODELAY)"
	port=$((47100 + $$ % 1000))
	"$bench" --mode tcp --role recv --sizes $sizes $iters --tcp-port $port \
		--json "$out/tcp-recv.json" >"$out/tcp-recv.log" 2>&1 &
	pids=($!)
	"$bench" --mode tcp --role send --sizes $sizes $iters --tcp-port $port \
		--json "$out/tcp-send.json" >"$out/tcp-send.log" 2>&1 || echo "bench-memif: tcp failed" >&2
	wait "${pids[0]}" || true
	pids=()
	grep -h '^tcp' "$out/tcp-send.log" || true
fi

echo "== ratios (Djinn memif goodput / kernel TCP goodput, same run)"
python3 - "$out" <<'PY'
import json, sys, os
out = sys.argv[1]
def rows(name):
    p = os.path.join(out, name)
    try:
        return {r["size"]: r["gbps"] for r in json.load(open(p))["rows"]}
    except (OSError, ValueError, KeyError):
        return {}
tcp = rows("tcp-send.json")
nocrc, crc = rows("transfer-nocrc-send.json"), rows("transfer-crc-send.json")
zc = rows("transfer-zc-send.json")
print("%12s %11s %11s %11s %11s %8s %8s %8s" % ("size", "memif Gb/s", "+crc Gb/s", "zc Gb/s",
      "tcp Gb/s", "ratio", "crc", "zc"))
summary = []
for size in sorted(tcp):
    t, a, b, z = tcp[size], nocrc.get(size, 0.0), crc.get(size, 0.0), zc.get(size, 0.0)
    r = [x / t if t else 0.0 for x in (a, b, z)]
    print("%12d %11.2f %11.2f %11.2f %11.2f %7.2fx %7.2fx %7.2fx" % (size, a, b, z, t, *r))
    summary.append({"size": size, "memif_gbps": a, "memif_crc_gbps": b, "memif_zc_gbps": z,
                    "tcp_gbps": t, "ratio": round(r[0], 3), "ratio_crc": round(r[1], 3),
                    "ratio_zc": round(r[2], 3)})
json.dump({"ratios": summary}, open(os.path.join(out, "ratios.json"), "w"))
print("JSON in", out)
PY
