#!/usr/bin/env bash
# What the djinn-llm integration tests share (sourced): a temporary
# directory, the servers they start (stopped at exit), waiting for a server
# to listen, failing with a message, and assertions over djinn-llm's JSON.
#   . llm_test_lib.sh NAME       (the directory is /tmp/djinn-test-NAME.XXXXXX)

dir=$(mktemp -d "/tmp/djinn-test-$1.XXXXXX")
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

# wait_listening I: server I (log $dir/dpI.log, pid ${pids[I]}) listens
# within 15 s; $addr is its control address (loopback or a namespace's).
wait_listening() {
	for _ in $(seq 150); do
		grep -q "control plane: listening" "$dir/dp$1.log" && break
		kill -0 "${pids[$1]}" 2>/dev/null || { cat "$dir/dp$1.log"; fail "server $1 died"; }
		sleep 0.1
	done
	addr=$(grep -o "listening on [0-9.]*:[0-9]*" "$dir/dp$1.log" | grep -o "[0-9.]*:[0-9]*$")
	[ -n "$addr" ] || { cat "$dir/dp$1.log"; fail "server $1 not up"; }
}

# fleet_start N DJINN_DP ARGS...: N djinn-dp of one static fleet on
# loopback (one fleet token, $dir/token), each with ARGS, all listening;
# $members is their list. Their ports are the OS's picks now (each server
# must know the others before it starts); a port taken meanwhile fails the
# start.
fleet_start() {
	local n=$1 dp=$2 ports p i
	shift 2
	ports=$("$py" -c "
import socket
ss = [socket.socket() for _ in range($n)]
for s in ss: s.bind(('127.0.0.1', 0))
print(' '.join(str(s.getsockname()[1]) for s in ss))")
	members=""
	for p in $ports; do members="${members:+$members,}127.0.0.1:$p"; done
	echo "djinn-llm-test-$$" >"$dir/token"
	i=${#pids[@]}
	for p in $ports; do
		"$dp" -- --no-dpdk --ctl-port "$p" --stats-interval 0 --fleet "$members" \
			--fleet-token-file "$dir/token" "$@" >"$dir/dp$i.log" 2>&1 &
		pids+=($!)
		i=$((i + 1))
	done
	for i in $(seq 0 $((n - 1))); do
		wait_listening "$i"
	done
	echo "fleet: $members"
}

# check JSON PYTHON-EXPR MESSAGE: the expression over j (the JSON), runs
# (its runs) and r (the first, the scheduler's) holds.
check() {
	"$py" -c "import json,sys; j=json.load(open('$1')); runs=j['runs']; r=runs[0]; sys.exit(0 if ($2) else 1)" ||
		{ cat "$1"; fail "$3"; }
}

# check_killed RC VICTIM JSON OUT: a djinn-llm run (exit status RC, its JSON
# and output) during which server 1 (pid VICTIM) was killed finished with
# the reference's tokens, recorded the loss and rebuilt the sequences that
# lived there on the survivors.
check_killed() {
	[ "$1" -eq 0 ] || fail "djinn-llm with server 1 killed exited $1"
	kill -0 "$2" 2>/dev/null && fail "server 1 still running"
	check "$3" "r['tokens_match'] and r['ok']" "tokens differ after the kill"
	check "$3" "j['servers_lost'] == 1 and j['sequences_rebuilt'] >= 2" "no recovery recorded"
	check "$3" "r['spread_at_end'][1] == 0 and sum(r['spread_at_end']) == 8" \
		"sequences not all on the survivors"
	echo "$4" | grep -q "recovery: seq[0-9]* prefilled again" || fail "no rebuild line"
}

# check_fleet_run RC OUT JSON DPDK: a djinn-llm --fleet run of three members
# (exit status RC, its output and JSON; --prompt 16 --steps 6 --baselines
# one-server --disagg 0:1,2) probed its links server to server, gave the
# local CPU run's tokens in all three runs, spread 3/3/2 with no KV bytes
# moved under co-location, and in the disaggregated run moved all 64 KV
# caches server to server, exactly their bytes, none through the client;
# DPDK of them (0, or 64 where the members have data planes) over DPDK.
check_fleet_run() {
	local out=$2 j=$3 dpdk=$4 kv_bytes=$((8 * 4 * 2 * (16 + 6) * 256 * 4))
	[ "$1" -eq 0 ] || fail "djinn-llm --fleet exited $1"
	echo "$out" | grep -q "links probed server to server" || fail "links not probed server to server"
	echo "$out" | grep -q "link s0 -> s2: .*(server to server)" || fail "no server-to-server link figure"
	check "$j" "len(runs) == 3 and all(x['tokens_match'] and x['ok'] for x in runs)" \
		"a run's tokens differ from the local CPU run"
	check "$j" "r['kv_bytes_moved_after_prefill'] == 0 and r['state_moves'] == 0" \
		"KV-cache bytes moved after prefill under co-location"
	check "$j" "sorted(r['spread_after_prefill']) == [2, 3, 3]" "sequences not spread 3/3/2"
	check "$j" "[x['spread_after_prefill'] for x in runs if x['name'] == 'djinn: disaggregated'] == [[8, 0, 0]]" \
		"disaggregated prefill not all on member 0"
	check "$j" "[(x['kv_moves'], x['kv_moves_server_to_server'], x['kv_moves_over_dpdk'],
		x['kv_bytes_server_to_server'], x['kv_bytes_moved_after_prefill'],
		x['kv_bytes_through_client']) for x in runs if x['name'] == 'djinn: disaggregated']
		== [(64, 64, $dpdk, $kv_bytes, $kv_bytes, 0)]" \
		"KV caches not moved server to server ($dpdk over DPDK), exactly $kv_bytes bytes, none through the client"
	echo "$out" | grep -q "server to server 64 ($dpdk over DPDK), $kv_bytes bytes" ||
		fail "no report line of the direct KV moves"
}
