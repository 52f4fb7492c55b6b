#!/usr/bin/env bash
# The scheduler over a fleet (dj_sched_create_fleet): three djinn-dp of one
# static fleet (one fleet token, TCP on loopback) and djinn-llm --fleet.
# Asserted from its JSON and report:
#   1. the links between members were probed server to server; the
#      scheduler's run and the one-server baseline give the local CPU
#      run's tokens; sequences spread 3/3/2; zero KV bytes moved after
#      prefill;
#   2. disaggregated (prefill on member 0, decode on 1 and 2): every KV
#      cache that moved went server to server with dj_fleet_move (the
#      direct counter equals the moves, zero bytes through this client),
#      and the bytes moved are exactly the caches' (8 sequences x 4 layers
#      x K and V x prompt+steps positions x d_model x 4 bytes); the tokens
#      are still the reference's, so the bytes arrived intact;
#   3. a member killed (SIGKILL) before decode step 3, and the fleet's view
#      given time to see it: the scheduler marks it down before the next
#      fetch, rebuilds its sequences from their lineage on the survivors,
#      and the tokens still equal the reference (and so the one-server
#      run's of part 1).
# Prompts of 16 and 6 decode steps keep it short on the 2-core CI machine.
#   test_llm_fleet.sh DJINN_DP DJINN_LLM
set -u
dp_bin=$1 llm_bin=$2
. "$(dirname "$0")/llm_test_lib.sh" llm-fleet

fleet_start 3 "$dp_bin" --gpu none

args=(--fleet "$members" --prompt 16 --steps 6 --homogeneous)

# 1 and 2: the scheduler, the one-server baseline, and disaggregated.
out=$("$llm_bin" "${args[@]}" --baselines one-server --disagg 0:1,2 --json "$dir/run.json" 2>&1)
rc=$?
echo "$out"
check_fleet_run $rc "$out" "$dir/run.json" 0

# 3: member 1 killed; the view has a few refreshes (500 ms each) to see it.
victim=${pids[1]}
out=$("$llm_bin" "${args[@]}" --baselines none --at-step 3 \
	--exec "kill -KILL $victim; sleep 2" --json "$dir/kill.json" 2>&1)
rc=$?
echo "$out"
check_killed $rc "$victim" "$dir/kill.json" "$out"
check "$dir/kill.json" "j['fetch_retries'] == 0" \
	"the departure was found by a failed fetch, not before it"
echo "$out" | grep -q "member .* left the fleet and does not answer" ||
	fail "the departure was not seen in the fleet's view"
# 4: member 1 comes back only after djinn-llm started: it waits for every
# listed member (up to the fleet's member_wait_ms) before its scheduler
# takes those up, so the run spreads over all three again.
port1=${members#*,}; port1=${port1%%,*}; port1=${port1##*:}
(sleep 1.5; exec "$dp_bin" -- --no-dpdk --gpu none --ctl-port "$port1" --stats-interval 0 \
	--fleet "$members" --fleet-token-file "$dir/token" >"$dir/dp-late.log" 2>&1) &
pids+=($!)
out=$("$llm_bin" "${args[@]}" --baselines none --json "$dir/late.json" 2>&1)
rc=$?
echo "$out"
[ "$rc" -eq 0 ] || fail "djinn-llm with a member starting late exited $rc"
check "$dir/late.json" "sorted(r['spread_after_prefill']) == [2, 3, 3] and r['tokens_match']" \
	"the member that started late was left out"
echo "PASS: djinn-llm over a fleet of three: placed, KV moved server to server, a member lost, a member late"
