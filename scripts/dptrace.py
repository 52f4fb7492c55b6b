#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Where a data-plane transfer's time goes: merge the trace files of a
sender and a receiver on one host (djinn built with -Ddp_trace=true, run
with DJ_DP_TRACE=/path/prefix; each process writes prefix.<pid>.tsv) and
print, per direction and size, p10/p50/p90 of each leg and of the total.

    scripts/dptrace.py [--json OUT] FILE...

Files whose time spans overlap belong to one run (the two processes of a
djinn-bench --mode transfer or --mode pingpong pair); runs are reported
one after the other. A transfer is the TX events of (cookie, id) in one
process and the RX events of the same (cookie, id) in the other. In
--mode transfer the 1-byte "ready" transfers go the other way and get rows
of their own. Where every transfer id goes both ways with one size
(--mode pingpong), the round trip is split too, as seen from the process
that sent first. Both processes read CLOCK_MONOTONIC: legs that cross
processes are exact on one host. Stdlib only.
"""
import argparse
import json
import sys

# Legs of one transfer: (name, (side, event), (side, event)); side S is the
# sender's process, R the receiver's.
LEGS = [
    ("post -> lcore took it", ("S", "post"), ("S", "take")),
    ("took -> first DATA to tx_burst", ("S", "take"), ("S", "tx_first")),
    ("first -> last DATA to tx_burst", ("S", "tx_first"), ("S", "tx_last")),
    ("first DATA tx -> rx (peer)", ("S", "tx_first"), ("R", "rx_first")),
    ("last DATA tx -> rx (peer)", ("S", "tx_last"), ("R", "rx_last")),
    ("last DATA rx -> final ACK out", ("R", "rx_last"), ("R", "ack_out")),
    ("final ACK out -> in (sender)", ("R", "ack_out"), ("S", "ack_in")),
    ("ACK in -> done flag", ("S", "ack_in"), ("S", "done")),
    ("done -> released", ("S", "done"), ("S", "released")),
    ("released -> send returned", ("S", "released"), ("S", "return")),
    ("receiver: last rx -> done flag", ("R", "rx_last"), ("R", "done")),
    ("receiver: done -> wait returned", ("R", "done"), ("R", "return")),
    ("TOTAL post -> send returned", ("S", "post"), ("S", "return")),
]

# Round trip of a pingpong from A (sent first) to B and back.
RT_LEGS = [
    ("A post -> A first DATA tx", ("A", "tx", "post"), ("A", "tx", "tx_first")),
    ("A tx -> B rx (last DATA)", ("A", "tx", "tx_first"), ("B", "rx", "rx_last")),
    ("B rx -> B wait returned", ("B", "rx", "rx_last"), ("B", "rx", "return")),
    ("B returned -> B posts reply", ("B", "rx", "return"), ("B", "tx", "post")),
    ("B post -> B first DATA tx", ("B", "tx", "post"), ("B", "tx", "tx_first")),
    ("B tx -> A rx (last DATA)", ("B", "tx", "tx_first"), ("A", "rx", "rx_last")),
    ("A rx -> A wait returned", ("A", "rx", "rx_last"), ("A", "rx", "return")),
    ("A: own send returned (post ->)", ("A", "tx", "post"), ("A", "tx", "return")),
    ("TOTAL A post -> A wait returned", ("A", "tx", "post"), ("A", "rx", "return")),
]


def load(path):
    """(pid, {(cookie, id, dir): {event: ns}}, span, dropped). An event seen
    twice keeps its first time."""
    recs, pid, lo, hi, dropped = {}, None, None, None, 0
    with open(path) as f:
        for line in f:
            if line.startswith("#dropped"):
                dropped += int(line.split("\t")[1])
                continue
            if line.startswith("#") or not line.strip():
                continue
            ns, p, _tid, ev, d, cookie, xid, ln = line.rstrip("\n").split("\t")
            ns, pid = int(ns), int(p)
            ev_map = recs.setdefault((int(cookie), int(xid), d), {"len": int(ln)})
            ev_map.setdefault(ev, ns)
            lo = ns if lo is None or ns < lo else lo
            hi = ns if hi is None or ns > hi else hi
    return pid, recs, (lo or 0, hi or 0), dropped


def runs_of(files):
    """Group the loaded files into runs: overlapping time spans."""
    files = sorted((f for f in files if f[1]), key=lambda f: f[2][0])
    runs = []
    for f in files:
        if runs and f[2][0] <= max(g[2][1] for g in runs[-1]):
            runs[-1].append(f)
        else:
            runs.append([f])
    return runs


def pct(vals, q):
    vals = sorted(vals)
    if not vals:
        return float("nan")
    k = (len(vals) - 1) * q
    i = int(k)
    j = min(i + 1, len(vals) - 1)
    return vals[i] + (vals[j] - vals[i]) * (k - i)


def stats(vals):
    return {"n": len(vals), "p10": pct(vals, 0.1), "p50": pct(vals, 0.5), "p90": pct(vals, 0.9)}


def transfers(run):
    """Per (sender pid, receiver pid, len): list of {"S": evs, "R": evs}."""
    out = {}
    for s_pid, s_recs, _, _ in run:
        for r_pid, r_recs, _, _ in run:
            if s_pid == r_pid:
                continue
            for (cookie, xid, d), s_ev in s_recs.items():
                if d != "tx":
                    continue
                r_ev = r_recs.get((cookie, xid, "rx"))
                if r_ev is None:
                    continue
                out.setdefault((s_pid, r_pid, s_ev["len"]), []).append(
                    {"S": s_ev, "R": r_ev, "id": xid, "cookie": cookie})
    return out


def leg_values(items, legs, pick):
    rows = []
    for name, a, b in legs:
        vals = []
        for it in items:
            ta, tb = pick(it, a), pick(it, b)
            if ta is not None and tb is not None:
                vals.append((tb - ta) / 1000.0)
        rows.append((name, stats(vals)))
    return rows


def print_rows(title, rows):
    print(title)
    print("  %-34s %7s %9s %9s %9s" % ("leg (us)", "n", "p10", "p50", "p90"))
    for name, st in rows:
        if st["n"] == 0:
            continue
        print("  %-34s %7d %9.1f %9.1f %9.1f" % (name, st["n"], st["p10"], st["p50"], st["p90"]))


def round_trips(run, xfers):
    """Pingpong round trips: A sent id first, B answered with the same id
    and size. None unless every id in the run goes both ways."""
    pids = sorted({p for p, _, _, _ in run})
    if len(pids) != 2:
        return None
    by_pid = {p: r for p, r, _, _ in run}
    a, b = pids
    items = []
    for (cookie, xid, d), ev in by_pid[a].items():
        if d != "tx":
            continue
        back = by_pid[a].get((cookie, xid, "rx"))
        if back is None or back["len"] != ev["len"]:
            continue
        b_rx, b_tx = by_pid[b].get((cookie, xid, "rx")), by_pid[b].get((cookie, xid, "tx"))
        if b_rx is None or b_tx is None:
            continue
        first_a = ev.get("post", 0) <= b_tx.get("post", 0)
        A, B = ({"tx": ev, "rx": back}, {"rx": b_rx, "tx": b_tx}) if first_a else \
            ({"tx": b_tx, "rx": b_rx}, {"rx": back, "tx": ev})
        items.append({"A": A, "B": B})
    n_ids = len({(c, i) for (c, i, _) in by_pid[a]})
    if not items or len(items) < 0.9 * n_ids:
        return None
    return items


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--json", help="write the tables as JSON here")
    args = ap.parse_args()
    loaded = []
    for path in args.files:
        pid, recs, span, dropped = load(path)
        if dropped:
            print("dptrace: %s dropped %d records (DJ_DP_TRACE_RECS)" % (path, dropped),
                  file=sys.stderr)
        loaded.append((pid, recs, span, path))
    report = []
    for n, run in enumerate(runs_of(loaded), 1):
        names = ", ".join("%s (pid %d)" % (f[3], f[0]) for f in run)
        xfers = transfers(run)
        rts = round_trips(run, xfers)
        mode = "pingpong" if rts else "transfer"
        print("== run %d (%s): %s" % (n, mode, names))
        entry = {"run": n, "mode": mode, "files": [f[3] for f in run], "legs": []}
        for (s_pid, r_pid, ln), items in sorted(xfers.items(), key=lambda kv: (kv[0][2], kv[0][0])):
            rows = leg_values(items, LEGS, lambda it, k: it[k[0]].get(k[1]))
            print_rows("%d B, pid %d -> pid %d, %d transfers" % (ln, s_pid, r_pid, len(items)), rows)
            entry["legs"].append({"size": ln, "sender": s_pid, "receiver": r_pid,
                                  "rows": [{"leg": k, **v} for k, v in rows]})
        if rts:
            rows = leg_values(rts, RT_LEGS, lambda it, k: it[k[0]][k[1]].get(k[2]))
            print_rows("round trips (A sent first), %d" % len(rts), rows)
            entry["round_trip"] = [{"leg": k, **v} for k, v in rows]
        report.append(entry)
        print()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return 0 if report else 1


if __name__ == "__main__":
    sys.exit(main())
