#!/usr/bin/env bash
# The command lines of djinn and djinn-dp as a careless user types them:
# --help succeeds, out-of-range numbers, bad values, extra arguments and
# missing token files are refused with a message that names them, before
# anything connects; djinn-dp names its token file, warns when others may
# read it, and takes the token from DJINN_TOKEN_FILE as its usage says.
#   test_cli_args.sh DJINN_DP DJINN
set -u
dp_bin=$1 client_bin=$2
work=$(mktemp -d /tmp/djinn-test-cli-args.XXXXXX)
server=
cleanup() { [ -n "$server" ] && kill -INT "$server" 2>/dev/null && wait "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$work/server.log" ] && cat "$work/server.log"; exit 1; }

# expect STATUS PATTERN CMD...: CMD exits with STATUS and says PATTERN (grep -E).
expect() {
	local want=$1 pattern=$2 out rc
	shift 2
	out=$(DJINN_TOKEN= DJINN_TOKEN_FILE= "$@" 2>&1); rc=$?
	[ "$rc" -eq "$want" ] || fail "'$*' exited $rc, not $want: $out"
	[ -z "$pattern" ] || echo "$out" | grep -qE -- "$pattern" || fail "'$*' did not say /$pattern/: $out"
}

# --help: usage and success, for both tools, whatever else is on the line.
expect 0 "Usage: djinn" "$client_bin" --help
expect 0 "Usage: djinn" "$client_bin" --port 99999 -h
expect 0 "Usage: .*djinn-dp" "$dp_bin" --help
expect 0 "Usage: .*djinn-dp" "$dp_bin" -- --help

# Numbers out of range or not numbers at all (--port 99999 was taken as 34463).
expect 2 "--port: '99999' is out of range \(1\.\.65535\)" "$client_bin" --port 99999 ping
expect 2 "--port: '-1' is not" "$client_bin" --port -1 ping
expect 2 "--seed: 'x' is not a non-negative integer" "$client_bin" demo --seed x
expect 2 "--size: '0' is out of range" "$client_bin" demo --size 0
expect 2 "-n: '5x' is not" "$client_bin" ping -n 5x
expect 2 "--dp-ip: '1.2.3' is not an IPv4 address" "$client_bin" --dp-ip 1.2.3 ping
expect 2 "--path: 'udp' is not one of auto, tcp, dpdk" "$client_bin" --path udp ping
expect 2 "--attrs: '\{\"dim\": ' is not a JSON object" "$client_bin" run softmax a.npy --attrs '{"dim": '
expect 2 "--attrs: '\[1\]' is not a JSON object" "$client_bin" run softmax a.npy --attrs '[1]'

# Extra, missing and unknown arguments.
expect 2 "ping: unexpected argument 'extra'" "$client_bin" ping extra
expect 2 "stats: unexpected argument 'x'" "$client_bin" stats x y
expect 2 "demo: unexpected argument 'now'" "$client_bin" demo now
expect 2 "run: too few arguments" "$client_bin" run relu
expect 2 "unknown command 'frobnicate'" "$client_bin" frobnicate
expect 2 "no command" "$client_bin" --port 1234

# A token file that is not there is named, not taken for a wrong token.
expect 1 "--token-file $work/none: No such file or directory" \
	"$client_bin" --token-file "$work/none" ping
expect 1 "DJINN_TOKEN_FILE $work/none: No such file or directory" \
	env DJINN_TOKEN_FILE="$work/none" "$client_bin" ping
: >"$work/empty"
expect 1 "--token-file $work/empty: the file is empty" "$client_bin" --token-file "$work/empty" ping

# --path dpdk without EAL arguments cannot have a DPDK data path.
expect 1 "--path dpdk needs a DPDK data path: give EAL arguments" "$client_bin" --path dpdk ping

# djinn-dp: values named, token file named, before anything starts.
expect 2 "--mem-limit: '12Q' is not a size" "$dp_bin" -- --mem-limit 12Q
expect 2 "--mem-limit: '17179869184G' is out of range" "$dp_bin" -- --mem-limit 17179869184G
expect 2 "--ctl-port: '70000' is out of range \(0\.\.65535\)" "$dp_bin" -- --ctl-port 70000
expect 2 "--workers: '0' is out of range \(1\.\.64\)" "$dp_bin" -- --workers 0
expect 2 "--gpu-gather: 'fast' is not one of persistent, launch" "$dp_bin" -- --gpu-gather fast
expect 2 "unexpected argument 'stray'" "$dp_bin" -- --no-dpdk stray
expect 1 "token file $work/none \(--token-file\): No such file or directory" \
	"$dp_bin" -- --no-dpdk --token-file "$work/none"
expect 1 "token file $work/none \(DJINN_TOKEN_FILE\): No such file or directory" \
	env DJINN_TOKEN_FILE="$work/none" "$dp_bin" -- --no-dpdk
expect 1 "token file $work/empty \(--token-file\) is empty" \
	"$dp_bin" -- --no-dpdk --token-file "$work/empty"

# A token file others may read: served, with a warning naming it. The token
# comes from DJINN_TOKEN_FILE alone (no --token-file): clients need it.
printf 'cli-args-token-%s\n' "$RANDOM$RANDOM" >"$work/token"
chmod 644 "$work/token"
DJINN_TOKEN= DJINN_TOKEN_FILE="$work/token" "$dp_bin" -- --no-dpdk --ctl-port 0 \
	--stats-interval 0 >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do grep -q "control plane: listening" "$work/server.log" && break; sleep 0.1; done
port=$(sed -n 's/.*control plane: listening on [0-9.]*:\([0-9]*\).*/\1/p' "$work/server.log")
[ -n "$port" ] || fail "server not up"
grep -q "warning: token file $work/token is readable by group or others (mode 0644)" \
	"$work/server.log" || fail "no warning for a token file others may read"
expect 1 "authentication failed" "$client_bin" --port "$port" ping -n 1
DJINN_TOKEN_FILE="$work/token" "$client_bin" --port "$port" ping -n 1 >/dev/null ||
	fail "the right token was refused"
kill -INT "$server"; wait "$server"; rc=$?; server=
[ $rc -eq 0 ] || fail "server exit $rc on SIGINT"

# chmod 600: no warning.
chmod 600 "$work/token"
"$dp_bin" -- --no-dpdk --ctl-port 0 --stats-interval 0 --token-file "$work/token" \
	>"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do grep -q "control plane: listening" "$work/server.log" && break; sleep 0.1; done
grep -q "control plane: listening" "$work/server.log" || fail "server not up (mode 0600)"
! grep -q "readable by group or others" "$work/server.log" || fail "warning for a private token file"
kill -INT "$server"; wait "$server"; server=
echo "PASS: cli_args"
