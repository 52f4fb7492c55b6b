#!/usr/bin/env bash
# DPDK's telemetry socket answers djinn-dp's /djinn/... commands through
# DPDK's own dpdk-telemetry.py, with the figures of a session held open by a
# client written from docs/CONTROL.md alone; djinn-dp's --log-format json
# lines (DPDK's own included) parse, and name that client's request id.
#   test_telemetry.sh DJINN_DP DPDK_TELEMETRY_PY
set -u
dp_bin=$1 telemetry_py=$2
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
. "$here/lib.sh"
[ -f "$telemetry_py" ] || { echo "SKIP: no $telemetry_py (scripts/build-dpdk.sh installs it)"; exit 77; }

work=$(mktemp -d /tmp/djinn-test-telemetry.XXXXXX)
server= client=
cleanup() {
	exec 3>&- 2>/dev/null
	[ -n "$client" ] && kill "$client" 2>/dev/null && wait "$client" 2>/dev/null
	[ -n "$server" ] && kill -INT "$server" 2>/dev/null && wait "$server" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- stdout"; cat "$work/server.out"; echo "--- stderr"; cat "$work/server.err"; exit 1; }

dp_start "$work/server.out" "$work/server.err" \
	--vdev "net_memif0,role=server,socket=$work/memif.sock,socket-abstract=no,bsize=9216" \
	-- --ctl-port 0 --stats-interval 0 --dp-idle-sleep-us 20 --log-level debug --log-format json
line=$(grep "^telemetry: " "$work/server.out") || fail "no telemetry socket printed"
sockpath=$(echo "$line" | cut -d' ' -f2)
prefix=$(echo "$line" | sed -n 's|.*dpdk-telemetry.py -f \([^ ;]*\).*|\1|p')
[ -S "$sockpath" ] || fail "telemetry socket $sockpath missing"
[ "$prefix" = "djinn-$server" ] || fail "file prefix '$prefix', want djinn-$server"

# A session with one 4096-byte tensor, held open while telemetry looks.
mkfifo "$work/in"
"$py" "$here/rawclient.py" "$port" 1024 py-trace-1 <"$work/in" >"$work/client.out" 2>&1 &
client=$!
exec 3>"$work/in"
for _ in $(seq 50); do grep -q "^session" "$work/client.out" && break; sleep 0.1; done
read -r _ session _ handle <"$work/client.out" || fail "client: $(cat "$work/client.out")"
sleep 0.3 # the session list is published every 100 ms

printf '/djinn/stats\n/djinn/sessions\n/djinn/memory\n/djinn/requests\n/djinn/lcores\n/help,/djinn/stats\n' |
	"$py" "$telemetry_py" -f "$prefix" >"$work/telemetry.out" 2>&1 || fail "dpdk-telemetry.py: $(cat "$work/telemetry.out")"
"$py" - "$work/telemetry.out" "$session" <<'PY' || { cat "$work/telemetry.out"; fail "telemetry figures"; }
import json, sys
out = {}
for line in open(sys.argv[1]):
    line = line.strip()
    if line.startswith("{"):
        out.update(json.loads(line))
session = sys.argv[2]
st, ss = out["/djinn/stats"], out["/djinn/sessions"]
assert st["tensor_bytes_tcp_in"] == 4096, st
assert st["sessions_attached"] == 1 and st["connections_open"] == 1, st
assert st["requests_error"] == 0 and st["requests_ok"] >= 3, st
s = ss[session]
assert s["handles"] == 1 and s["state"] == "attached" and s["path"] == "tcp", s
assert s["peer"].startswith("127.0.0.1:") and s["bytes_in"] >= 4096, s
mem = out["/djinn/memory"]["host"]
assert mem["used"] == 4096 and mem["tensors"] == 1 and 0 < mem["free"] <= mem["total"], mem
put = out["/djinn/requests"]["PUT"]
assert put["ok"] == 1 and put["error"] == 0 and put["p99_us"] >= put["p50_us"], put
lc = out["/djinn/lcores"]["0"]
assert lc["loop_ns"] > 0 and 0 <= lc["busy_permille"] <= 1000, lc
assert "Djinn" in out["/help"]["/djinn/stats"], out["/help"]
print("telemetry agrees:", json.dumps(s))
PY

echo >&3; exec 3>&-
wait "$client" || fail "client did not end cleanly: $(cat "$work/client.out")"; client=
kill -INT "$server"; wait "$server"; rc=$?; server=
[ $rc -eq 0 ] || fail "djinn-dp exited $rc on SIGINT"

# Every log line is one JSON object; DPDK's own lines too; the PUT's line
# names the client's request id.
"$py" - "$work/server.err" <<'PY' || fail "JSON log lines"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert lines, "no log lines"
objs = [json.loads(l) for l in lines]
for o in objs:
    assert set(o) >= {"time", "level", "component", "message"}, o
    assert o["level"] in ("err", "warn", "notice", "info", "debug"), o
assert any(o["component"] == "dpdk" for o in objs), "no DPDK line"
put = [o for o in objs if o.get("req") == "py-trace-1"]
assert any(o["message"].startswith("PUT ok in ") and "4096 B over tcp" in o["message"]
           for o in put), put
print(f"{len(objs)} JSON log lines; request py-trace-1: {put[-1]['message']}")
PY
echo "PASS: telemetry"
