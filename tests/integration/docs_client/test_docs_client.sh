#!/usr/bin/env bash
# The client written from docs/CONTROL.md alone (docs_client.py, standard
# library only) against djinn-dp serving over TCP with a token, once with
# each python3 there is: Debian's /usr/bin/python3 and the one on PATH
# (pyenv's on the development machine).
#   test_docs_client.sh DJINN_DP DOCS_CLIENT_PY
set -u
dp_bin=$1 client=$2
work=$(mktemp -d /tmp/djinn-test-docs-client.XXXXXX)
server=
cleanup() { [ -n "$server" ] && kill -INT "$server" 2>/dev/null && wait "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$work/server.log" ] && cat "$work/server.log"; exit 1; }

# A trailing newline, as an editor leaves it: the token is the line.
printf 'docs-client-token-%s\n' "$RANDOM$RANDOM" >"$work/token"
chmod 600 "$work/token"
"$dp_bin" -- --no-dpdk --ctl-port 0 --token-file "$work/token" --stats-interval 0 \
	>"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do grep -q "control plane: listening" "$work/server.log" && break; sleep 0.1; done
port=$(sed -n 's/^control plane: listening on [0-9.]*:\([0-9]*\) .*/\1/p' "$work/server.log")
[ -n "$port" ] || fail "server not up"

pythons=()
[ -x /usr/bin/python3 ] && pythons+=(/usr/bin/python3)
path_py=$(command -v python3 || true)
if [ -n "$path_py" ] && [ "$(readlink -f "$path_py")" != "$(readlink -f /usr/bin/python3)" ]; then
	pythons+=("$path_py")
fi
[ ${#pythons[@]} -gt 0 ] || { echo "SKIP: no python3"; exit 77; }
for py in "${pythons[@]}"; do
	echo "== $py"
	"$py" "$client" --port "$port" --token-file "$work/token" || fail "docs client under $py"
done
kill -0 "$server" 2>/dev/null || fail "server died"
echo "docs client: PASS with ${pythons[*]}"
