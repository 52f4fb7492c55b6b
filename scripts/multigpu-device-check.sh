#!/usr/bin/env bash
# Runs on a GPU machine of any size with the binaries of
# scripts/multigpu-carry.sh (copied into .carry/multigpu with them):
#   1. the topology: nvidia-smi topo -m where it exists, djinn-dp --probe
#      --gpu all (NUMA nodes, each GPU's and port's node, EAL's lcores, the
#      plan and its warnings), and the plan of an injected 2-socket, 8-GPU
#      topology (DJINN_TOPOLOGY) for comparison;
#   2. every operation on each GPU against the CPU reference, one GPU at a
#      time (CUDA_VISIBLE_DEVICES=N: test_gpu_ops, test_gpu_ops_transformer,
#      test_remote_ops gpu);
#   3. moves between devices on real GPU memory (test_rt_devices gpu: every
#      ordered pair of GPUs, or cuda:0 and its alias cuda:0.1 on one GPU;
#      d2d / peer and staged; byte-exact; an operation after each move) and
#      the per-device data-plane placer (test_gpu_dp gpu: receives into and
#      sends from two logical devices, one burst split between them);
#   4. bench-move: bandwidth of every pair, staged against cudaMemcpyPeerAsync
#      and (one GPU) cudaMemcpyAsync device to device, and the runtime's
#      to_device, twice for the run-to-run spread; with 2 or more GPUs also
#      GPU 0 and its alias;
#   5. with 2 or more GPUs: two djinn-dp --gpu all joined by memif, a static
#      fleet; N moves at once each way (sessions spread over the GPUs),
#      byte-exact, over DPDK, and B's STATS must show bytes gathered into
#      more than one GPU;
#   6. with 2 or more GPUs, on the same two servers: djinn-llm --fleet, the
#      scheduler per (server, GPU): one unit per GPU of each server (2 x N),
#      every unit gets sequences, the tokens equal the local CPU run's; then
#      disaggregated (prefill on server A's GPU 0, decode on its GPU 1): the
#      KV caches move by to_device on A (peer copies), none server to
#      server, none through the client. With one GPU: skipped, saying so.
#   bash .carry/multigpu/multigpu-device-check.sh      (OUT: where logs go)
# LLM_ARGS (default "--prompt 32 --steps 16"): appended to djinn-llm.
# LCORES_A, LCORES_B (default 2,3 and 4,5): cores of the two servers.
set -u
bin=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-/tmp/multigpu-check}
export LD_LIBRARY_PATH=$bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
mkdir -p "$out"
status=0
step() { echo; echo "=== $*"; }
check() { # check NAME CMD...: run, keep the log, print its verdict lines
	local name=$1 rc
	shift
	"$@" >"$out/$name.log" 2>&1
	rc=$?
	grep -E "seed|runtime:|Test:.*FAILED|CU_ASSERT|asserts|tests |SKIP" "$out/$name.log" | tail -n 6
	echo "$name: exit $rc"
	[ $rc = 0 ] || status=1
}
echo 2048 >/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages 2>/dev/null
mkdir -p /dev/hugepages
mountpoint -q /dev/hugepages || mount -t hugetlbfs nodev /dev/hugepages 2>/dev/null

n=$(nvidia-smi -L 2>/dev/null | grep -c "^GPU ")
[ "$n" -ge 1 ] || { echo "no GPU (nvidia-smi -L lists none)"; exit 1; }
step "topology: $n GPU(s)"
nvidia-smi topo -m 2>/dev/null | tee "$out/nvidia-topo.txt"
"$bin"/djinn-dp --file-prefix dj_mg_probe -l 0-1 -- --probe --gpu all 2>&1 |
	grep -E "^(gpus|  gpu|topology|  node|  port|placement|warning)" | tee "$out/probe.log"
DJINN_TOPOLOGY="$bin/topologies/2s8g.json" "$bin"/djinn-dp --file-prefix dj_mg_probe8 -l 0-1 \
	-- --probe --gpu all 2>&1 | grep -E "^(placement|warning)" >"$out/probe-2s8g.log"
grep -c "^warning" "$out/probe-2s8g.log" | sed 's/^/injected 2-socket, 8-GPU topology: warnings: /'

for g in $(seq 0 $((n - 1))); do
	step "every operation on GPU $g against the CPU reference"
	export CUDA_VISIBLE_DEVICES=$g
	check "gpu${g}_ops" "$bin"/test_gpu_ops
	check "gpu${g}_ops_transformer" "$bin"/test_gpu_ops_transformer
	check "gpu${g}_remote_ops" "$bin"/test_remote_ops gpu
	unset CUDA_VISIBLE_DEVICES
done

step "moves between devices on GPU memory (test_rt_devices gpu)"
check rt_devices_gpu timeout 280 "$bin"/test_rt_devices gpu
step "the per-device data-plane placer on GPU memory (test_gpu_dp gpu)"
check gpu_dp timeout 280 "$bin"/test_gpu_dp gpu
grep -E "two devices" "$out/gpu_dp.log"

step "bench-move: staged vs cudaMemcpyPeer / d2d, and to_device (2 runs)"
for run in 1 2; do
	"$bin"/bench-move --sizes 1M,64M,256M --iters 10 >"$out/bench-move-$run.log" 2>&1 ||
		{ echo "FAIL: bench-move run $run"; status=1; }
	grep -v '^{' "$out/bench-move-$run.log"
	grep '^{' "$out/bench-move-$run.log" >>"$out/bench-move.json"
