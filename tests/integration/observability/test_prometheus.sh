#!/usr/bin/env bash
# A real Prometheus scrapes djinn-dp while the djinn client moves tensors
# of known sizes over TCP and over DPDK (memif); Prometheus' query API must
# show the counters moved by exactly that, and promtool must find the
# exposition clean.
#   test_prometheus.sh DJINN_DP DJINN
# Skipped (77) without prometheus/promtool (Debian: prometheus) or numpy.
set -u
dp_bin=$1 client_bin=$2
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
prom() { "$py" "$here/prom.py" "$@"; }
. "$here/lib.sh"
command -v prometheus >/dev/null && command -v promtool >/dev/null ||
	{ echo "SKIP: prometheus not installed (Debian package prometheus)"; exit 77; }
"$py" -c 'import numpy' 2>/dev/null || { echo "SKIP: $py has no numpy (python3-numpy)"; exit 77; }

work=$(mktemp -d /tmp/djinn-test-prom.XXXXXX)
sock=$work/memif.sock
server= promd=
cleanup() {
	[ -n "$promd" ] && kill "$promd" 2>/dev/null && wait "$promd" 2>/dev/null
	[ -n "$server" ] && kill -INT "$server" 2>/dev/null && wait "$server" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*"
	echo "--- djinn-dp"; cat "$work/server.log" 2>/dev/null
	echo "--- prometheus (tail)"; tail -n 20 "$work/prom.log" 2>/dev/null
	exit 1
}
t0=$SECONDS

dp_start "$work/server.log" - --vdev "net_memif0,role=server,socket=$sock,socket-abstract=no,bsize=9216" \
	-- --ctl-port 0 --metrics 127.0.0.1:0 --stats-interval 0 --dp-idle-sleep-us 20
mport=$(field "$work/server.log" 's|^metrics: http://127.0.0.1:\([0-9]*\)/metrics$|\1|p')
[ -n "$mport" ] || fail "no metrics port printed"
grep -q "^data plane: port 0" "$work/server.log" || fail "the data plane did not start"

# Our exposition, as Prometheus' own linter sees it.
prom get "http://127.0.0.1:$mport/metrics" >"$work/before.txt" || fail "GET /metrics"
promtool check metrics <"$work/before.txt" >"$work/lint.txt" 2>&1 || { cat "$work/lint.txt"; fail "promtool check metrics"; }

# Prometheus on a port of its own, scraping every second.
pport=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: djinn
    static_configs:
      - targets: ['127.0.0.1:$mport']
YML
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
	--web.listen-address="127.0.0.1:$pport" >"$work/prom.log" 2>&1 &
promd=$!
base=http://127.0.0.1:$pport
prom ready "$base/-/ready" 25 || fail "prometheus not ready within 25 s"
prom expect "$base" 15 'up{job="djinn"}=1' 'djinn_sessions_opened_total=0' \
	'sum(djinn_tensor_bytes_total)=0' || fail "first scrape"
echo "prometheus scraping after $((SECONDS - t0)) s"

# Traffic of known sizes: a [128, 256] float32 tensor is 131072 bytes.
"$py" - "$work" <<'PY' || fail "numpy could not write the inputs"
import numpy as np, sys
rng = np.random.default_rng(1)
for name in ("a", "b"):
    np.save(f"{sys.argv[1]}/{name}.npy", rng.standard_normal((128, 256)).astype(np.float32))
PY
echo "inputs written after $((SECONDS - t0)) s"
"$client_bin" --port "$port" --path tcp run add "$work/a.npy" "$work/b.npy" -o "$work/sum.npy" \
	>"$work/tcp.log" 2>&1 || { cat "$work/tcp.log"; fail "run add over TCP"; }
echo "TCP run done after $((SECONDS - t0)) s"
"$client_bin" --vdev "net_memif0,role=client,socket=$sock,socket-abstract=no,bsize=9216" \
	-- --port "$port" --path dpdk --dp-idle-sleep-us 20 run mul "$work/a.npy" "$work/b.npy" \
	-o "$work/prod.npy" >"$work/dpdk.log" 2>&1 || { cat "$work/dpdk.log"; fail "run mul over DPDK"; }
