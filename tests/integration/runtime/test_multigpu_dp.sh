#!/usr/bin/env bash
# djinn-dp serving several devices, with no GPU: two simulated ones
# (--gpu sim:2:64M, host memory that pretends to be GPUs). A client written
# from docs/CONTROL.md ("Devices") alone chooses the session's device,
# places a tensor, moves it with to_device (byte-exact) and is refused an
# operation over two devices; STATS and the Prometheus endpoint then report
# memory, operations, sessions and moves per device. Bad --gpu and
# --gpu-move values are refused naming them, and --probe prints the plan
# of an injected 2-socket topology (DJINN_TOPOLOGY) with its warnings.
#   test_multigpu_dp.sh DJINN_DP TOPOLOGY_DIR
set -u
dp_bin=$1 topo=$2
py=/usr/bin/python3
work=$(mktemp -d /tmp/djinn-test-multigpu.XXXXXX)
server=
cleanup() { [ -n "$server" ] && kill -INT "$server" 2>/dev/null && wait "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$work/server.log" ] && cat "$work/server.log"; exit 1; }

# expect STATUS PATTERN CMD...: CMD exits with STATUS and says PATTERN (grep -E).
expect() {
	local want=$1 pattern=$2 out rc
	shift 2
	out=$("$@" 2>&1); rc=$?
	[ "$rc" -eq "$want" ] || fail "'$*' exited $rc, not $want: $out"
	echo "$out" | grep -qE -- "$pattern" || fail "'$*' did not say /$pattern/: $out"
}

expect 2 "--gpu-move: 'fast' is not one of auto, staged" "$dp_bin" -- --no-dpdk --gpu-move fast
expect 1 "no such CUDA device" "$dp_bin" -- --no-dpdk --ctl-port 0 --gpu 0,9
expect 1 "sim:N\[:SIZE\] takes N from 1 to 16" "$dp_bin" -- --no-dpdk --ctl-port 0 --gpu sim:0

metrics=()
"$dp_bin" --help | grep -q -- "--metrics" && metrics=(--metrics 127.0.0.1:0)
"$dp_bin" -- --no-dpdk --gpu sim:2:64M --ctl-port 0 --stats-interval 0 "${metrics[@]}" \
	>"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 150); do
	grep -q "^control plane: listening" "$work/server.log" && break
	kill -0 "$server" 2>/dev/null || fail "djinn-dp died"
	sleep 0.1
done
port=$(sed -n 's|^control plane: listening on 127.0.0.1:\([0-9]*\) .*|\1|p' "$work/server.log")
[ -n "$port" ] || fail "no control port"
grep -q "^compute: sim:0, sim:1 (simulated GPUs" "$work/server.log" || fail "compute line"

"$py" - "$port" <<'PY' || fail "the client's checks"
import json, socket, struct, sys

MAGIC = b"DJC1"
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
ids = iter(range(1, 1000))

def call(msg, payload=b""):
    msg["id"] = next(ids)
    body = json.dumps(msg).encode()
    sock.sendall(MAGIC + struct.pack(">IQ", len(body), len(payload)) + body + payload)
    hdr = b""
    while len(hdr) < 16:
        hdr += sock.recv(16 - len(hdr))
    jlen, plen = struct.unpack(">IQ", hdr[4:])
    data = b""
    while len(data) < jlen + plen:
        data += sock.recv(jlen + plen - len(data))
    return json.loads(data[:jlen]), data[jlen:]

def check(cond, what):
    if not cond:
        print("client: " + what, file=sys.stderr)
        sys.exit(1)

call({"type": "HELLO", "version": 1})
s, _ = call({"type": "SESSION", "device": "sim:1"})
check(s.get("device") == "sim:1", f"SESSION device: {s}")
values = struct.pack("<1000f", *[i * 0.5 - 7 for i in range(1000)])
p, _ = call({"type": "PUT", "dtype": "float32", "shape": [10, 100], "device": "sim:0"}, values)
check(p.get("device") == "sim:0", f"PUT device: {p}")
e, _ = call({"type": "EXECUTE", "op": "to_device", "inputs": [p["handle"]],
             "attrs": {"device": "sim:1"}})
