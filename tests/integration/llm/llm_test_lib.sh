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
# within 15 s; $addr is its control address.
wait_listening() {
	for _ in $(seq 150); do
		grep -q "control plane: listening" "$dir/dp$1.log" && break
		kill -0 "${pids[$1]}" 2>/dev/null || { cat "$dir/dp$1.log"; fail "server $1 died"; }
		sleep 0.1
	done
	addr=$(grep -o "listening on 127.0.0.1:[0-9]*" "$dir/dp$1.log" | grep -o "127.0.0.1:[0-9]*")
	[ -n "$addr" ] || { cat "$dir/dp$1.log"; fail "server $1 not up"; }
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
