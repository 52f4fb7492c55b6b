#!/usr/bin/env bash
# The command-line tools as a user runs them: djinn-dp serving over TCP with
# a token, the djinn client on .npy files (numpy writes the inputs and checks
# the outputs), errors that name the problem, and bad options refused.
#   test_cli.sh DJINN_DP DJINN
set -u
dp_bin=$1 client_bin=$2
py=/usr/bin/python3
"$py" -c 'import numpy' 2>/dev/null || { echo "SKIP: $py has no numpy (python3-numpy)"; exit 77; }
work=$(mktemp -d /tmp/djinn-test-cli.XXXXXX)
port=$((20000 + RANDOM % 20000))
server=
cleanup() { [ -n "$server" ] && kill -INT "$server" 2>/dev/null && wait "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$work/server.log" ] && cat "$work/server.log"; exit 1; }

# Bad options: refused with usage, exit 2, before anything starts.
"$dp_bin" -- --mem-limit 12Q >"$work/bad.log" 2>&1; [ $? -eq 2 ] || fail "bad --mem-limit not refused"
grep -q -- "--mem-limit: '12Q' is not a size" "$work/bad.log" || fail "no message for a bad --mem-limit"
"$dp_bin" -- --bogus >/dev/null 2>&1; [ $? -eq 2 ] || fail "unknown option not refused"

printf 'cli-test-token-%s\n' "$RANDOM$RANDOM" >"$work/token"
"$dp_bin" -- --no-dpdk --ctl-port "$port" --token-file "$work/token" --stats-interval 0 \
	>"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do grep -q "control plane: listening" "$work/server.log" && break; sleep 0.1; done
grep -q "control plane: listening" "$work/server.log" || fail "server not up"

"$py" - "$work" <<'PY' || fail "numpy could not write inputs"
import numpy as np, sys
w = sys.argv[1]
rng = np.random.default_rng()
np.save(f"{w}/a.npy", rng.standard_normal((3, 5)).astype(np.float32))
np.save(f"{w}/b.npy", rng.standard_normal((5,)).astype(np.float32))
np.save(f"{w}/m.npy", rng.standard_normal((5, 4)))          # float64: converted to float32
PY

# Without the token: refused, and the server keeps serving.
out=$(DJINN_TOKEN= "$client_bin" --port "$port" ping -n 1 2>&1); rc=$?
[ $rc -ne 0 ] || fail "a client without the token was served"
echo "$out" | grep -qi "auth" || fail "no authentication error: $out"

c() { DJINN_TOKEN_FILE="$work/token" "$client_bin" --port "$port" "$@"; }
c run add "$work/a.npy" "$work/b.npy" -o "$work/sum.npy" >/dev/null || fail "run add"
c run matmul "$work/a.npy" "$work/m.npy" -o "$work/mm.npy" >/dev/null || fail "run matmul"
c run softmax "$work/a.npy" --attrs '{"dim": 1}' -o "$work/sm.npy" >/dev/null || fail "run softmax"
"$py" - "$work" <<'PY' || fail "results differ from numpy"
import numpy as np, sys
w = sys.argv[1]
a, b, m = np.load(f"{w}/a.npy"), np.load(f"{w}/b.npy"), np.load(f"{w}/m.npy").astype(np.float32)
s, mm, sm = np.load(f"{w}/sum.npy"), np.load(f"{w}/mm.npy"), np.load(f"{w}/sm.npy")
e = np.exp(a - a.max(axis=1, keepdims=True))
checks = [
    ("add", s, a + b, 0), ("matmul", mm, a.astype(np.float64) @ m.astype(np.float64), 1e-5),
    ("softmax", sm, e / e.sum(axis=1, keepdims=True), 1e-6),
]
for name, got, want, tol in checks:
    assert got.dtype == np.float32 and got.shape == want.shape, (name, got.dtype, got.shape)
    assert np.allclose(got, want, rtol=tol, atol=tol), (name, np.abs(got - want).max())
print("numpy agrees: add, matmul, softmax")
PY

# Errors name the problem; exit status says failure; the server goes on.
out=$(c run matmul "$work/a.npy" "$work/a.npy" 2>&1); [ $? -ne 0 ] || fail "shape error accepted"
echo "$out" | grep -q "inner dimensions differ" || fail "shape error not named: $out"
out=$(c run frobnicate "$work/a.npy" 2>&1); [ $? -ne 0 ] || fail "unknown op accepted"
echo "$out" | grep -q "frobnicate" || fail "unknown op not named: $out"
out=$(c run relu "$work/missing.npy" 2>&1); [ $? -ne 0 ] || fail "missing file accepted"
printf 'not an npy file' >"$work/junk.npy"
out=$(c run relu "$work/junk.npy" 2>&1); [ $? -ne 0 ] || fail "malformed .npy accepted"
c ping -n 1 >/dev/null || fail "server stopped serving after bad requests"
c stats | grep -q '"path_reason"' || fail "stats without the path reason"
# The receive path is stated in STATS: this server runs without DPDK.
c stats | tr -d ' \t\n' | grep -q '"data_plane":{"running":false' ||
	fail "stats without the data plane's state"

kill -INT "$server"; wait "$server"; rc=$?; server=
[ $rc -eq 0 ] || fail "server exit $rc on SIGINT"
echo "PASS: cli"