echo "DPDK run done after $((SECONDS - t0)) s"
"$py" - "$work" <<'PY' || fail "results differ from numpy"
import numpy as np, sys
w = sys.argv[1]
a, b = np.load(f"{w}/a.npy"), np.load(f"{w}/b.npy")
assert np.array_equal(np.load(f"{w}/sum.npy"), a + b)
assert np.array_equal(np.load(f"{w}/prod.npy"), a * b)
PY

# Each run: HELLO, SESSION, PATH, PUT x2, EXECUTE, GET, BYE; over DPDK each
# PUT is a PUT (receiver armed) and a PUT_DONE (the bytes landed).
n=131072
prom expect "$base" 15 \
	"djinn_tensor_bytes_total{path=\"tcp\",direction=\"in\"}=$((2 * n))" \
	"djinn_tensor_bytes_total{path=\"tcp\",direction=\"out\"}=$n" \
	"djinn_tensor_bytes_total{path=\"dpdk\",direction=\"in\"}=$((2 * n))" \
	"djinn_tensor_bytes_total{path=\"dpdk\",direction=\"out\"}=$n" \
	"djinn_tensor_transfers_total{path=\"dpdk\",direction=\"in\"}=2" \
	"djinn_tensor_transfers_total{path=\"tcp\",direction=\"out\"}=1" \
	"djinn_requests_total{type=\"PUT\",result=\"ok\"}=4" \
	"djinn_requests_total{type=\"PUT_DONE\",result=\"ok\"}=2" \
	"djinn_requests_total{type=\"EXECUTE\",result=\"ok\"}=2" \
	"djinn_requests_total{type=\"GET\",result=\"ok\"}=2" \
	"djinn_requests_total{type=\"BYE\",result=\"ok\"}=2" \
	"sum(djinn_requests_total{result=\"error\"})=0" \
	"djinn_request_duration_seconds_count{type=\"EXECUTE\"}=2" \
	"djinn_request_duration_seconds_bucket{type=\"GET\",le=\"+Inf\"}=2" \
	"djinn_sessions_opened_total=2" \
	"sum(djinn_sessions)=0" \
	"djinn_dataplane_payload_bytes_total{direction=\"rx\"}>=$((2 * n))" \
	"djinn_dataplane_payload_bytes_total{direction=\"tx\"}>=$n" \
	"djinn_dataplane_transfers_total{direction=\"rx\",result=\"ok\"}=2" \
	"djinn_dataplane_transfers_total{direction=\"tx\",result=\"ok\"}=1" \
	"sum(djinn_dataplane_rejected_frames_total) - sum(djinn_dataplane_rejected_frames_total{reason=\"duplicate\"})=0" \
	"djinn_dataplane_packets_total{direction=\"rx\"}>=$((2 * n / 8972))" \
	"djinn_dataplane_lcore_seconds_total{lcore=\"0\"}>=0.5" \
	"djinn_memory_peak_bytes{device=\"host\"}>=$((3 * n))" \
	"djinn_memory_used_bytes{device=\"host\"}=0" \
	"djinn_request_queue_depth=0" \
	"djinn_build_info=1" ||
	fail "counters did not move by what was sent"
echo "counters checked after $((SECONDS - t0)) s"

# PromQL over the scraped series: the TCP and DPDK bytes add up.
prom expect "$base" 5 "sum(increase(djinn_tensor_bytes_total[1m])) > 0>=1" >/dev/null ||
	fail "increase() over the scraped counters"
prom get "http://127.0.0.1:$mport/metrics" >"$work/after.txt" || fail "GET /metrics"
promtool check metrics <"$work/after.txt" >"$work/lint.txt" 2>&1 || { cat "$work/lint.txt"; fail "promtool check metrics after traffic"; }

kill -INT "$server"; wait "$server"; rc=$?; server=
[ $rc -eq 0 ] || fail "djinn-dp exited $rc on SIGINT"
echo "PASS: prometheus ($((SECONDS - t0)) s)"
