#!/usr/bin/env bash
# One request followed across both processes: the djinn client (JSON log
# lines, DPDK's included) and djinn-dp (text lines) name the same request id
# for every request of a run over DPDK, and the same data-plane transfer id
# for its PUTs and GET.
#   test_tracing.sh DJINN_DP DJINN
set -u
dp_bin=$1 client_bin=$2
py=/usr/bin/python3
. "$(dirname "$0")/lib.sh"
"$py" -c 'import numpy' 2>/dev/null || { echo "SKIP: $py has no numpy (python3-numpy)"; exit 77; }
work=$(mktemp -d /tmp/djinn-test-trace.XXXXXX)
sock=$work/memif.sock
server=
cleanup() { [ -n "$server" ] && kill -INT "$server" 2>/dev/null && wait "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- server"; cat "$work/server.log"; echo "--- client"; cat "$work/client.log"; exit 1; }

dp_start "$work/server.log" - --vdev "net_memif0,role=server,socket=$sock,socket-abstract=no,bsize=9216" \
	-- --ctl-port 0 --stats-interval 0 --dp-idle-sleep-us 20 --log-level debug
"$py" -c "import numpy as np; np.save('$work/a.npy', np.arange(4096, dtype=np.float32))"
"$client_bin" --vdev "net_memif0,role=client,socket=$sock,socket-abstract=no,bsize=9216" \
	-- --port "$port" --path dpdk --dp-idle-sleep-us 20 --log-level debug --log-format json \
	run add "$work/a.npy" "$work/a.npy" -o "$work/out.npy" >"$work/client.out" 2>"$work/client.log" ||
	fail "client run"
kill -INT "$server"; wait "$server"; server=

"$py" - "$work/client.log" "$work/server.log" <<'PY' || fail "request ids do not match"
import json, re, sys
client = [json.loads(l) for l in open(sys.argv[1]).read().splitlines()]
server = open(sys.argv[2]).read().splitlines()
assert all({"time", "level", "component", "message"} <= set(o) for o in client)
assert any(o["component"] == "dpdk" for o in client), "DPDK's lines are not JSON lines"
def srv(req, pattern):
    r = re.compile(r"^\S+ \w+ +ctl req=" + re.escape(req) + r": " + pattern)
    return [l for l in server if r.search(l)]
replies = [o for o in client if o["component"] == "ctl-client" and " ok in " in o["message"]]
kinds = [o["message"].split()[0] for o in replies]
# Handshake, two PUTs (each PUT + PUT_DONE), EXECUTE, GET, BYE.
assert kinds.count("PUT") == 2 and kinds.count("PUT_DONE") == 2, kinds
assert "EXECUTE" in kinds and "GET" in kinds and "SESSION" in kinds, kinds
for o in replies:
    kind = o["message"].split()[0]
    assert srv(o["req"], re.escape(kind) + r" ok in "), (kind, o["req"])
transfers = [o for o in client if re.search(r"(PUT|GET) over dpdk, xfer \d+, \d+ B$", o["message"])]
assert len(transfers) == 3, transfers
for o in transfers:
    kind, xfer, nbytes = re.search(r"(PUT|GET) over dpdk, xfer (\d+), (\d+) B", o["message"]).groups()
    done = "PUT_DONE" if kind == "PUT" else "GET"
    tail = rf"{done} ok in [0-9.]+ ms \(xfer {xfer}, {nbytes} B over dpdk\)$"
    assert srv(o["req"], tail), (o, tail)
    if kind == "PUT":
        assert srv(o["req"], rf"session \d+: PUT over dpdk, xfer {xfer}, {nbytes} B: receiver armed"), o
    # The whole of this request, both sides, in time order.
    print("request", o["req"], "xfer", xfer)
    for l in server:
        if "req=" + o["req"] + ":" in l:
            print("  server:", l)
    for c in client:
        if c.get("req") == o["req"]:
            print("  client:", c["time"], c["message"])
print(f"{len(replies)} requests matched on both sides")
PY
echo "PASS: tracing"
