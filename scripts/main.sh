#!/usr/bin/env bash
# Set up (idempotent) and run the main job, the original system's demo:
# djinn-dp serves on this machine (EAL on its default memif vdev), and the
# djinn client sends x, y (100x100, random), runs matmul, adds a bias, applies
# relu on the server, fetches the result and checks it against a local CPU
# computation, step by step, over the DPDK data path where it comes up and
# over TCP otherwise, saying which. Then the same demo as the original system's
# Python program (examples/simple_remote_demo.py: DjinnCoordinator,
# execute_remote_operation('aten::matmul', [x, y], 'localhost:5556')) against a
# djinn-dp of its own on port 5556 (TCP), through the Python frontend.
#   scripts/main.sh [djinn demo options, e.g. --size 256]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash scripts/setup.sh build >/dev/null
[ "$(id -u)" = 0 ] && bash scripts/hugepages.sh 512 >/dev/null 2>&1 || true

port=$((20000 + RANDOM % 20000))
sock=/tmp/djinn-main-$$.memif
log=$(mktemp /tmp/djinn-dp.XXXXXX.log)
build/apps/djinn-dp --vdev "net_memif0,role=server,socket=$sock,socket-abstract=no,bsize=9216" \
	-- --ctl-port "$port" --stats-interval 0 --dp-idle-sleep-us 20 >"$log" 2>&1 &
server=$!
trap 'kill -INT $server 2>/dev/null; wait $server 2>/dev/null; rm -f "$sock"' EXIT
for _ in $(seq 100); do
	grep -q "control plane: listening" "$log" && break
	kill -0 $server 2>/dev/null || { cat "$log"; exit 1; }
	sleep 0.1
done
echo "== djinn-dp (server) =="
grep -v '^EAL\|^TELEMETRY\|virtio\|mp action' "$log" || true
echo "== djinn demo (client) =="
build/apps/djinn --vdev "net_memif0,role=client,socket=$sock,socket-abstract=no,bsize=9216" \
	-- --port "$port" --dp-idle-sleep-us 20 demo "$@" 2> >(grep -v '^EAL\|^TELEMETRY\|virtio\|mp action' >&2)
echo "== the original's Python demo (examples/simple_remote_demo.py) =="
rc=0
/usr/bin/python3 examples/simple_remote_demo.py || rc=$?
# 77: port 5556 is held by something that is not a Djinn server (said above).
[ "$rc" = 77 ] && rc=0
exit "$rc"

