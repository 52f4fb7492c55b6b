#!/usr/bin/env bash
# Lazy graphs against a GPU server on the device machine (H100), in one call.
#
# Here, first:   scripts/graph-device-check.sh --carry [build-dir]   (default build)
#   builds djinn-dp and djinn and copies them, with the shared libraries
#   they need (scripts/carry-libs.sh), into .carry/graph (git-ignored).
# There, through the device tool: carry [".carry/graph"],
#   command: bash scripts/graph-device-check.sh
#   `djinn graph --run` (a decoder layer: prefill, then a decode step that
#   appends to the KV cache the prefill made) against djinn-dp --gpu 0 and
#   against djinn-dp --gpu none, prompts of 8 and 31 tokens: every step one
#   round trip, its inputs uploaded inside the batch into GPU memory, its
#   results read back from GPU memory in the reply, the logits within
#   tolerance of the client's CPU reference.
# Logs go to $OUT (or /tmp/graph-check).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
bin=$top/.carry/graph

if [ "${1:-}" = --carry ]; then
	set -e
	builddir=${2:-build}
	cd "$top"
	[ -f "$builddir/build.ninja" ] || bash scripts/setup.sh "$builddir"
	ninja -C "$builddir" apps/djinn-dp apps/djinn >/dev/null
	mkdir -p "$bin"
	cp "$builddir"/apps/djinn-dp "$builddir"/apps/djinn "$bin"/
	strip "$bin"/djinn-dp "$bin"/djinn
	bash scripts/carry-libs.sh "$bin" "$bin"/djinn-dp "$bin"/djinn
	du -sh "$bin"
	exit 0
fi

out=${OUT:-/tmp/graph-check}
mkdir -p "$out"
export LD_LIBRARY_PATH=$bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
status=0

# run GPU PROMPT: djinn-dp on TCP alone, djinn graph --run against it.
run() {
	local gpu=$1 prompt=$2 port=$((20000 + RANDOM % 20000))
	local log="$out/server_${gpu}_$prompt.log" clog="$out/graph_${gpu}_$prompt.log"

	echo; echo "=== djinn graph --run --prompt $prompt against djinn-dp --gpu $gpu"
	"$bin"/djinn-dp -- --no-dpdk --gpu "$gpu" --ctl-port $port --stats-interval 0 >"$log" 2>&1 &
	local server=$!
	for _ in $(seq 300); do grep -q "control plane: listening" "$log" && break; sleep 0.1; done
	grep -E "^compute" "$log"
	timeout 120 "$bin"/djinn graph --run --port $port --prompt "$prompt" --seed 11 >"$clog" 2>&1
	local rc=$?
	cat "$clog"
	kill -INT $server; wait $server
	if [ $rc != 0 ] || [ "$(grep -cw MATCH "$clog")" != 2 ] ||
	   [ "$(grep -c '^[a-z]*: 1 round trip, 1 batch' "$clog")" != 2 ]; then
		echo "graph --gpu $gpu --prompt $prompt: FAIL (exit $rc)"; status=1
	else
		echo "graph --gpu $gpu --prompt $prompt: PASS"
	fi
}
run 0 8
run 0 31
run none 8
echo; echo "graph device check: $([ $status = 0 ] && echo PASS || echo FAIL)"
exit $status
