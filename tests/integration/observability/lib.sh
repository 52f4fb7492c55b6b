# SPDX-License-Identifier: BSD-3-Clause
# Sourced by the observability tests: djinn-dp in the background, waited for.
#   dp_start OUT ERR ARGS...   run "$dp_bin" ARGS with stdout to OUT and stderr
#                              to ERR ("-": with stdout); sets $server and
#                              $port (the control port it printed), or calls
#                              fail (the test's) where it died or stayed silent
#   field OUT SED_EXPR         a figure from OUT, by sed -n expression
dp_start() {
	local out=$1 err=$2
	shift 2
	if [ "$err" = - ]; then
		"$dp_bin" "$@" >"$out" 2>&1 &
	else
		"$dp_bin" "$@" >"$out" 2>"$err" &
	fi
	server=$!
	for _ in $(seq 150); do
		grep -q "^control plane: listening" "$out" && break
		kill -0 "$server" 2>/dev/null || fail "djinn-dp died"
		sleep 0.1
	done
	port=$(field "$out" 's|^control plane: listening on 127.0.0.1:\([0-9]*\) .*|\1|p')
	[ -n "$port" ] || fail "djinn-dp printed no control port"
}

field() { sed -n "$2" "$1"; }
