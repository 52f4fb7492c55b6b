#!/usr/bin/env bash
# Instructions per small request on the control path, by thread and by
# function, from callgrind (valgrind): repeatable whatever the load on the
# machine, where timings are not. Runs bench-fallback --small twice under
# callgrind, with N1 and N2 requests, every busy-wait off (--spin-us 0
# --busy-poll-us 0: spinning counts instructions that do no work; a BENCH
# from before those options existed takes BUSY_POLL_ARG= to leave the
# second out), and prints the difference
# divided by N2 - N1, so set-up costs cancel out.
#   scripts/perf-ctl-callgrind.sh [BENCH] [ping|exec] [N1 N2] [-- BENCH ARGS]
# BENCH defaults to build/apps/bench-fallback; "exec" counts one EXECUTE of a
# one-element tensor plus the FREE of its result (what the bench issues per
# item, 1000 in flight); "ping" one PING round trip.
set -euo pipefail
bench=${1:-build/apps/bench-fallback}
mode=${2:-exec}
n1=${3:-2000}
n2=${4:-6000}
shift $(($# < 4 ? $# : 4))
[ "${1:-}" = "--" ] && shift
out=$(mktemp -d /tmp/perf-ctl-cg.XXXXXX)
trap 'rm -rf "$out"' EXIT
run() {
	local n=$1 args
	shift
	if [ "$mode" = ping ]; then args="--pings $n --execs 0"; else args="--pings 0 --execs $n"; fi
	# shellcheck disable=SC2086
	valgrind --tool=callgrind --separate-threads=yes --dump-instr=no \
		--callgrind-out-file="$out/cg-$n.%p" "$bench" --small --rounds 1 --size 1 \
		--spin-us 0 ${BUSY_POLL_ARG---busy-poll-us 0} $args "$@" >/dev/null 2>"$out/vg-$n.log"
}
run "$n1" "$@"
run "$n2" "$@"
/usr/bin/python3 - "$out" "$n1" "$n2" "$mode" <<'PY'
import glob, os, re, subprocess, sys
out, n1, n2, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
roles = [("server_main", "server epoll thread"), ("worker_main", "server workers"),
         ("reader_main", "client reader"), ("plain_server", "plain ping-pong peer"),
         ("main", "client caller (main)")]

def group(name, obj):
    """Self cost by family: what a request spends its instructions on."""
    if "libcjson" in obj:
        return "cJSON (parse, print, nodes)"
    if "/malloc/" in name or "malloc.c" in name or "arena.c" in name:
        return "malloc/free"
    if re.search(r"printf|scanf|strtod|xsputn|_IO_|__mpn|hack_digit|localeconv|_itoa", name):
        return "printf/scanf/strtod"
    if re.search(r"str(n)?cmp|strlen|memmove|memcpy|memset|strchr", name):
        return "string functions"
    if "pthread" in name or "nptl" in name or "lowlevellock" in name or "futex" in name:
        return "locks and threads"
    return "the rest (our code, syscall stubs)"

def annotate(path, inclusive):
    text = subprocess.run(["callgrind_annotate", "--inclusive=" + ("yes" if inclusive else "no"),
                           "--threshold=100", "--auto=no", path], capture_output=True, text=True).stdout
    costs, groups, total = {}, {}, 0
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(\S.*?)(?: \[(.*)\])?$", line)
        if not m:
            continue
        v = int(m.group(1).replace(",", ""))
        if "PROGRAM TOTALS" in line:
            total = v
            continue
        full = m.group(2)
        name = re.sub(r"'\d+$", "", full.split(":")[-1])
        if inclusive:
            costs[name] = max(costs.get(name, 0), v)
        else:
            costs[name] = costs.get(name, 0) + v
            g = group(full, m.group(3) or "")
            groups[g] = groups.get(g, 0) + v
    return costs, groups, total

def by_role(n):
    res = {}
    for path in sorted(glob.glob(f"{out}/cg-{n}.*")):
        inc, _, total = annotate(path, True)
        role = next((r for fn, r in roles if fn in inc), None)
        if role is None:
            continue
        r = res.setdefault(role, {"total": 0, "self": {}, "incl": {}, "group": {}})
        r["total"] += total
        slf, groups, _ = annotate(path, False)
        for kind, src in (("self", slf), ("incl", inc), ("group", groups)):
            for k, v in src.items():
                r[kind][k] = r[kind].get(k, 0) + v
    return res

a, b = by_role(n1), by_role(n2)
d = n2 - n1
what = "PING round trip" if mode == "ping" else "EXECUTE + FREE of its result"
print(f"instructions per {what} (callgrind, ({n2} - {n1}) runs)")
grand = 0
for _, role in roles:
    if role not in b:
        continue
    per = (b[role]["total"] - a.get(role, {"total": 0})["total"]) / d
    grand += per
    print(f"\n{role}: {per:,.0f}")
    for kind in ("group", "incl", "self"):
        diffs = []
        for k, v in b[role][kind].items():
            x = (v - a.get(role, {kind: {}})[kind].get(k, 0)) / d
            if (x >= 0.03 * per and x >= 50) or (kind == "group" and x >= 1):
                diffs.append((x, k))
        diffs.sort(reverse=True)
        print(f"  {dict(incl='inclusive', self='self', group='by family')[kind]}: " +
              ", ".join(f"{k} {x:,.0f}" for x, k in diffs[:14]))
print(f"\nall threads: {grand:,.0f}")
PY