done
if [ "$n" -ge 2 ]; then
	"$bin"/bench-move --gpu 0,0 --sizes 64M,256M --iters 10 >"$out/bench-move-alias.log" 2>&1 ||
		{ echo "FAIL: bench-move --gpu 0,0"; status=1; }
	grep -v '^{' "$out/bench-move-alias.log"
fi

if [ "$n" -ge 2 ]; then
	step "two djinn-dp --gpu all over memif: moves spread over the GPUs"
	la=${LCORES_A:-2,3} lb=${LCORES_B:-4,5}
	sock=/tmp/dj-mg-check-$$.memif
	pa=$((20000 + RANDOM % 15000)); pb=$((pa + 1))
	fleet="127.0.0.1:$pa,127.0.0.1:$pb"
	printf 'mg-check-%s\n' "$RANDOM$RANDOM" >"$out/token"
	memif() { echo "net_memif0,role=$1,socket=$sock,socket-abstract=no,bsize=9216"; }
	"$bin"/djinn-dp -l "$la" --vdev "$(memif server)" -- --gpu all --ctl-port $pa \
		--dp-ip 198.18.1.1 --fleet "$fleet" --fleet-token-file "$out/token" \
		--stats-interval 0 >"$out/a.log" 2>&1 &
	a=$!
	for _ in $(seq 300); do grep -q "control plane: listening" "$out/a.log" && break; sleep 0.1; done
	"$bin"/djinn-dp -l "$lb" --vdev "$(memif client)" -- --gpu all --ctl-port $pb \
		--dp-ip 198.18.1.2 --fleet "$fleet" --fleet-token-file "$out/token" \
		--stats-interval 0 >"$out/b.log" 2>&1 &
	b=$!
	for _ in $(seq 300); do grep -q "control plane: listening" "$out/b.log" && break; sleep 0.1; done
	grep -hE "^compute|^data plane|^numa" "$out/a.log" "$out/b.log"
	sleep 2
	for dir in "#0 #1" "#1 #0"; do
		set -- $dir
		pids=""
		for k in $(seq 1 "$n"); do
			timeout 120 "$bin"/djinn fleet move --fleet "$fleet" --from "$1" --to "$2" \
				--size 67108864 >"$out/move-$1-$2-$k.log" 2>&1 &
			pids="$pids $!"
		done
		for p in $pids; do wait "$p" || status=1; done
		for k in $(seq 1 "$n"); do
			grep -q "over dpdk.*byte-exact" "$out/move-$1-$2-$k.log" ||
				{ echo "FAIL: move $k $1 -> $2"; cat "$out/move-$1-$2-$k.log"; status=1; }
		done
	done
	"$bin"/djinn --port $pb stats >"$out/b-stats.json" 2>&1
	rx=$(tr -d ' \n\t' <"$out/b-stats.json" | grep -o '"gpu_rx_devices":\[[^]]*\]' | head -1)
	echo "B: $rx"
	used=$(echo "$rx" | grep -o '"bytes":[1-9][0-9]*' | wc -l)
	echo "B: devices that gathered bytes: $used"
	[ "$used" -ge 2 ] || { echo "FAIL: B gathered into fewer than 2 GPUs"; status=1; }

	step "djinn-llm --fleet: sequences over all $((2 * n)) GPUs of the two servers"
	units=$((2 * n))
	# shellcheck disable=SC2086
	timeout 900 "$bin"/djinn-llm --fleet "$fleet" --sequences $((2 * units)) --homogeneous \
		--baselines one-server --disagg 0:1 --json "$out/llm.json" ${LLM_ARGS:---prompt 32 --steps 16} \
		>"$out/llm.log" 2>&1 || { echo "FAIL: djinn-llm --fleet (exit $?)"; status=1; }
	grep -E "^ *s[0-9]+ |peer-copy|^run |MATCH|DIFFERS|FAILED|KV moves|between devices" "$out/llm.log"
	/usr/bin/python3 - "$out/llm.json" "$units" <<'PY' || status=1
import json, sys
j = json.load(open(sys.argv[1])); units = int(sys.argv[2]); runs = {r['name']: r for r in j['runs']}
ok = True
def need(cond, what):
    global ok
    print(("ok: " if cond else "FAIL: ") + what)
    ok = ok and cond
need(j['config']['units'] == units, "%d units (server, GPU)" % units)
need(all(r['tokens_match'] and r['ok'] for r in j['runs']), "every run's tokens equal the CPU run's")
s = runs['djinn: scheduler']['spread_after_prefill']
need(len(s) == units and min(s) >= 1, "sequences on every GPU of both servers: %s" % s)
d = runs['djinn: disaggregated']
need(d['kv_moves'] > 0 and d['kv_moves_between_devices'] == d['kv_moves']
     and d['kv_moves_server_to_server'] == 0 and d['kv_bytes_through_client'] == 0,
     "disaggregated: %d KV moves, %d between devices of server A (to_device), none server "
     "to server or through the client" % (d['kv_moves'], d['kv_moves_between_devices']))
sys.exit(0 if ok else 1)
PY
	kill -INT $a $b; wait $a $b
	rm -f "$sock"
fi
[ "$n" -ge 2 ] || echo "step 6 (djinn-llm over the GPUs of two servers): skipped: one GPU"
echo; echo "multigpu device check ($n GPU(s)): $([ $status = 0 ] && echo PASS || echo FAIL)"
exit $status
