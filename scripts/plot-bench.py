#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Charts (PNG) from the benchmarks' JSON.

  /usr/bin/python3 scripts/plot-bench.py [--memif DIR]... [--fallback FILE]...
      [--gpu FILE]... [--out DIR] [--note TEXT]

  --memif DIR     an OUT folder of scripts/bench-memif.sh (transfer-*-send.json,
                  tcp-send.json, pingpong-send.json; meta.json if plots.sh made it)
  --fallback FILE a JSON line of bench-fallback
  --gpu FILE      the --json of bench-gpu (scripts/gpu-device-check.sh writes
                  bench-1416.json and bench-8916.json)
  --out DIR       where the PNGs go (default docs/img)
  --note TEXT     a line under every chart (machine, load); default: from the
                  meta.json files

Charts, each only where its data was given:
  goodput.png      goodput against tensor size: memif, memif + CRC32C, memif
                   zero-copy receiver, kernel TCP loopback (median of the runs,
                   min-max band)
  latency-cdf.png  round-trip latency CDF of 64 B transfers over memif
  fallback.png     Djinn's TCP fallback against plain TCP (PUT, GET)
  gpu-gather.png   GPU gather against cudaMemcpy by fragment size
Fleet tokens/s joins when the fleet's benchmark prints JSON.
"""
import argparse
import glob
import json
import os
import statistics
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {"memif": "#1f77b4", "memif + CRC32C": "#9467bd", "memif zero-copy": "#2ca02c",
          "kernel TCP": "#d62728"}


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def size_label(n):
    for unit, shift in (("G", 30), ("M", 20), ("K", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}iB"
    return f"{n} B"


def footer(fig, note, command):
    text = "; ".join(t for t in (note, command) if t)
    if text:
        fig.text(0.01, 0.01, text, fontsize=7, color="#555555", va="bottom", wrap=True)


def save(fig, out, name):
    path = os.path.join(out, name)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print("wrote", path, f"({os.path.getsize(path) // 1024} KiB)")


def goodput(dirs, out, note):
    series = {"memif": "transfer-nocrc-send.json", "memif + CRC32C": "transfer-crc-send.json",
              "memif zero-copy": "transfer-zc-send.json", "kernel TCP": "tcp-send.json"}
    fig, ax = plt.subplots(figsize=(8, 4.8))
    drawn = 0
    for label, name in series.items():
        per_size = {}
        for d in dirs:
            data = load(os.path.join(d, name))
            for row in (data or {}).get("rows", []):
                if row.get("gbps", 0) > 0:
                    per_size.setdefault(row["size"], []).append(row["gbps"])
        if not per_size:
            continue
        sizes = sorted(per_size)
        med = [statistics.median(per_size[s]) for s in sizes]
        lo = [min(per_size[s]) for s in sizes]
        hi = [max(per_size[s]) for s in sizes]
        style = "--" if "CRC" in label else "-"
        runs = max(len(v) for v in per_size.values())
        ax.plot(sizes, med, style, marker="o", color=COLORS[label],
                label=f"{label} ({runs} run{'s' if runs > 1 else ''})")
        if runs > 1:
            ax.fill_between(sizes, lo, hi, color=COLORS[label], alpha=0.15)
        drawn += 1
    if not drawn:
        plt.close(fig)
        return
    ax.set_xscale("log", base=2)
    ticks = sorted({r["size"] for d in dirs for n in series.values()
                    for r in (load(os.path.join(d, n)) or {}).get("rows", [])})
    ax.set_xticks(ticks)
    ax.set_xticklabels([size_label(t) for t in ticks])
    ax.set_xlabel("tensor size")
    ax.set_ylabel("goodput (Gbit/s)")
    ax.set_title("Tensor transfer goodput: Djinn's DPDK data plane (memif) vs kernel TCP")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left")
    fig.subplots_adjust(bottom=0.2)
    footer(fig, note, "scripts/bench-memif.sh --quick (djinn-bench --mode transfer and --mode tcp, "
           "10 iterations a size)")
    save(fig, out, "goodput.png")


def latency_cdf(dirs, out, note):
    fig, ax = plt.subplots(figsize=(8, 4.8))
    drawn = 0
    for i, d in enumerate(dirs):
        data = load(os.path.join(d, "pingpong-send.json"))
        rows = (data or {}).get("rows", [])
        if not rows or "cdf_us" not in rows[0]:
            continue
        row = rows[0]
        q = [p[0] for p in row["cdf_us"]]
        us = [p[1] for p in row["cdf_us"]]
        ax.plot(us, q, label=f"run {i + 1}: p50 {row['p50_us']:.0f} us, p99 {row['p99_us']:.0f} us, "
                f"p99.9 {row['p999_us']:.0f} us ({row['iters']} round trips)")
        drawn += 1
    if not drawn:
        plt.close(fig)
        return
    ax.set_xscale("log")
    ax.set_xlabel("round trip of a 64 B transfer (us)")
    ax.set_ylabel("fraction of round trips")
    ax.set_ylim(0, 1.01)
    ax.set_title("Round-trip latency CDF, 64 B transfers each way over memif")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.subplots_adjust(bottom=0.2)
    footer(fig, note, "scripts/bench-memif.sh --quick (djinn-bench --mode pingpong --sizes 64)")
    save(fig, out, "latency-cdf.png")


def fallback(files, out, note):
    runs = [r for r in (load(f) for f in files) if r and r.get("bench") == "fallback"]
    if not runs:
        return
    groups = [("PUT (client to server)", "plain_send_gbps", "put_gbps"),
              ("GET (server to client)", "plain_recv_gbps", "get_gbps")]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    width = 0.35
    for i, (name, plain, djinn) in enumerate(groups):
        for k, (key, label, color) in enumerate(((plain, "plain TCP", "#d62728"),
                                                 (djinn, "Djinn TCP fallback", "#1f77b4"))):
            vals = [r[key] for r in runs]
            med = statistics.median(vals)
            ax.bar(i + (k - 0.5) * width, med, width, color=color,
                   yerr=[[med - min(vals)], [max(vals) - med]], capsize=4,
                   label=label if i == 0 else None)
            ax.text(i + (k - 0.5) * width, med / 2, f"{med:.1f}", ha="center", va="center",
                    fontsize=9, color="white")
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([g[0] for g in groups])
    ax.set_ylabel("Gbit/s")
    size = runs[0].get("size_bytes", 0)
    ax.set_title(f"TCP fallback vs plain TCP, {size_label(size)} tensors, loopback "
                 f"(median of {len(runs)}, min-max)")
    ax.legend(loc="upper right")
    ax.set_ylim(0, ax.get_ylim()[1] * 1.15)
    fig.subplots_adjust(bottom=0.18)
    footer(fig, note, f"bench-fallback --rounds {runs[0].get('rounds', '?')}")
    save(fig, out, "fallback.png")


def gpu_gather(files, out):
    runs = [r for r in (load(f) for f in files) if r and "results" in r]
    if not runs:
        return
    kinds = [("cudaMemcpy H2D pinned", lambda w: w.startswith("cudaMemcpy H2D")),
             ("gather, resident kernel, packed", lambda w: w.startswith("gather persistent packed")),
             ("gather, resident kernel, mbuf layout", lambda w: w.startswith("gather persistent mbuf")),
             ("gather, one launch over the list", lambda w: w.startswith("gather oneshot packed")),
             ("gather, a launch per burst", lambda w: w.startswith("gather launch packed"))]
    runs.sort(key=lambda r: r.get("payload", 0))
    fig, ax = plt.subplots(figsize=(8, 4.8))
    width = 0.8 / len(kinds)
    for k, (label, match) in enumerate(kinds):
        for i, r in enumerate(runs):
            vals = [x["gbytes_per_s"] for x in r["results"] if match(x["what"])]
            if not vals:
                continue
            v = max(vals)
            ax.bar(i + (k - len(kinds) / 2 + 0.5) * width, v, width, label=label if i == 0 else None,
                   color=plt.cm.tab10(k))
            ax.text(i + (k - len(kinds) / 2 + 0.5) * width, v, f"{v:.0f}", ha="center",
                    va="bottom", fontsize=7)
    ax.set_xticks(range(len(runs)))
    ax.set_xticklabels([f"{r.get('payload')} B fragments" for r in runs])
    ax.set_ylabel("GB/s into GPU memory")
    ax.set_title(f"GPU gather vs cudaMemcpy, 1 GiB ({runs[0].get('device', 'GPU').split(' (')[0]})")
    ax.legend(fontsize=8, loc="lower right")
    fig.subplots_adjust(bottom=0.18)
    # The GPU runs are the device machine's, not the host benchmarks': their
    # own meta.json (beside the JSON) says when and where.
    meta = load(os.path.join(os.path.dirname(files[0]), "meta.json")) or {}
    gpu_note = ", ".join(meta[k] for k in ("date", "host", "rev") if k in meta)
    footer(fig, gpu_note, "bench-gpu --bench 1G --payload N (scripts/gpu-device-check.sh), best of 5")
    save(fig, out, "gpu-gather.png")


def default_note(dirs):
    """When, on what and how loaded, from the meta.json that plots.sh writes."""
    metas = [m for m in (load(os.path.join(d, "meta.json")) for d in dirs) if m]
    if not metas:
        return ""
    loads = [float(m[k].split()[0]) for m in metas for k in ("load_before", "load_after")]
    first, last = metas[0], metas[-1]
    when = first["date"] if len(metas) == 1 else f"{first['date'][:-4]} to {last['date'][11:]}"
    return (f"{len(metas)} run{'s' if len(metas) > 1 else ''}, {when}, {first['cpus']} vCPU "
            f"{first['cpu']}, load average {min(loads):.1f} to {max(loads):.1f} "
            f"(other engineers' builds and tests on the same 2 vCPUs: expect wide spread), "
            f"code {first['rev']}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--memif", action="append", default=[])
    ap.add_argument("--fallback", action="append", default=[])
    ap.add_argument("--gpu", action="append", default=[])
    ap.add_argument("--out", default="docs/img")
    ap.add_argument("--note")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    note = a.note if a.note is not None else default_note(a.memif)
    goodput(a.memif, a.out, note)
    latency_cdf(a.memif, a.out, note)
    fallback(a.fallback, a.out, note)
    gpu_gather(a.gpu, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
