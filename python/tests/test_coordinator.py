# SPDX-License-Identifier: BSD-3-Clause
"""The original system's program, unchanged, against djinn-dp on
localhost:5556 (started there when the port is free, else skipped saying
why); the example that wraps it; and the coordinator beyond it."""
import asyncio
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import djinn
from djinn import server as djinn_server
from djinn.core.coordinator import CoordinatorConfig, DjinnCoordinator

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def port_5556():
    if djinn_server.find_djinn_dp() is None:
        pytest.skip("djinn-dp not built")
    if not djinn_server.port_free(5556):
        pytest.skip("port 5556 is in use on this machine: the original program hard-codes "
                    "localhost:5556, so it needs that port for a djinn-dp of its own")
    srv = djinn_server.Server(port=5556)
    try:
        srv.start()
    except djinn_server.ServerError as e:
        if "in use" not in str(e):
            raise
        pytest.skip("port 5556 was taken while djinn-dp started (another run?): " + str(e))
    try:
        yield srv
    finally:
        srv.stop()
        srv.remove_log()


def test_the_original_program(port_5556):
    # The program, line for line, is the example's demo().
    sys.path.insert(0, os.path.join(TOP, "examples"))
    from simple_remote_demo import demo, grid
    torch.manual_seed(1)
    x, y, bias = grid(100, 100), grid(100, 100), grid(100)
    r = asyncio.run(demo(x, y, bias))
    assert isinstance(r, torch.Tensor) and r.shape == (100, 100)
    assert torch.equal(r, torch.relu(torch.matmul(x, y) + bias))
    # It ran there: one session, three requests with the tensors' bytes.
    with djinn.connect("localhost:5556") as c:
        st = c.stats()["server"]
    assert st["sessions_opened"] == 2 and st["requests"] >= 3
    assert st["bytes_in"] > 3 * 100 * 100 * 4


def test_the_example(port_5556):
    # The example uses the server on 5556 that the fixture started.
    p = subprocess.run([sys.executable, os.path.join(TOP, "examples", "simple_remote_demo.py")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "the original program passed" in p.stdout
    assert "a server listens on localhost:5556: using it" in p.stdout
    assert ": MATCH" in p.stdout


def test_coordinator_numpy_remote_inputs_and_concurrency(server, conn):
    addr = server.address

    async def main():
        async with DjinnCoordinator(CoordinatorConfig(node_id="n1", timeout=10)) as c:
            assert c.node_id == "n1"
            a = np.arange(12, dtype=np.float32).reshape(3, 4)
            r = await c.execute_remote_operation("aten::transpose", [a, 0, 1], addr)
            assert isinstance(r, np.ndarray) and np.array_equal(r, a.T)
            # Resident inputs of the coordinator's own session.
            conn2 = await c.connection(addr)
            w = conn2.put(np.ones((4, 2), np.float32))
            r = await c.execute_remote_operation("aten::matmul", [a, w], addr)
            assert np.array_equal(r, a @ np.ones((4, 2), np.float32))
            xs = [torch.randn(8, 8) for _ in range(64)]
            outs = await asyncio.gather(*(c.execute_remote_operation(
                "aten::softmax", [x, -1], addr) for x in xs))
            for x, o in zip(xs, outs):
                torch.testing.assert_close(o, torch.softmax(x, -1))
            assert (await c.stats(addr))["session"]["path"] == "tcp"
            assert await c.ping(addr) > 0
            return conn2

    conn2 = asyncio.run(main())
    assert conn2.closed  # stop() closed it
