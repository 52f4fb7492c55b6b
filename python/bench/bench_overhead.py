#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The Python layer's cost per call, next to the C client's, in the same run.

Both talk to one djinn-dp (TCP, started here on a free port unless --address
is given) and make the same small requests, one at a time: EXECUTE of relu on
a resident one-element tensor (its output freed without waiting, as a
collected RemoteTensor is), the same through the asyncio API (await each one)
and through a C future (dj_execute_async + dj_future_wait), PUT of 4 KiB (a new
tensor, freed without waiting) and GET of 4 KiB into a buffer. The C side is
python/bench/c_calls.c, compiled here against the build's libdjinn.so and run
as its own process; rounds of C and Python alternate, and each figure is the
median over rounds of a round's mean, with the rounds' min and max.

    /usr/bin/python3 python/bench/bench_overhead.py [--iters N] [--rounds R] [--json FILE]
"""
import argparse
import asyncio
import json
import os
import subprocess
import tempfile
import time

from _common import HERE, emit, machine, server_address, spread

import numpy as np

import djinn
from djinn import _lib

TOP = os.path.dirname(os.path.dirname(HERE))


def build_c(out_dir):
    libdir = os.path.dirname(_lib.lib.path)
    exe = os.path.join(out_dir, "c_calls")
    subprocess.run(["cc", "-O2", "-std=gnu11", "-I", os.path.join(TOP, "include"),
                    os.path.join(HERE, "c_calls.c"), "-o", exe, "-L", libdir, "-ldjinn",
                    f"-Wl,-rpath,{libdir}"], check=True)
    return exe


def c_round(exe, port, iters):
    out = subprocess.run([exe, str(port), str(iters)], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out)


class Span:
    """Wall time and this thread's CPU time per call of a stretch of calls."""

    def __init__(self, res, name, iters):
        self.res, self.name, self.iters = res, name, iters

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.thread_time()

    def __exit__(self, *exc):
        self.res[self.name] = (time.perf_counter() - self.wall) / self.iters * 1e6
        self.res[self.name + "_cpu"] = (time.thread_time() - self.cpu) / self.iters * 1e6


def py_round(conn, iters):
    r1 = conn.put(np.zeros(1, np.float32))
    r4 = conn.put(np.zeros(1024, np.float32))
    page = np.ones(1024, np.float32)
    buf = np.empty(1024, np.float32)
    res = {}
    with Span(res, "execute", iters):
        for _ in range(iters):
            conn.execute("relu", r1)

    async def one_by_one():
        with Span(res, "execute_async", iters):
            for _ in range(iters):
                await conn.execute_async("relu", r1)

    asyncio.run(one_by_one())
    with Span(res, "put_4k", iters):
        for _ in range(iters):
            conn.put(page)
    with Span(res, "get_4k", iters):
        for _ in range(iters):
            conn.get(r4, out=buf)
    with Span(res, "get_4k_new_array", iters):
        for _ in range(iters):
            conn.get(r4)

    async def in_flight(n=1000):
        t = time.perf_counter()
        await asyncio.gather(*(conn.execute_async("relu", r1) for _ in range(n)))
        return n / (time.perf_counter() - t)

    res["execute_async_1000_in_flight_per_s"] = asyncio.run(in_flight())
    return res


ROWS = [("execute", "EXECUTE (blocking)"), ("execute_async", "EXECUTE (async, awaited)"),
        ("put_4k", "PUT 4 KiB"), ("get_4k", "GET 4 KiB into a buffer"),
        ("get_4k_new_array", "GET 4 KiB, new array")]


def summary(rounds, key):
    vals = [r[key] for r in rounds if key in r]
    return spread(vals) if vals else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iters", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--address", help="a running server (default: start one)")
    ap.add_argument("--json", help="also write the results here")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, server_address(a.address) as address:
        exe = build_c(tmp)
        port = djinn.parse_address(address)[1]
        c_rounds, py_rounds = [], []
        with djinn.connect(address, path="tcp") as conn:
            c_round(exe, port, max(a.iters // 10, 10))   # warm-up
            py_round(conn, max(a.iters // 10, 10))
            for _ in range(a.rounds):
                c_rounds.append(c_round(exe, port, a.iters))
                py_rounds.append(py_round(conn, a.iters))
    result = dict(machine(), iters=a.iters, rounds=a.rounds, library=_lib.lib.path, c={},
                  python={})
    load = result["loadavg"]
    print(f"per-call cost in microseconds, median over {a.rounds} rounds of {a.iters} calls "
          f"[min-max]; loadavg {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print("wall: time per call; cpu: the calling thread's CPU time per call (the client's "
          "own work, less sensitive to load)")
    print(f"{'request':26} {'':4} {'C client':>21} {'Python':>21} {'Python - C':>11}")
    for key, label in ROWS:
        for kind, suffix in (("wall", ""), ("cpu", "_cpu")):
            c = summary(c_rounds, key + suffix)
            p = summary(py_rounds, key + suffix)
            result["python"][key + suffix] = p
            if c is not None:
                result["c"][key + suffix] = c
            cbase = c if c is not None else summary(c_rounds, "get_4k" + suffix)
            cs = f"{c['median']:8.1f} [{c['min']:.1f}-{c['max']:.1f}]" if c else "(as above)"
            print(f"{label if kind == 'wall' else '':26} {kind:4} {cs:>21} "
                  f"{p['median']:8.1f} [{p['min']:.1f}-{p['max']:.1f}]"
                  f" {p['median'] - cbase['median']:+10.1f}")
    t = summary(py_rounds, "execute_async_1000_in_flight_per_s")
    result["python"]["execute_async_1000_in_flight_per_s"] = t
    print(f"Python asyncio, 1000 EXECUTE in flight: {t['median']:.0f} /s "
          f"[{t['min']:.0f}-{t['max']:.0f}]")
    emit(result, a.json)


if __name__ == "__main__":
    main()
