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
dir=$(mktemp -d /tmp/djinn-test-llm.XXXXXX)
py=/usr/bin/python3
[ -x "$py" ] || py=python3
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

# start N: N servers on ports the OS picks; $servers, ${pids[@]}.
start() {
	servers=""
	pids=()
	for i in $(seq 0 $(($1 - 1))); do
		"$dp_bin" -- --no-dpdk --ctl-port 0 --stats-interval 0 >"$dir/dp$i.log" 2>&1 &
		pids+=($!)
	done
	for i in $(seq 0 $(($1 - 1))); do
		for _ in $(seq 150); do
			grep -q "control plane: listening" "$dir/dp$i.log" && break
			kill -0 "${pids[$i]}" 2>/dev/null || { cat "$dir/dp$i.log"; fail "server $i died"; }
			sleep 0.1
		done
		addr=$(grep -o "listening on 127.0.0.1:[0-9]*" "$dir/dp$i.log" | grep -o "127.0.0.1:[0-9]*")
		[ -n "$addr" ] || { cat "$dir/dp$i.log"; fail "server $i not up"; }
		servers="${servers:+$servers,}$addr"
	done
}

# check JSON PYTHON-EXPR MESSAGE: the expression over j (the JSON) holds.
check() {
	"$py" -c "import json,sys; j=json.load(open('$1')); r=j['runs'][0]; sys.exit(0 if ($2) else 1)" ||
		{ cat "$1"; fail "$3"; }
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
[ $rc -eq 0 ] || fail "djinn-llm with a server killed exited $rc"
kill -0 "$victim" 2>/dev/null && fail "server 1 still running"
j=$dir/kill.json
check "$j" "r['tokens_match'] and r['ok']" "tokens differ after the kill"
check "$j" "j['servers_lost'] == 1 and j['sequences_rebuilt'] >= 2" "no recovery recorded"
check "$j" "r['spread_at_end'][1] == 0 and sum(r['spread_at_end']) == 8" \
	"sequences not all on the survivors"
echo "$out" | grep -q "recovery: seq[0-9]* prefilled again" || fail "no rebuild line"
echo "PASS: djinn-llm on three servers, and with one killed"
