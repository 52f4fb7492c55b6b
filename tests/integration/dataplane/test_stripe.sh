#!/usr/bin/env bash
# Transfers striped over queue pairs: two djinn-bench processes on a
# net_memif port with 2 queues (one polling lcore each), each transfer
# split into K parts sent at once over K sessions (session i on queue
# (1 + i) % 2). The receiver checks every byte of the first and last
# transfer of each size (the parts land at their offsets of one buffer),
# both ends must exit 0, and each queue must have carried DATA: the
# receiver's per-queue packet counts are all above zero.
#   test_stripe.sh DJINN_BENCH
set -euo pipefail
bench=$1
tmp=$(mktemp -d /tmp/djinn-stripe.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

# run K SIZES: one pair of processes, K stripes over 2 queues.
run() {
	local k=$1 sizes=$2 sock="$tmp/k$1.sock"
	local common=(--mode transfer --sizes "$sizes" --iters 3 --queues 2 --stripes "$k"
		      --idle-sleep-us 20 --initial-credit 4096 --timeout 60000)
	"$bench" --lcores 0@0,1@1,2@0 --main-lcore 0 --no-pci --in-memory \
		--file-prefix "djst$$r$k" --log-level=lib.eal:warning \
		--vdev "net_memif0,role=server,socket=$sock,socket-abstract=no,bsize=9216" \
		-- "${common[@]}" --role recv --json "$tmp/recv$k.json" >"$tmp/recv$k.log" 2>&1 &
	pids=($!)
	if ! "$bench" --lcores 0@1,1@0,2@1 --main-lcore 0 --no-pci --in-memory \
		--file-prefix "djst$$s$k" --log-level=lib.eal:warning \
		--vdev "net_memif0,role=client,socket=$sock,socket-abstract=no,bsize=9216" \
		-- "${common[@]}" --role send --json "$tmp/send$k.json" >"$tmp/send$k.log" 2>&1; then
		echo "FAIL: sender, $k stripes"; cat "$tmp/send$k.log"; exit 1
	fi
	if ! wait "${pids[0]}"; then
		echo "FAIL: receiver, $k stripes"; cat "$tmp/recv$k.log"; exit 1
	fi
	pids=()
	/usr/bin/python3 - "$tmp/recv$k.json" "$k" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
q = r["queue_packets"]
assert r["errors"] == 0, r["errors"]
assert len(q) == 2, q
assert all(x["rx"] > 0 for x in q), "a queue carried nothing: %s" % q
print("ok: %s stripes, packets per queue %s" % (sys.argv[2], [x["rx"] for x in q]))
PY
}

# Sizes that split unevenly, one smaller than a part (empty parts), one
# bigger than the window of a part.
run 2 1,4097,1048581,16M
run 3 1,4097,1048581,16M
echo "PASS"
