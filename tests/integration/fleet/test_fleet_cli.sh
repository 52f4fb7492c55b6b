#!/usr/bin/env bash
# djinn fleet as a user runs it: two djinn-dp (TCP, a static fleet with a
# fleet token), the members listed (table and JSON, checked by python), a
# move and a copy read back byte-exact, the fleet's metrics families, errors
# that name the problem.
#   test_fleet_cli.sh DJINN_DP DJINN
set -u
dp_bin=$1 client_bin=$2
py=/usr/bin/python3
work=$(mktemp -d /tmp/djinn-test-fleet-cli.XXXXXX)
pa=$((20000 + RANDOM % 20000)); pb=$((pa + 1))
fleet="127.0.0.1:$pa,127.0.0.1:$pb"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; tail -n 20 "$work"/*.log; exit 1; }

printf 'fleet-cli-token-%s\n' "$RANDOM$RANDOM" >"$work/token"
for port in $pa $pb; do
	"$dp_bin" -- --no-dpdk --gpu none --ctl-port "$port" --stats-interval 0 --fleet "$fleet" \
		--fleet-id "member-$port" --fleet-token-file "$work/token" --metrics 127.0.0.1:0 \
		>"$work/$port.log" 2>&1 &
	pids+=($!)
done
for port in $pa $pb; do
	for _ in $(seq 100); do grep -q "control plane: listening" "$work/$port.log" && break; sleep 0.1; done
	grep -q "fleet: member member-$port, static membership" "$work/$port.log" ||
		fail "djinn-dp on $port did not say its membership"
done

out=$("$client_bin" fleet --fleet "$fleet") || fail "djinn fleet: $out"
echo "$out"
echo "$out" | grep -q "membership: static (STATS of each member), 2 up" || fail "no membership line"
echo "$out" | grep -q "member-$pa .* up .*tcp only .*host" || fail "member-$pa not listed"
"$client_bin" fleet --fleet "$fleet" --json >"$work/view.json" || fail "djinn fleet --json"
if [ -x "$py" ]; then
	"$py" - "$work/view.json" "$pa" <<'PY' || fail "JSON view wrong"
import json, sys
v = json.load(open(sys.argv[1]))
assert v["source"] == "static" and not v["stale"] and v["n_up"] == 2, v
ids = sorted(m["id"] for m in v["members"])
assert ids == ["member-%d" % int(sys.argv[2]), "member-%d" % (int(sys.argv[2]) + 1)], ids
for m in v["members"]:
    assert m["up"] and not m["dpdk"] and m["devices"][0]["mem_total"] > 0, m
print("JSON view: 2 members up, ids and devices as expected")
PY
fi

# The fleet's families beside the server's on the Prometheus endpoint.
mport=$(sed -n 's|^metrics: http://127.0.0.1:\([0-9]*\)/metrics$|\1|p' "$work/$pa.log")
[ -n "$mport" ] || fail "no metrics port printed"
if [ -x "$py" ]; then
	"$py" - "$mport" <<'PY' || fail "fleet metrics wrong"
import sys, urllib.request
text = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=10).read().decode()
want = ['djinn_fleet_members{membership="static"} 2', "djinn_fleet_registered 1",
        "djinn_fleet_view_stale 0", "# TYPE djinn_fleet_members gauge"]
missing = [w for w in want if w + "\n" not in text]
assert not missing, missing
print("metrics: the fleet's families, 2 static members")
PY
fi

out=$("$client_bin" fleet move --fleet "$fleet" --from "member-$pa" --to "#1" --size 1048576 2>&1) ||
	fail "move: $out"
echo "$out"
echo "$out" | grep -q "^moved 1048576 bytes member-$pa -> #1 over tcp (.*byte-exact$" ||
	fail "move not reported"
out=$("$client_bin" fleet move --fleet "$fleet" --from "#1" --to "#0" --size 2 --copy 2>&1) ||
	fail "copy: $out"
echo "$out" | grep -q "^copied 2 bytes .*byte-exact" || fail "copy not reported: $out"

# Errors name the problem and exit non-zero.
out=$("$client_bin" fleet move --fleet "$fleet" --from nobody --to "#1" --size 2 2>&1)
[ $? -eq 1 ] || fail "unknown member accepted"
echo "$out" | grep -q "no member 'nobody'" || fail "unknown member not named: $out"
out=$("$client_bin" fleet --fleet "127.0.0.1:$((pa + 2))" 2>&1)
[ $? -eq 1 ] || fail "a fleet nobody answers for was accepted"
echo "$out" | grep -q "0 of 1 members up after 0 ms: none of the 1 listed answers STATS" ||
	fail "no reason: $out"
echo "$out" | grep -q "^#0 .*127.0.0.1:$((pa + 2)) .* DOWN " || fail "member not listed down: $out"
"$client_bin" fleet --fleet "not-an-endpoint" >/dev/null 2>&1; [ $? -eq 1 ] || fail "bad list accepted"
"$client_bin" fleet --bogus >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad option not refused"
"$dp_bin" -- --fleet-ttl 0x >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad --fleet-ttl not refused"
echo "PASS: djinn fleet"
