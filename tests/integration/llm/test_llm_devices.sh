#!/usr/bin/env bash
# The scheduler per (server, GPU) on djinn-dp without a GPU: two djinn-dp
# of one static fleet, each serving two simulated devices (--gpu
# sim:2:256M: host memory that pretends to be GPUs), and djinn-llm --fleet:
#   1. the scheduler sees four units, "HOST:PORT/sim:0" .. "/sim:1" of each
#      member, with the peer-copy links between the devices of one member
#      probed (to_device); the sequences spread over all four devices; the
#      tokens are the local CPU run's;
#   2. disaggregated with prefill on unit 0 (member 0's sim:0) and decode on
#      unit 1 (its sim:1): every KV cache moves once, by to_device on member
#      0 (64 moves between devices), none server to server, no byte
#      through this client; the tokens are still the reference's.
#   3. `djinn plan --sim 2 --gpus 4` places on 8 simulated units and names
#      them "sim1/cuda:2"; a decode unit of the prefill's own server is
#      reached by a device copy, the other server's over the network.
# Prompts of 16 and 4 decode steps keep it short on the 2-core CI machine.
#   test_llm_devices.sh DJINN_DP DJINN_LLM DJINN
set -u
dp_bin=$1 llm_bin=$2 djinn_bin=$3
. "$(dirname "$0")/llm_test_lib.sh" llm-devices

plan=$("$djinn_bin" plan --sim 2 --gpus 4 --layers 1 --prompt 8 --disagg 0:1,4 2>&1) ||
	{ echo "$plan"; fail "djinn plan --gpus 4 failed"; }
echo "$plan" | grep -q "^fleet: 8 units (server/GPU)" || { echo "$plan"; fail "plan: not 8 units"; }
echo "$plan" | grep -q "  sim1/cuda:2 " || { echo "$plan"; fail "plan: no unit sim1/cuda:2"; }
echo "$plan" | grep -q "sim0/cuda:0 -> sim0/cuda:1 .*a device copy on its server" ||
	{ echo "$plan"; fail "plan: no device copy to the decode GPU of the same server"; }
echo "$plan" | grep -q "sim0/cuda:0 -> sim1/cuda:0 .*between servers" ||
	{ echo "$plan"; fail "plan: no move between servers"; }

fleet_start 2 "$dp_bin" --gpu sim:2:256M

out=$("$llm_bin" --fleet "$members" --prompt 16 --steps 4 --homogeneous --baselines none \
	--disagg 0:1 --json "$dir/run.json" 2>&1)
rc=$?
echo "$out"
[ "$rc" -eq 0 ] || fail "djinn-llm exited $rc"
first=${members%%,*}
echo "$out" | grep -q "s1 $first/sim:1 " || fail "no unit '$first/sim:1'"
echo "$out" | grep -q "4 peer-copy links probed (to_device of 1 MiB)" ||
	fail "peer-copy links between the devices of a member not probed"
check "$dir/run.json" "j['config']['units'] == 4 and j['config']['servers'] == 4" "not four units"
check "$dir/run.json" "len(runs) == 2 and all(x['tokens_match'] and x['ok'] for x in runs)" \
	"a run's tokens differ from the local CPU run"
check "$dir/run.json" "len(r['spread_after_prefill']) == 4 and min(r['spread_after_prefill']) >= 1
	and sum(r['spread_after_prefill']) == 8" "sequences not spread over all four devices"
check "$dir/run.json" "r['kv_moves'] == 0 and r['kv_bytes_moved_after_prefill'] == 0" \
	"KV caches moved under co-location"
check "$dir/run.json" "[(x['spread_after_prefill'], x['spread_at_end'], x['kv_moves'],
	x['kv_moves_between_devices'], x['kv_moves_server_to_server'], x['kv_bytes_through_client'])
	for x in runs if x['name'] == 'djinn: disaggregated'] == [([8, 0, 0, 0], [0, 8, 0, 0], 64, 64, 0, 0)]" \
	"disaggregated caches not all moved sim:0 -> sim:1 by to_device on member 0"
echo "$out" | grep -q "of them between devices of one server (to_device): 64" ||
	fail "no report line of the moves between devices"
echo "PASS: djinn-llm over two members of two devices: four units, KV moved by to_device"
