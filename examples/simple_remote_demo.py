#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The original system's demo, against Djinn's server (djinn-dp).

The program in demo() is the original's, unchanged: a DjinnCoordinator sends
matmul, add and relu to 'localhost:5556' one at a time and checks the result
against torch on this machine with torch.allclose at its default tolerance.
'localhost:5556' is a Djinn server's control port: where one listens there it
is used; where the port is free this script starts build/apps/djinn-dp on it
(TCP data path); where something else holds it, it says so and exits 77.

The inputs: the original program does not show how x, y and bias were made.
Here their values lie on a grid (multiples of 1/16 below 4) on which every
product and every partial sum of the 100x100 matmul is exact in float32, so
the server's result and torch's agree bit for bit whatever the order of
summation, and the default-tolerance allclose holds. With torch.randn inputs
they do not agree to that tolerance: the server rounds each sum once (the CPU
reference accumulates in double), torch's BLAS rounds every partial sum; they
differ by about 1e-6 relative (2.3e-5 at most in 30 seeds), which fails
rtol=1e-5, atol=1e-8 wherever relu's output is near zero. The second round,
random_round(), runs randn inputs and checks them against a tolerance from
float32's error bound instead, saying how far apart the two were.

    /usr/bin/python3 examples/simple_remote_demo.py [--address HOST:PORT] [--size N]
"""
import argparse
import asyncio
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

import torch  # noqa: E402

from djinn.core.coordinator import DjinnCoordinator, CoordinatorConfig  # noqa: E402
from djinn import server  # noqa: E402


def grid(*shape):
    """Random float32 values k/16, |k| < 64: exact products and sums."""
    return torch.randint(-63, 64, shape).float() / 16


async def demo(x, y, bias):
    # ---- the original's program, unchanged -------------------------------
    coordinator = DjinnCoordinator(CoordinatorConfig(node_id='client', tcp_fallback=True))
    await coordinator.start()
    result = await coordinator.execute_remote_operation('aten::matmul', [x, y], 'localhost:5556')
    result2 = await coordinator.execute_remote_operation('aten::add', [result, bias], 'localhost:5556')
    result3 = await coordinator.execute_remote_operation('aten::relu', [result2], 'localhost:5556')
    assert torch.allclose(result3, torch.relu(torch.matmul(x, y) + bias))
    await coordinator.stop()
    # ------------------------------------------------------------------------
    return result3


async def random_round(address, n):
    x, y, bias = torch.randn(n, n), torch.randn(n, n), torch.randn(n)
    async with DjinnCoordinator(CoordinatorConfig(node_id='client')) as c:
        r = await c.execute_remote_operation('aten::matmul', [x, y], address)
        r = await c.execute_remote_operation('aten::add', [r, bias], address)
        r = await c.execute_remote_operation('aten::relu', [r], address)
    local = torch.relu(torch.matmul(x, y) + bias)
    # float32 dot products of length n: |error| <= n * eps * sum |x_i y_i|.
    bound = (n * torch.finfo(torch.float32).eps * (x.abs() @ y.abs())).max().item()
    diff = (r - local).abs().max().item()
    return diff, bound


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--address", default="localhost:5556",
                    help="where the demo's second round goes (the first uses localhost:5556)")
    ap.add_argument("--size", type=int, default=100)
    a = ap.parse_args()
    srv = None
    if server.listening(5556):
        print("demo: a server listens on localhost:5556: using it")
    elif server.port_free(5556):
        srv = server.Server(port=5556).start()
        print(f"demo: started djinn-dp on localhost:5556 (TCP), log {srv.log_path}")
    else:
        print("demo: port 5556 is taken by something that does not accept connections; "
              "the original program needs a Djinn server there")
        return 77
    try:
        torch.manual_seed(0)
        x, y, bias = grid(a.size, a.size), grid(a.size, a.size), grid(a.size)
        r = asyncio.run(demo(x, y, bias))
        exact = torch.equal(r, torch.relu(torch.matmul(x, y) + bias))
        print(f"demo: the original program passed: matmul, add, relu on localhost:5556, "
              f"[{a.size}, {a.size}] float32, torch.allclose holds "
              f"({'bit for bit' if exact else 'within tolerance'})")
        address = a.address
        diff, bound = asyncio.run(random_round(address, a.size))
        verdict = "MATCH" if diff <= bound else "MISMATCH"
        print(f"demo: torch.randn inputs: max |server - torch| = {diff:.3g} "
              f"(float32 error bound {bound:.3g}): {verdict}")
        return 0 if verdict == "MATCH" else 1
    finally:
        if srv is not None:
            srv.stop()
            srv.remove_log()


if __name__ == "__main__":
    sys.exit(main())