out = e["results"][0]["outputs"][0]
check(out["device"] == "sim:1" and out["shape"] == [10, 100], f"to_device: {e}")
g, got = call({"type": "GET", "handle": out["handle"]})
check(g.get("device") == "sim:1" and got == values, "the moved bytes differ")
err, _ = call({"type": "EXECUTE", "op": "add", "inputs": [p["handle"], out["handle"]]})
check(err.get("type") == "ERROR" and err.get("code") == -18 and
      "is on sim:0" in err.get("message", ""), f"two devices: {err}")
bad, _ = call({"type": "ALLOC", "dtype": "float32", "shape": [1], "device": "cuda:0"})
check(bad.get("code") == -19 and "it has sim:0, sim:1" in bad.get("message", ""), f"{bad}")
st, _ = call({"type": "STATS"})
mem = {m["device"]: m for m in st["backend"]["memory"]}
check(mem["sim:0"]["used"] == 4000 and mem["sim:1"]["used"] == 4000, f"memory: {mem}")
check(mem["sim:0"]["moves_out"] == 1 and mem["sim:1"]["moves_in"] == 1, f"moves: {mem}")
check(mem["sim:1"]["sessions"] == 1 and mem["sim:1"]["total"] == 64 << 20, f"{mem}")
load = {d["name"]: d for d in st["member"]["load"]["devices"]}
check(load["sim:0"]["mem_used"] == 4000 and "queued" in load["sim:1"], f"load: {load}")
check([g["name"] for g in st["member"]["caps"]["gpus"]] == ["sim:0", "sim:1"], "caps")
check("to_device" in st["member"]["caps"]["ops"], "to_device not in caps")
print("client: device field, to_device, -18, -19, STATS per device: ok")
PY

mport=$(sed -n 's|^metrics: http://127.0.0.1:\([0-9]*\)/metrics$|\1|p' "$work/server.log")
if [ -n "$mport" ]; then
	"$py" -c "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:$mport/metrics').read().decode())" \
		>"$work/metrics.txt" || fail "GET /metrics"
	for want in 'djinn_memory_used_bytes{device="sim:0"} 4000' \
		'djinn_device_moves_total{device="sim:1",direction="in"} 1' \
		'djinn_device_move_bytes_total{device="sim:0",direction="out"} 4000' \
		'djinn_device_sessions{device="sim:1"} 1' \
		'djinn_device_queued{device="sim:0"} 0' \
		'djinn_device_ops_total{device="sim:0"} 0'; do
		grep -qF "$want" "$work/metrics.txt" || fail "metrics lack '$want'"
	done
	if command -v promtool >/dev/null; then
		promtool check metrics <"$work/metrics.txt" >"$work/lint.txt" 2>&1 ||
			{ cat "$work/lint.txt"; fail "promtool check metrics"; }
	fi
	echo "metrics: per-device families present"
else
	echo "metrics: skipped (built without libmicrohttpd)"
fi

# --probe of an injected topology: 2 sockets, the NIC on node 0, EAL's
# lcores 16 and 17 on node 1 and 2 on node 0, a GPU of unknown node.
probe=$(DJINN_TOPOLOGY="$topo/2s4g-eal.json" "$dp_bin" --no-huge -m 256 -l 0-1 \
	--file-prefix "dj_test_mgpu_$$" \
	--vdev "net_memif0,role=server,socket=$work/probe.memif,socket-abstract=no" \
	-- --probe --gpu all --dp-queues 2 2>&1)
if echo "$probe" | grep -q "EAL up"; then
	for want in "topology: 2 NUMA node(s) ($topo/2s4g-eal.json)" \
		"placement: port 0000:31:00.0: mempools and send staging on node 0; polling lcore(s) 2,16 (1 on node 0)" \
		"warning: cuda:2 (node 1) and port 0000:31:00.0 (node 0) cross sockets" \
		"warning: cuda:3: NUMA node unknown on a machine of 2 nodes" \
		"warning: 1 of 2 polling lcore(s) are off the port's node 0: run with EAL -l 0,1,2"; do
		echo "$probe" | grep -qF -- "$want" || fail "probe lacks '$want': $probe"
	done
	echo "probe: injected topology, plan and warnings: ok"
else
	echo "probe: skipped (EAL does not start here)"
fi
echo "PASS"
