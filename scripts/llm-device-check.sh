#!/usr/bin/env bash
# The scheduler's acceptance workload on the GPU machine, in one call:
# three djinn-dp --gpu 0 (one H100 shared; TCP on loopback), djinn-llm
# (4 layers, d_model 256, 4 heads, vocabulary 4096; 8 sequences, prompts of
# 64, 32 decode steps) through the scheduler and against its baselines in
# the same run: the same model in process on the GPU runtime (no network),
# everything on one server, one op per request, round robin per op, and
# prefill on server 0 / decode on 1 and 2; then two servers, then a server
# killed mid-run. Every token is checked against the client's CPU run (a
# difference is printed with the reference's logits: a tie or not).
#
# Here, first:   scripts/llm-carry.sh            (builds, fills .carry/llm)
# There, through the device tool: carry [".carry/llm"],
#   command: bash scripts/llm-device-check.sh
# Then bench-batch (per-op cost of a batch against in process) on the GPU.
# Results (tables, JSON, server logs) go to $OUT (or /tmp/llm-check).
# For a dry run of the script where there is no GPU: LLM_GPU=none, and
# LLM_ARGS="--prompt 16 --steps 4" (appended to every djinn-llm).
# Goal: decode tokens/s through Djinn at least 80 % of the in-process run.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
bin=$top/.carry/llm
out=${OUT:-/tmp/llm-check}
gpu=${LLM_GPU:-0}
extra=${LLM_ARGS:-}
mkdir -p "$out"
export LD_LIBRARY_PATH=$bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
[ -x "$bin/djinn-llm" ] || { echo "no $bin/djinn-llm: run scripts/llm-carry.sh here first"; exit 1; }
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv
status=0
pids=()

# start N: N servers on GPU 0; $servers.
start() {
	servers=""
	pids=()
	for i in $(seq 0 $(($1 - 1))); do
		"$bin"/djinn-dp -- --no-dpdk --gpu "$gpu" --ctl-port 0 --stats-interval 0 \
			>"$out/dp_$1_$i.log" 2>&1 &
		pids+=($!)
	done
	for i in $(seq 0 $(($1 - 1))); do
		for _ in $(seq 300); do grep -q "control plane: listening" "$out/dp_$1_$i.log" && break; sleep 0.1; done
		grep -E "^compute" "$out/dp_$1_$i.log"
		servers="${servers:+$servers,}$(grep -o "listening on 127.0.0.1:[0-9]*" "$out/dp_$1_$i.log" | grep -o "127.0.0.1:[0-9]*")"
	done
}
stop() {
	for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
}

# run NAME ARGS...: djinn-llm against $servers, table to $out/NAME.txt.
run() {
	local name=$1
	shift
	echo; echo "=== $name: djinn-llm --servers $servers $*"
	# shellcheck disable=SC2086 # LLM_ARGS is a list of options
	timeout 900 "$bin"/djinn-llm --servers "$servers" --inproc-gpu "$gpu" --homogeneous \
		--json "$out/$name.json" "$@" $extra >"$out/$name.txt" 2>&1
	local rc=$?
	cat "$out/$name.txt"
	echo "$name: exit $rc"
	[ $rc = 0 ] || status=1
}

# What one op of a batch costs beyond the op (bench-batch): in process one
# call per op (a wait after each), in process as a batch, one EXECUTE.
echo; echo "=== bench-batch --gpu $gpu"
"$bin"/bench-batch --gpu "$gpu" --ops 1000 --elems 1,256 --runs 5 2>&1 | tee "$out/bench-batch.txt"
[ "${PIPESTATUS[0]}" = 0 ] || status=1

start 3
run three --disagg 0:1,2
stop
start 2
run two --baselines inproc,one-server
stop
start 3
run kill --prompt 64 --steps 32 --at-step 10 --exec "kill -KILL ${pids[1]}"
grep -q "^recovery: 1 server lost" "$out/kill.txt" || { echo "kill: no server was lost"; status=1; }
stop

# Decode tokens/s through Djinn against the in-process GPU run.
for name in three two; do
	awk -v n="$name" '/^djinn: scheduler/ {d = $3} /^in-process runtime/ {i = $5}
		END { if (i > 0) printf "%s servers: djinn %.1f / in-process %.1f decode tokens/s = %.0f %% (goal 80 %%)\n",
			n, d, i, 100 * d / i }' "$out/$name.txt"
done
echo; echo "llm device check: $([ $status = 0 ] && echo PASS || echo "FAIL (see above: a token difference is explained by its logits)")"
exit $status
