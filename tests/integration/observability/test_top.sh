#!/usr/bin/env bash
# djinn top under tmux: the screen shows the server's figures (its compute and
# data plane (memif, no peer needed), its lcore's busy share, the memory a
# session holds, the limit, requests it answered), q exits with
# status 0 and Ctrl-C too, and the terminal is as it was before (echo and
# canonical mode back).
#   test_top.sh DJINN_DP DJINN [SCREEN_OUT]
# SCREEN_OUT, where given, receives a captured screen.
set -u
dp_bin=$1 client_bin=$2 screen_out=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
. "$here/lib.sh"
command -v tmux >/dev/null || { echo "SKIP: tmux not installed"; exit 77; }

work=$(mktemp -d /tmp/djinn-test-top.XXXXXX)
tm() { tmux -L "djinn-top-$$" "$@"; }
server= client=
cleanup() {
	tm kill-server 2>/dev/null
	exec 3>&- 2>/dev/null
	[ -n "$client" ] && kill "$client" 2>/dev/null && wait "$client" 2>/dev/null
	[ -n "$server" ] && kill -INT "$server" 2>/dev/null && wait "$server" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- screen"; cat "$work/screen.txt" 2>/dev/null; echo "--- server"; cat "$work/server.log"; exit 1; }

dp_start "$work/server.log" - --vdev "net_memif0,role=server,socket=$work/memif.sock,socket-abstract=no,bsize=9216" \
	-- --ctl-port 0 --stats-interval 0 --total-mem-limit 1G --dp-idle-sleep-us 20

# A session holding one 1 MiB tensor (262144 float32) while top looks.
mkfifo "$work/in"
"$py" "$here/rawclient.py" "$port" 262144 top-test <"$work/in" >"$work/client.out" 2>&1 &
client=$!
exec 3>"$work/in"
for _ in $(seq 50); do grep -q "^session" "$work/client.out" && break; sleep 0.1; done
grep -q "^session" "$work/client.out" || fail "client: $(cat "$work/client.out")"

# top in a 150x40 terminal; what it leaves behind: its status and the
# terminal's modes.
run_top() {
	tm new-session -d -s "$1" -x 150 -y 40 \
		"stty -a >'$work/stty.before'; '$client_bin' --port $port top; echo \$? >'$work/$1.rc'; stty -a >'$work/$1.stty'; sleep 30"
}
run_top q
# Requests while top watches (once it drew a frame): 200 PINGs.
for _ in $(seq 50); do
	sleep 0.1
	tm capture-pane -p -t q >"$work/screen.txt"
	grep -q "^  requests  .* STATS" "$work/screen.txt" && break
done
"$client_bin" --port "$port" ping -n 200 >/dev/null || fail "ping"
shown=
for _ in $(seq 50); do
	sleep 0.2
	tm capture-pane -p -t q >"$work/screen.txt"
	grep -q "used 1.0 MiB" "$work/screen.txt" && grep -q "PING" "$work/screen.txt" && { shown=1; break; }
done
[ -n "$shown" ] || fail "the screen does not show the session's tensor and the PINGs"
grep -q "^127.0.0.1:$port .* 2/0 " "$work/screen.txt" || fail "no row for the server with 2 sessions (the client's, top's)"
grep -q "host (host memory, CPU operations), data plane dpdk" "$work/screen.txt" ||
	fail "compute and data plane not shown"
grep -Eq "^  lcores    0: [0-9.]+% busy" "$work/screen.txt" || fail "the lcore's busy share not shown"
grep -q "host: used 1.0 MiB (peak 1.0 MiB), 1 tensors, free .* limit 1.0 GiB" "$work/screen.txt" ||
	fail "memory line"
answered=$(sed -n 's|^  requests  \([0-9]*\) answered.*|\1|p' "$work/screen.txt")
[ "${answered:-0}" -ge 200 ] || fail "requests answered: '$answered', want at least the 200 PINGs"
# Requests per second and latency percentiles are numbers.
grep -Eq "^127.0.0.1:$port +2/0 +[0-9]+\.[0-9] +0\.0 +0\.00 +0\.00 +[0-9.]+ +[0-9.]+ +0\+0" "$work/screen.txt" ||
	fail "the table row"
[ -n "$screen_out" ] && cp "$work/screen.txt" "$screen_out"
cat "$work/screen.txt"

tm send-keys -t q q
for _ in $(seq 30); do [ -s "$work/q.stty" ] && break; sleep 0.1; done
[ "$(cat "$work/q.rc" 2>/dev/null)" = 0 ] || fail "q: top exited '$(cat "$work/q.rc" 2>/dev/null)'"
# Echo and canonical mode as before (stty -a says "icanon", not "-icanon").
mode_on() { grep -Eq "(^| )$1( |$)" "$2"; }
for mode in icanon echo; do
	mode_on "$mode" "$work/stty.before" || fail "the pane's terminal started without $mode"
	mode_on "$mode" "$work/q.stty" || fail "$mode not restored after q"
done

run_top c
sleep 1.5
tm send-keys -t c C-c
for _ in $(seq 30); do [ -s "$work/c.stty" ] && break; sleep 0.1; done
[ "$(cat "$work/c.rc" 2>/dev/null)" = 0 ] || fail "Ctrl-C: top exited '$(cat "$work/c.rc" 2>/dev/null)'"
for mode in icanon echo; do
	mode_on "$mode" "$work/c.stty" || fail "$mode not restored after Ctrl-C"
done

echo >&3; exec 3>&-
wait "$client"; client=
kill -INT "$server"; wait "$server"; rc=$?; server=
[ $rc -eq 0 ] || fail "djinn-dp exited $rc"
echo "PASS: top"
