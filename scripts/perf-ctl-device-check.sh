#!/usr/bin/env bash
# Runs on the GPU machine with the binaries of scripts/perf-ctl-carry.sh (it
# is copied into .carry/perf-ctl with them). Issue 17, goal 4: small
# requests on the control path, one connection over loopback, an in-process
# server with the host-memory backend (no GPU, no DPDK involved):
# bench-fallback --small gives the PING round trip p50/p99 next to a plain
# TCP 1-byte ping-pong in the same rounds (blocking, and with both ends
# polling their sockets: the loopback floor), and EXECUTEs of a one-element
# resident tensor per second with 1000 in flight (each result freed).
# RUNS times (default 5), interleaved, each of:
#   binary      this tree, defaults: PING, FREE and EXECUTE as binary frames,
#               quick EXECUTEs inline, polling on 8+ CPUs, requests corked
#   bin-nocork  the same, every request its own send(2) (--no-cork)
#   json        the same with JSON frames only (--json-frames): the baseline
#   json-nocork JSON frames, not corked
#   bin-noinl   binary, every EXECUTE through a server worker
#   json-noinl  JSON, every EXECUTE through a server worker
#   bin-nopoll  binary, the server's epoll polling and the client's spins off
#   before      bench-fallback-before, where carried (an earlier tree)
# each run ROUNDS (default 3) rounds; prints every run's JSON line and a
# table of the medians over runs (of the per-run medians over rounds), with
# the client's socket writes of requests per run (corking: far fewer than
# the 3 x (20000 PINGs + 2 x 50000 EXECUTE and FREE) requests).
#   bash .carry/perf-ctl/perf-ctl-device-check.sh        (OUT: where logs go)
# Goal on the GPU host: EXECUTE >= 250k/s, PING p50 <= 12 us.
set -u
bin=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-/tmp/perf-ctl-check}
runs=${RUNS:-5}
rounds=${ROUNDS:-3}
export LD_LIBRARY_PATH=$bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
mkdir -p "$out"
status=0
echo "=== host: $(nproc) CPUs online, load $(cut -d' ' -f1-3 /proc/loadavg)"
grep -m1 "model name" /proc/cpuinfo
for b in "$bin"/bench-fallback*; do
	if ldd "$b" | grep "not found"; then echo "$b: libraries missing"; status=1; fi
done
configs=${CONFIGS:-"binary bin-nocork json json-nocork bin-noinl json-noinl bin-nopoll"}
[ -x "$bin/bench-fallback-before" ] && configs="$configs before"
: >"$out/runs.jsonl"
for run in $(seq "$runs"); do
	for c in $configs; do
		case $c in
		binary) cmd=("$bin/bench-fallback") ;;
		bin-nocork) cmd=("$bin/bench-fallback" --no-cork) ;;
		json) cmd=("$bin/bench-fallback" --json-frames) ;;
		json-nocork) cmd=("$bin/bench-fallback" --json-frames --no-cork) ;;
		bin-noinl) cmd=("$bin/bench-fallback" --no-inline) ;;
		json-noinl) cmd=("$bin/bench-fallback" --no-inline --json-frames) ;;
		bin-nopoll) cmd=("$bin/bench-fallback" --busy-poll-us 0 --spin-us 0) ;;
		before) cmd=("$bin/bench-fallback-before") ;;
		esac
		line=$(timeout 300 "${cmd[@]}" --small --rounds "$rounds" --json 2>>"$out/stderr.log" |
			tail -1)
		if [ -z "$line" ]; then
			echo "FAIL: $c run $run gave no JSON"; status=1; continue
		fi
		echo "{\"config\":\"$c\",\"run\":$run,${line#\{}" | tee -a "$out/runs.jsonl"
	done
done
echo
echo "=== medians over $runs runs ($rounds rounds each), $(nproc) CPUs"
printf "%-11s %14s %14s %14s %14s %14s %14s\n" config "plain ping us" "plain spin us" "PING p50 us" \
	"PING p99 us" "EXECUTE /s" "req writes"
for c in $configs; do
	grep "\"config\":\"$c\"" "$out/runs.jsonl" | awk -v c="$c" '
	function field(k,   m) {
		if (match($0, "\"" k "\":[0-9.]+")) return substr($0, RSTART + length(k) + 3, RLENGTH - length(k) - 3)
		return "nan"
	}
	function median(a, n,   i, j, t) {
		for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	{ n++; pl[n] = field("plain_ping_us"); sp[n] = field("plain_spin_us"); p50[n] = field("ping_us_median"); p99[n] = field("ping_us_p99"); ex[n] = field("exec_per_s"); wr[n] = field("request_writes") }
	END { if (n) printf "%-11s %14.1f %14s %14.1f %14.1f %14.0f %14s\n", c, median(pl, n), sp[1] == "nan" ? "-" : sprintf("%.1f", median(sp, n)), median(p50, n), median(p99, n), median(ex, n), wr[1] == "nan" ? "-" : median(wr, n) }'
done
exit $status
