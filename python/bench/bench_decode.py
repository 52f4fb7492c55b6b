#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""LazyTensor decode steps: round trips per token and tokens per second.

A decoder-only transformer written as plain PyTorch (python/tests/
tiny_decoder.py, llama style: KV caches as module buffers written in place)
generates greedily, remotely through djinn.lazy/djinn.remote (weights as graph
parameters, caches as graph state), and locally with torch on this machine in
the same run, both from the same prompt; the tokens must agree. Per decode
step: wall time, the part of it inside dj_graph_fetch (the rest is Python
recording the step), round trips, bytes each way. Median over rounds, with
min and max. djinn-dp (TCP, CPU operations) runs here unless --address.

    /usr/bin/python3 python/bench/bench_decode.py [--dim 64] [--layers 2] [--tokens 32]
        [--rounds 3] [--json FILE]
"""
import argparse
import copy
import statistics
import time

from _common import emit, machine, server_address, spread

import torch

import djinn
from tiny_decoder import TinyDecoder


def decode(model, prompt, steps, session=None):
    """Greedy decoding; per-step figures of the decode steps (not the prefill)."""
    steps_out = []
    with torch.no_grad():
        logits = model(prompt, 0)
        nxt = logits[0, -1].argmax()
        tok = nxt.item()
        tokens, pos = [tok], prompt.shape[1]
        for _ in range(steps):
            t0 = time.perf_counter()
            if session is not None:
                f0, r0, s0 = session.fetches, session.round_trips, session.fetch_seconds
            logits = model(torch.tensor([[tok]]), pos)
            tok = logits[0, -1].argmax().item()
            step = {"wall": time.perf_counter() - t0}
            if session is not None:
                step.update(fetches=session.fetches - f0,
                            round_trips=session.round_trips - r0,
                            fetch=session.fetch_seconds - s0,
                            bytes_up=session.last["bytes_up"],
                            bytes_down=session.last["bytes_down"])
            steps_out.append(step)
            tokens.append(tok)
            pos += 1
    return tokens, steps_out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=256)
    ap.add_argument("--prompt", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--address")
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.manual_seed(0)
    max_seq = a.prompt + a.tokens + 1
    base = TinyDecoder(vocab=a.vocab, dim=a.dim, heads=a.heads, layers=a.layers,
                       max_seq=max_seq).eval()
    prompt = torch.randint(0, a.vocab, (1, a.prompt))
    rounds = []
    with server_address(a.address) as address:
        session = djinn.session_for(address)
        try:
            for _ in range(a.rounds):
                local = copy.deepcopy(base)
                t0 = time.perf_counter()
                want, local_steps = decode(local, prompt, a.tokens)
                local_s = time.perf_counter() - t0
                model = djinn.lazy(copy.deepcopy(base), remote=session)
                with djinn.remote(session):
                    got, steps = decode(model, prompt, a.tokens, session)
                djinn.unlazy(model)
                if got != want:
                    raise SystemExit(f"tokens differ: remote {got} local {want}")
                n = len(steps)
                rounds.append({
                    "remote_step_ms": statistics.median(s["wall"] for s in steps) * 1e3,
                    "remote_fetch_ms": statistics.median(s["fetch"] for s in steps) * 1e3,
                    "remote_tokens_per_s": n / sum(s["wall"] for s in steps),
                    "round_trips_per_token": sum(s["round_trips"] for s in steps) / n,
                    "fetches_per_token": sum(s["fetches"] for s in steps) / n,
                    "bytes_up_per_token": statistics.median(s["bytes_up"] for s in steps),
                    "bytes_down_per_token": statistics.median(s["bytes_down"] for s in steps),
                    "local_step_ms": statistics.median(s["wall"] for s in local_steps) * 1e3,
                    "local_tokens_per_s": n / sum(s["wall"] for s in local_steps),
                    "local_total_s": local_s,
                })
        finally:
            djinn.close_sessions()
    params = sum(p.numel() for p in base.parameters())
    result = dict(machine(), model={"dim": a.dim, "heads": a.heads, "layers": a.layers,
                                    "vocab": a.vocab, "params": params, "prompt": a.prompt,
                                    "tokens": a.tokens},
                  rounds=rounds, summary={k: spread(r[k] for r in rounds) for k in rounds[0]})
    load = result["loadavg"]
    s = result["summary"]
    print(f"decode, {a.layers} layers, dim {a.dim}, vocab {a.vocab} ({params} parameters), "
          f"prompt {a.prompt}, {a.tokens} tokens; median over {a.rounds} rounds [min-max]; "
          f"loadavg {load[0]:.2f}; tokens equal to local torch's in every round")
    rows = [("remote (LazyTensor): ms per token", "remote_step_ms"),
            ("  of which in dj_graph_fetch", "remote_fetch_ms"),
            ("remote tokens/s", "remote_tokens_per_s"),
            ("round trips per token", "round_trips_per_token"),
            ("bytes up / down per token", None),
            ("local torch: ms per token", "local_step_ms"),
            ("local torch tokens/s", "local_tokens_per_s")]
    for label, key in rows:
        if key is None:
            print(f"{label:36} {s['bytes_up_per_token']['median']:.0f} / "
                  f"{s['bytes_down_per_token']['median']:.0f}")
            continue
        v = s[key]
        print(f"{label:36} {v['median']:10.2f} [{v['min']:.2f}-{v['max']:.2f}]")
    emit(result, a.json)


if __name__ == "__main__":
    main()
