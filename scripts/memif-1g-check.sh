#!/usr/bin/env bash
# A 1 GiB tensor over memif, N times: djinn-dp and the djinn client on one
# machine, each `djinn run relu` a 1 GiB PUT, the operation and a 1 GiB GET
# over DPDK. Counts the tries the client had to redo over TCP (its warning
# "data-plane PUT|GET failed (...), redone over TCP") and checks the last
# result against numpy.
#   scripts/memif-1g-check.sh [BUILD_DIR] [N]      (default: build, 10)
set -u
bin=${1:-build}/apps n=${2:-10}
py=/usr/bin/python3
"$py" -c 'import numpy' 2>/dev/null || { echo "needs numpy for $py (python3-numpy)"; exit 77; }
work=$(mktemp -d /tmp/djinn-1g.XXXXXX)
sock=$work/dp.memif port=$((30000 + RANDOM % 20000))
vdev="net_memif0,socket=$sock,socket-abstract=no,bsize=9216"
srv=
cleanup() { [ -n "$srv" ] && kill -INT "$srv" 2>/dev/null && wait "$srv"; rm -rf "$work"; }
trap cleanup EXIT
"$py" -c "import numpy as np; np.save('$work/a.npy', np.random.default_rng(1).standard_normal(1 << 28, dtype=np.float32))"
"$bin"/djinn-dp --vdev "$vdev,role=server" -- --ctl-port $port --stats-interval 0 --gpu none \
	>"$work/server.log" 2>&1 &
srv=$!
for _ in $(seq 300); do grep -q "control plane: listening" "$work/server.log" && break; sleep 0.1; done
redone=0 failed=0
for i in $(seq "$n"); do
	t0=$(date +%s%N)
	out=$("$bin"/djinn --vdev "$vdev,role=client" -- --port $port --path dpdk \
		run relu "$work/a.npy" -o "$work/out.npy" 2>&1)
	rc=$?
	ms=$((($(date +%s%N) - t0) / 1000000))
	why=$(echo "$out" | grep -o 'data-plane [A-Z]* failed ([^)]*)' | sort | uniq -c | tr -s ' \n' ' ')
	[ -n "$why" ] && redone=$((redone + 1))
	[ $rc -eq 0 ] || failed=$((failed + 1))
	echo "try $i: exit $rc, $ms ms${why:+, redone over TCP:$why}"
done
"$py" -c "
import numpy as np
a, b = np.load('$work/a.npy'), np.load('$work/out.npy')
print('last result:', 'MATCH' if np.array_equal(np.maximum(a, 0), b) else 'MISMATCH')"
echo "$n tries: $redone redone over TCP, $failed failed (load average $(cut -d' ' -f1-3 /proc/loadavg))"
[ $redone -eq 0 ] && [ $failed -eq 0 ]
