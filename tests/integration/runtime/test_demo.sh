#!/usr/bin/env bash
# The demo end to end between two processes: djinn-dp and the djinn client.
#   test_demo.sh DJINN_DP DJINN MODE      MODE: dpdk (memif) or tcp (no DPDK)
# Passes when the client says which path it used, that path is MODE, and the
# server's result matches the local CPU computation.
set -u
dp_bin=$1 client_bin=$2 mode=$3
port=$((20000 + RANDOM % 20000))
sock=/tmp/djinn-test-demo-$$.memif
vdev_server="net_memif0,role=server,socket=$sock,socket-abstract=no,bsize=9216"
vdev_client="net_memif0,role=client,socket=$sock,socket-abstract=no,bsize=9216"
log=$(mktemp /tmp/djinn-test-demo.XXXXXX)
client_prefix=djdemo-$$-c
# Where EAL keeps run-time folders (as eal_create_runtime_dir decides).
if [ "$(id -u)" = 0 ]; then rundir=/var/run/dpdk; else rundir=${XDG_RUNTIME_DIR:-/tmp}/dpdk; fi
cleanup() { kill -INT "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -f "$sock" "$log"; }

if [ "$mode" = dpdk ]; then
	"$dp_bin" --vdev "$vdev_server" \
		-- --ctl-port "$port" --stats-interval 0 >"$log" 2>&1 &
else
	"$dp_bin" -- --no-dpdk --ctl-port "$port" --stats-interval 0 >"$log" 2>&1 &
fi
server=$!
trap cleanup EXIT
for _ in $(seq 150); do
	grep -q "control plane: listening" "$log" && break
	kill -0 "$server" 2>/dev/null || { echo "server died:"; cat "$log"; exit 1; }
	sleep 0.1
done
grep -q "control plane: listening" "$log" || { echo "server not up:"; cat "$log"; exit 1; }

# rc right after each client run: after "fi", $? would be the last
# assignment's (always 0).
if [ "$mode" = dpdk ]; then
	out=$("$client_bin" --vdev "$vdev_client" --file-prefix "$client_prefix" \
		-- --port "$port" --path dpdk demo --size 48 2>&1)
	rc=$?
	want="over DPDK"
else
	out=$("$client_bin" --port "$port" --path tcp demo --size 48 2>&1)
	rc=$?
	want="over TCP"
fi
echo "$out"
[ $rc -eq 0 ] || { echo "FAIL: client exited $rc"; cat "$log"; exit 1; }
echo "$out" | grep -q "$want" || { echo "FAIL: expected tensor bytes $want"; exit 1; }
echo "$out" | grep -qw "MATCH" || { echo "FAIL: no MATCH"; exit 1; }   # -w: not MISMATCH
kill -INT "$server"
wait "$server"; src=$?
[ $src -eq 0 ] || { echo "FAIL: server exited $src on SIGINT"; cat "$log"; exit 1; }
grep -q "shutting down" "$log" || { echo "FAIL: no clean shutdown"; cat "$log"; exit 1; }
# Nothing left behind: no run-time folder of either process, no socket file.
for p in "djinn-$server" "$client_prefix"; do
	[ ! -e "$rundir/$p" ] || { echo "FAIL: $rundir/$p left behind"; ls -la "$rundir/$p"; exit 1; }
done
[ ! -e "$sock" ] || { echo "FAIL: memif socket $sock left behind"; exit 1; }
echo "PASS: demo $mode"
