#!/usr/bin/env bash
# The scheduler's acceptance workload on the bridge fleet (root): three
# server namespaces and a client namespace on one Linux bridge
# (scripts/fleet.sh up), djinn-dp in each server namespace with its DPDK
# data plane on net_af_packet over its veth, the three one static fleet;
# djinn-llm --fleet in the client namespace. djinn-llm takes no EAL
# arguments, so the client reaches the members over TCP across the bridge;
# the members' KV moves go member to member over their af_packet data
# planes. Asserted from its JSON and report (check_fleet_run, as
# test_llm_fleet.sh): links probed server to server; the scheduler's, the
# one-server and the disaggregated runs give the local CPU run's tokens;
# spread 3/3/2 with no KV bytes moved under co-location; disaggregated
# (prefill on member 0, decode on 1 and 2): all 64 KV caches moved server
# to server, all 64 over DPDK, exactly their bytes, zero through the client.
# Prompts of 16 and 6 decode steps keep it short on the 2-core CI machine.
# Skipped (77) without root or where network namespaces cannot be made.
#   test_llm_bridge.sh DJINN_DP DJINN_LLM DJINN FLEET_SH
set -u
dp_bin=$1 llm_bin=$2 djinn_bin=$3 fleet_sh=$4
[ "$(id -u)" = 0 ] || { echo "SKIP: network namespaces need root"; exit 77; }
command -v ip >/dev/null 2>&1 || { echo "SKIP: no ip (iproute2)"; exit 77; }
# fleet.sh names are at most 10 characters; the PID keeps parallel runs apart.
name="dlb$(($$ % 1000000))"
if ! ip netns add "$name-probe" 2>/dev/null; then
	echo "SKIP: cannot create network namespaces"
	exit 77
fi
ip netns del "$name-probe"
. "$(dirname "$0")/llm_test_lib.sh" llm-bridge

# Every exit path: the servers stopped (cleanup), then the namespaces and
# the bridge, and the EAL run-time folders of our prefixes.
bridge_down() {
	cleanup
	bash "$fleet_sh" down "$name" >/dev/null 2>&1
	rm -rf /var/run/dpdk/"$name"-s*
}
trap bridge_down EXIT
trap 'exit 143' TERM INT
bash "$fleet_sh" up 3 "$name" || fail "fleet.sh up 3 $name"

members=10.77.0.1:18515,10.77.0.2:18515,10.77.0.3:18515
echo "djinn-llm-bridge-test-$$" >"$dir/token"
for i in 0 1 2; do
	ip netns exec "$name-s$i" "$dp_bin" -l 0,1 --no-pci --no-huge -m 512 \
		--file-prefix "$name-s$i" --vdev "net_af_packet0,iface=$name-v$i,qpairs=1" -- \
		--listen "10.77.0.$((i + 1))" --ctl-port 18515 --dp-ip "10.78.0.$((i + 1))" \
		--dp-frame-size 1514 --dp-idle-sleep-us 20 --gpu none --stats-interval 0 \
		--fleet "$members" --fleet-token-file "$dir/token" >"$dir/dp$i.log" 2>&1 &
	pids+=($!)
done
for i in 0 1 2; do
	wait_listening "$i"
	grep -q "tensor bytes over DPDK" "$dir/dp$i.log" ||
		{ cat "$dir/dp$i.log"; fail "server $i has no DPDK data plane"; }
done
# The client's view, as djinn-llm's first refresh will read it, until every
# member answers across the bridge (15 s): on a loaded 2-core machine the
# first STATS of a member may miss the monitor's 500 ms connect timeout.
for _ in $(seq 30); do
	view=$(ip netns exec "$name-c" "$djinn_bin" fleet --fleet "$members" 2>&1)
	echo "$view" | grep -q "^membership: .*, 3 up" && break
	sleep 0.5
done
echo "$view"
echo "$view" | grep -q "^membership: .*, 3 up" || fail "the client does not see the three members"
echo "fleet: $members (data planes 10.78.0.1..3 over af_packet)"

out=$(ip netns exec "$name-c" "$llm_bin" --fleet "$members" --prompt 16 --steps 6 \
	--homogeneous --baselines one-server --disagg 0:1,2 --json "$dir/run.json" 2>&1)
rc=$?
echo "$out"
check_fleet_run $rc "$out" "$dir/run.json" 64
echo "PASS: djinn-llm over the bridge fleet: placed, KV moved server to server over DPDK"
