#!/usr/bin/env bash
# Runs on the GPU machine with the binaries of scripts/runtime-carry.sh: the
# figures only a GPU moves. djinn-dp --gpu 0 with --metrics, the demo over
# memif (--size 512: x, y of 1 MiB in, 1 MiB out, gathered into GPU memory by
# the resident kernel), then:
#   1. /metrics: tensor bytes over dpdk exactly the demo's (2 MiB + 2 KiB in,
#      1 MiB out), GPU gather bytes >= what came in, at least one kernel
#      generation, memory families for device cuda:0 (total > 0, free <= total);
#   2. /djinn/memory and /djinn/stats on DPDK's telemetry socket (spoken to
#      directly: the device has no dpdk-telemetry.py), device cuda_0.
# Prints the scrape's djinn_gpu_* and djinn_memory_* lines; exit 0 on PASS.
#   bash scripts/runtime-carry.sh            (here, then carry .carry/runtime)
#   bash scripts/observability-device-check.sh
set -u
bin=$(pwd)/.carry/runtime
out=${OUT:-/tmp/observability-check}
export LD_LIBRARY_PATH=$bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
mkdir -p "$out"
py=python3
sock=/tmp/dj-obs-check.memif
echo 1024 >/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages 2>/dev/null
mkdir -p /dev/hugepages
mountpoint -q /dev/hugepages || mount -t hugetlbfs nodev /dev/hugepages 2>/dev/null
fail() { echo "FAIL: $*"; echo "--- server"; cat "$out/server.log"; exit 1; }

"$bin"/djinn-dp --vdev "net_memif0,role=server,socket=$sock,socket-abstract=no,bsize=9216" -l 0-1 \
	-- --gpu 0 --ctl-port 0 --metrics 127.0.0.1:0 --stats-interval 0 >"$out/server.log" 2>&1 &
server=$!
trap 'kill -INT $server 2>/dev/null; wait $server 2>/dev/null' EXIT
for _ in $(seq 300); do grep -q "^control plane: listening" "$out/server.log" && break; sleep 0.1; done
port=$(sed -n 's|^control plane: listening on 127.0.0.1:\([0-9]*\) .*|\1|p' "$out/server.log")
mport=$(sed -n 's|^metrics: http://127.0.0.1:\([0-9]*\)/metrics$|\1|p' "$out/server.log")
tsock=$(sed -n 's|^telemetry: \([^ ]*\) .*|\1|p' "$out/server.log")
[ -n "$port" ] && [ -n "$mport" ] || fail "server not up"
grep -Eq "GPU tensors received by (a )?resident gather kernel" "$out/server.log" || fail "no GPU placer"

"$bin"/djinn --vdev "net_memif0,role=client,socket=$sock,socket-abstract=no,bsize=9216" -l 2-3 \
	-- --port "$port" --path dpdk demo --size 512 >"$out/demo.log" 2>&1 || { cat "$out/demo.log"; fail "demo"; }
grep -q "over DPDK" "$out/demo.log" && grep -qw MATCH "$out/demo.log" || { cat "$out/demo.log"; fail "demo not over DPDK"; }

"$py" - "$mport" "$tsock" <<'PY' || fail "figures"
import json, re, socket, sys, time, urllib.request
time.sleep(0.3)
text = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=5).read().decode()
def value(name, labels=""):
    m = re.search(r"^" + re.escape(name + ("{" + labels + "}" if labels else "")) + r" (\S+)$", text, re.M)
    assert m, f"no {name}{{{labels}}}"
    return float(m.group(1))
n = 512 * 512 * 4
checks = [
    (value("djinn_tensor_bytes_total", 'path="dpdk",direction="in"'), 2 * n + 512 * 4, "=="),
    (value("djinn_tensor_bytes_total", 'path="dpdk",direction="out"'), n, "=="),
    (value("djinn_gpu_gather_bytes_total"), 2 * n + 512 * 4, ">="),
    (value("djinn_gpu_gather_kernel_generations_total"), 1, ">="),
    (value("djinn_gpu_gather_failures_total"), 0, "=="),
    (value("djinn_memory_total_bytes", 'device="cuda:0"'), 1, ">="),
    (value("djinn_memory_peak_bytes", 'device="cuda:0"'), 2 * n, ">="),
]
free, total = value("djinn_memory_free_bytes", 'device="cuda:0"'), value("djinn_memory_total_bytes", 'device="cuda:0"')
ok = all((v == w) if op == "==" else (v >= w) for v, w, op in checks) and 0 < free <= total
for line in text.splitlines():
    if line.startswith(("djinn_gpu_", "djinn_memory_", "djinn_tensor_bytes")):
        print(line)
print("metrics:", "ok" if ok else f"FAIL {checks}")
# DPDK telemetry v2: a SOCK_SEQPACKET socket; it greets, then answers each command.
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[2])
s.recv(16384)
for cmd in ("/djinn/memory", "/djinn/stats"):
    s.send(cmd.encode())
    reply = json.loads(s.recv(65536).decode())
    print(json.dumps(reply))
    if cmd == "/djinn/memory":
        mem = reply[cmd]["cuda_0"]
        ok = ok and mem["total"] > 0 and mem["peak"] >= 2 * n
    else:
        ok = ok and reply[cmd]["tensor_bytes_dpdk_in"] == 2 * n + 512 * 4
sys.exit(0 if ok else 1)
PY
echo "observability device check: PASS"
