#!/usr/bin/env bash
# Runs on the GPU machine with the binaries of scripts/fleet-carry.sh (it is
# copied into .carry/fleet with them):
#   1. the carried binaries find every library, djinn-dp sees the GPU;
#   2. two djinn-dp with --gpu 0, their data planes joined by memif, a static
#      fleet: `djinn fleet` shows both with GPU memory; moves and copies of
#      2 B, 1 MiB, 256 MiB and 1 GiB both ways, GPU to GPU (A's staged
#      device-to-host ring, frames, B's gather into GPU memory), each read
#      back and compared byte for byte; a move that does not go over DPDK
#      fails the check;
#   3. bench-fleet (scripts/bench-fleet.sh, GPU=0, cores of their own):
#      moves of 256 MiB and 1 GiB GPU to GPU, against a client PUT of the
#      same bytes host to host over memif and cudaMemcpy D2H + H2D, in one
#      run; the goal: the move at least 80 % of the PUT.
#   bash .carry/fleet/fleet-device-check.sh        (OUT: where logs go)
# GPU=none runs the same without a GPU (host memory), to try it elsewhere;
# A_LCORES, B_LCORES, C_LCORES, BENCH_LCORES (default 2,3 4,5 6,7 8,9) and
# IDLE_US (default 0) as in scripts/bench-fleet.sh.
set -u
gpu=${GPU:-0}
export A_LCORES=${A_LCORES:-2,3} B_LCORES=${B_LCORES:-4,5} C_LCORES=${C_LCORES:-6,7}
export BENCH_LCORES=${BENCH_LCORES:-8,9} IDLE_US=${IDLE_US:-0}
bin=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-/tmp/fleet-check}
export LD_LIBRARY_PATH=$bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
mkdir -p "$out"
status=0
step() { echo; echo "=== $*"; }
echo 2048 >/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages 2>/dev/null
mkdir -p /dev/hugepages
mountpoint -q /dev/hugepages || mount -t hugetlbfs nodev /dev/hugepages 2>/dev/null

step "libraries and the GPU"
for b in djinn-dp djinn bench-fleet; do
	if ldd "$bin/$b" | grep "not found"; then echo "$b: libraries missing"; status=1; fi
done
"$bin"/djinn-dp --file-prefix dj_fleet_probe -- --probe 2>&1 | grep -E "^gpus|gpu [0-9]|^ports"

step "two djinn-dp --gpu $gpu over memif: moves between them"
sock=/tmp/dj-fleet-check-$$.memif
pa=$((20000 + RANDOM % 15000)); pb=$((pa + 1))
fleet="127.0.0.1:$pa,127.0.0.1:$pb"
printf 'fleet-check-%s\n' "$RANDOM$RANDOM" >"$out/token"
memif() { echo "net_memif0,role=$1,socket=$sock,socket-abstract=no,bsize=9216"; }
"$bin"/djinn-dp -l "$A_LCORES" --vdev "$(memif server)" -- --gpu "$gpu" \
	--ctl-port $pa --dp-ip 198.18.1.1 --fleet "$fleet" --fleet-token-file "$out/token" \
	--dp-idle-sleep-us "$IDLE_US" --stats-interval 0 >"$out/a.log" 2>&1 &
a=$!
for _ in $(seq 300); do grep -q "control plane: listening" "$out/a.log" && break; sleep 0.1; done
"$bin"/djinn-dp -l "$B_LCORES" --vdev "$(memif client)" -- --gpu "$gpu" \
	--ctl-port $pb --dp-ip 198.18.1.2 --fleet "$fleet" --fleet-token-file "$out/token" \
	--dp-idle-sleep-us "$IDLE_US" --stats-interval 0 >"$out/b.log" 2>&1 &
b=$!
for _ in $(seq 300); do grep -q "control plane: listening" "$out/b.log" && break; sleep 0.1; done
grep -E "^compute|^data plane" "$out/a.log" "$out/b.log"
sleep 2
"$bin"/djinn fleet --fleet "$fleet" | tee "$out/view.log"
[ "$gpu" = none ] || grep -q "cuda:$gpu" "$out/view.log" ||
	{ echo "FAIL: members without GPU memory"; status=1; }
for size in 2 1048576 268435456 1073741824; do
	for dir in "#0 #1" "#1 #0"; do
		set -- $dir
		for copy in "" --copy; do
			line=$(timeout 120 "$bin"/djinn fleet move --fleet "$fleet" --from "$1" --to "$2" \
				--size $size $copy 2>&1)
			echo "$line"
			if ! echo "$line" | grep -q "over dpdk.*byte-exact"; then
				echo "FAIL: move of $size $1 -> $2 $copy"; status=1
			fi
		done
	done
done
kill -INT $a $b; wait $a $b
grep -h "^stats:" "$out/a.log" "$out/b.log"
[ "$gpu" = none ] || grep -q "gpu rx [a-z]* [1-9]" "$out/b.log" ||
	{ echo "FAIL: B gathered nothing into GPU memory over the data plane"; status=1; }
rm -f "$sock"

step "bench-fleet: GPU-to-GPU move vs client PUT over memif vs cudaMemcpy"
GPU=$gpu OUT="$out/bench" bash "$bin"/bench-fleet.sh "$bin" --sizes 256M,1G --reps 5
rc=$?
[ $rc = 0 ] || { echo "FAIL: bench-fleet exit $rc"; status=1; }
grep "move / PUT" "$out/bench/bench.log"
cat "$out/bench/bench-fleet.json"
echo; echo "fleet device check: $([ $status = 0 ] && echo PASS || echo FAIL)"
exit $status
