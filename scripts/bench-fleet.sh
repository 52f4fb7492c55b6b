#!/usr/bin/env bash
# A server-to-server move between two djinn-dp against the same bytes put by
# a client over DPDK, in one run (apps/bench-fleet):
#   A and B: a fleet of two, their data planes joined by a memif pair
#            (tensors in GPU memory with GPU=N, else host memory);
#   C:       a third djinn-dp (host memory), memif server of bench-fleet's
#            own data plane: the baseline client PUT over memif.
#   scripts/bench-fleet.sh [BIN_DIR] [bench-fleet options]
# BIN_DIR holds djinn-dp and bench-fleet (default build/apps). Environment:
#   GPU=none|N        A's and B's tensors (default none)
#   A_LCORES, B_LCORES, C_LCORES, BENCH_LCORES   EAL -l lists (default 0,1)
#   IDLE_US=20        idle data-plane lcores nap (0 on dedicated cores)
#   EAL_MEM           extra EAL args of every process (default: --no-huge
#                     -m 1024 without GPU, none with one: hugepages)
#   OUT=/tmp/bench-fleet   logs and bench-fleet.json
# Default bench-fleet options: --sizes 256M,1G --reps 5.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$top/build/apps}
[ $# -gt 0 ] && shift
gpu=${GPU:-none}
idle=${IDLE_US:-20}
out=${OUT:-/tmp/bench-fleet}
if [ -z "${EAL_MEM+x}" ]; then
	[ "$gpu" = none ] && EAL_MEM="--no-huge -m 1024" || EAL_MEM=""
fi
mkdir -p "$out"
tag=$$
sock_ab=/tmp/djinn-bench-fleet-ab-$tag.memif
sock_c=/tmp/djinn-bench-fleet-c-$tag.memif
pa=$((20000 + RANDOM % 15000)); pb=$((pa + 1)); pc=$((pa + 2))
printf 'bench-fleet-token-%s\n' "$tag$RANDOM" >"$out/token"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	rm -f "$sock_ab" "$sock_c"
}
trap cleanup EXIT

# server NAME LCORES VDEV PORT DP_IP GPU [djinn-dp options...]
server() {
	local name=$1 lcores=$2 vdev=$3 port=$4 ip=$5 g=$6
	shift 6
	# shellcheck disable=SC2086
	"$bin/djinn-dp" -l "$lcores" $EAL_MEM --vdev "$vdev" -- --ctl-port "$port" --dp-ip "$ip" \
		--gpu "$g" --dp-idle-sleep-us "$idle" --stats-interval 0 "$@" >"$out/$name.log" 2>&1 &
	pids+=($!)
}
memif() { echo "net_memif0,role=$1,socket=$2,socket-abstract=no,bsize=9216"; }
up() {
	for _ in $(seq 300); do grep -q "control plane: listening" "$out/$1.log" && break; sleep 0.1; done
	grep -q "control plane: listening" "$out/$1.log" || { echo "djinn-dp $1 not up:"; cat "$out/$1.log"; exit 1; }
	grep -E "^compute|^data plane" "$out/$1.log" | sed "s/^/$1: /"
}
fleet="127.0.0.1:$pa,127.0.0.1:$pb"
# Each memif server first: a memif client that finds no socket yet gives up.
server a "${A_LCORES:-0,1}" "$(memif server "$sock_ab")" $pa 198.18.1.1 "$gpu" \
	--fleet "$fleet" --fleet-token-file "$out/token"
up a
server b "${B_LCORES:-0,1}" "$(memif client "$sock_ab")" $pb 198.18.1.2 "$gpu" \
	--fleet "$fleet" --fleet-token-file "$out/token"
server c "${C_LCORES:-0,1}" "$(memif server "$sock_c")" $pc 198.18.2.1 none
up b
up c
gpu_copy=()
[ "$gpu" != none ] && gpu_copy=(--gpu-copy "$gpu")
[ $# -eq 0 ] && set -- --sizes 256M,1G --reps 5
# shellcheck disable=SC2086
"$bin/bench-fleet" -l "${BENCH_LCORES:-0,1}" $EAL_MEM --no-pci --vdev "$(memif client "$sock_c")" -- \
	--fleet "$fleet" --baseline "127.0.0.1:$pc" --dp-ip 198.18.2.2 \
	--dp-idle-sleep-us "$idle" --json "$out/bench-fleet.json" "${gpu_copy[@]}" "$@" \
	2>&1 | grep -v '^EAL\|^TELEMETRY' | tee "$out/bench.log"
rc=${PIPESTATUS[0]}
cleanup
trap - EXIT
grep -h "^stats:" "$out"/[abc].log | sed 's/^/server /'
echo "bench-fleet: exit $rc; JSON in $out/bench-fleet.json"
exit "$rc"
