#!/usr/bin/env bash
# `djinn graph` as a user runs it: --explain without a server (both phases
# annotated), then --run against djinn-dp (TCP): each step one round trip,
# equal to the local CPU reference.
#   test_graph_cli.sh DJINN_DP DJINN
set -u
dp_bin=$1 client_bin=$2
port=$((20000 + RANDOM % 20000))
log=$(mktemp /tmp/djinn-test-graph.XXXXXX)
cleanup() { kill -INT "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -f "$log"; }
fail() { echo "FAIL: $*"; exit 1; }

out=$("$client_bin" graph --explain 2>&1) || fail "graph --explain exited $?: $out"
echo "$out"
for want in "phase prefill: query length 8" "phase decode: query length 1" \
	    "attention#0" "mlp#1: " "kv_append: %" "stateful_kv_cache" "persistent_weight"; do
	echo "$out" | grep -qF "$want" || fail "explain: no '$want'"
done
"$client_bin" graph >/dev/null 2>&1 && fail "graph without --explain or --run succeeded"

"$dp_bin" -- --no-dpdk --ctl-port "$port" --stats-interval 0 >"$log" 2>&1 &
server=$!
trap cleanup EXIT
for _ in $(seq 150); do
	grep -q "control plane: listening" "$log" && break
	kill -0 "$server" 2>/dev/null || { echo "server died:"; cat "$log"; exit 1; }
	sleep 0.1
done
grep -q "control plane: listening" "$log" || { echo "server not up:"; cat "$log"; exit 1; }

out=$("$client_bin" graph --run --port "$port" --seed 3 2>&1)
rc=$?
echo "$out"
[ $rc -eq 0 ] || fail "graph --run exited $rc"
[ "$(echo "$out" | grep -c '^prefill: 1 round trip, 1 batch')" -eq 1 ] || fail "prefill not one round trip"
[ "$(echo "$out" | grep -c '^decode: 1 round trip, 1 batch')" -eq 1 ] || fail "decode not one round trip"
echo "$out" | grep -Eq "^decode: .*\(0 params, 0 states new; [1-9][0-9]* params reused\)" || fail "decode uploaded weights again"
[ "$(echo "$out" | grep -cw MATCH)" -eq 2 ] || fail "not two MATCH lines"
kill -INT "$server"
wait "$server"; src=$?
[ $src -eq 0 ] || fail "server exited $src on SIGINT"
echo "PASS: djinn graph"
