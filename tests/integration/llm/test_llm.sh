#!/usr/bin/env bash
# The scheduler's acceptance workload on three djinn-dp (loopback TCP):
# djinn-llm generates for 8 sequences and checks every token against the
# local CPU run. Asserted from its JSON: tokens equal, zero KV-cache bytes
# moved after prefill, sequences spread within one per server (3/3/2), one
# round trip per decode step with one request per server (3 per 8 tokens);
# then a second run with one server killed (SIGKILL) before decode step 3:
# the lost sequences are rebuilt on the survivors and the tokens are still
# equal. The model is the demo's (4 layers, d_model 256, 4 heads, vocabulary
# 4096); prompts of 32 and 8 decode steps keep the test near half a minute
# on the 2-core CI machine (the full 64/32 run is the same code, longer).
# The three servers are the same hardware (--homogeneous: their
# calibrations pooled), so that a busy CI machine's noise cannot make one
# of them look slower and take fewer sequences.
#   test_llm.sh DJINN_DP DJINN_LLM
set -u
dp_bin=$1 llm_bin=$2
. "$(dirname "$0")/llm_test_lib.sh" llm

# start N: N servers on ports the OS picks; $servers, ${pids[@]}.
start() {
	servers=""
	pids=()
	for i in $(seq 0 $(($1 - 1))); do
		"$dp_bin" -- --no-dpdk --ctl-port 0 --stats-interval 0 >"$dir/dp$i.log" 2>&1 &
		pids+=($!)
	done
	for i in $(seq 0 $(($1 - 1))); do
		wait_listening "$i"
		servers="${servers:+$servers,}$addr"
	done
}

args=(--prompt 32 --steps 8 --baselines none --homogeneous)

start 3
echo "servers: $servers"
out=$("$llm_bin" --servers "$servers" "${args[@]}" --json "$dir/run.json" 2>&1)
rc=$?
echo "$out"
[ $rc -eq 0 ] || fail "djinn-llm exited $rc"
j=$dir/run.json
check "$j" "r['tokens_match'] and r['ok']" "tokens differ from the local CPU run"
check "$j" "r['kv_bytes_moved_after_prefill'] == 0 and r['state_moves'] == 0" \
	"KV-cache bytes moved after prefill"
check "$j" "sorted(r['spread_after_prefill']) == [2, 3, 3]" "sequences not spread 3/3/2"
check "$j" "r['round_trips_per_decode_step'] == 1.0" "not one round trip per decode step"
check "$j" "abs(r['requests_per_decode_token'] - 3 / 8) < 1e-9" \
	"not one request per server per decode step"
echo "$out" | grep -q "^djinn: scheduler .*MATCH" || fail "no MATCH line"

# A server killed mid-run: the one holding the most sequences' caches is
# as good as any; take server 1.
victim=${pids[1]}
out=$("$llm_bin" --servers "$servers" "${args[@]}" --at-step 3 --exec "kill -KILL $victim" \
	--json "$dir/kill.json" 2>&1)
rc=$?
echo "$out"
check_killed $rc "$victim" "$dir/kill.json" "$out"
echo "PASS: djinn-llm on three servers, and with one killed"
