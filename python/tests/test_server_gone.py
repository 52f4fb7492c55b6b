# SPDX-License-Identifier: BSD-3-Clause
"""A server that goes away mid-call: killed, the call fails at once with
DjinnConnectionError; stopped (SIGSTOP), it fails after the request timeout
with DjinnTimeoutError, the connection abandoned so that no late reply lands
anywhere; either way, nothing hangs, and a resumed server's session is picked
up again by the next idempotent call."""
import asyncio
import threading
import time

import numpy as np
import pytest

import djinn

BIG = 1024  # a matmul the CPU reference takes a while over (about 0.5 s here)


def _later(seconds, fn):
    t = threading.Timer(seconds, fn)
    t.start()
    return t


def test_killed_during_a_blocking_call(own_server):
    srv = own_server()
    c = djinn.connect(srv.address, timeout=30)
    a = c.put(np.ones((BIG, BIG), np.float32))
    _later(0.2, srv.kill)
    t0 = time.monotonic()
    with pytest.raises(djinn.DjinnConnectionError):
        for _ in range(50):  # one of these is running when the server dies
            c.execute("matmul", a, a).free()
    assert time.monotonic() - t0 < 15
    c.close()


def test_killed_during_async_calls(own_server):
    srv = own_server()
    c = djinn.connect(srv.address, timeout=30)
    x = np.ones((BIG, BIG), np.float32)

    async def main():
        tasks = [asyncio.ensure_future(c.compute_async("matmul", x, x)) for _ in range(4)]
        await asyncio.sleep(0.3)
        srv.kill()
        t0 = time.monotonic()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert time.monotonic() - t0 < 10
        return results

    results = asyncio.run(main())
    assert any(isinstance(r, djinn.DjinnConnectionError) for r in results)
    assert all(isinstance(r, (djinn.DjinnConnectionError, np.ndarray)) for r in results)
    c.close()


def test_stopped_server_times_out_blocking(own_server):
    srv = own_server()
    c = djinn.connect(srv.address, timeout=1.0)
    a = c.put(np.arange(4, dtype=np.float32))
    sid = c.session_id
    srv.pause()
    try:
        t0 = time.monotonic()
        with pytest.raises(djinn.DjinnTimeoutError) as e:
            c.execute("relu", a)
        took = time.monotonic() - t0
        assert 0.9 < took < 5, took
        assert isinstance(e.value, TimeoutError)
    finally:
        srv.resume()
    # PING reconnects and resumes the session: the tensor is still there.
    c.ping()
    assert c.session_id == sid
    assert np.array_equal(c.execute("relu", a).numpy(), np.arange(4, dtype=np.float32))
    c.close()


def test_stopped_server_times_out_async(own_server):
    srv = own_server()
    c = djinn.connect(srv.address, timeout=1.0)
    x = np.arange(6, dtype=np.float32)

    async def main():
        srv.pause()
        try:
            t0 = time.monotonic()
            done = await asyncio.gather(c.compute_async("relu", x), c.put_async(x),
                                        return_exceptions=True)
            took = time.monotonic() - t0
        finally:
            srv.resume()
        assert 0.9 < took < 5, took
        # One timed out; giving it up abandoned the connection, which failed
        # the other at once (or it timed out too).
        assert any(isinstance(r, djinn.DjinnTimeoutError) for r in done)
        assert all(isinstance(r, (djinn.DjinnTimeoutError, djinn.DjinnConnectionError))
                   for r in done)
        # The loop is not blocked meanwhile, and afterwards the session resumes.
        await asyncio.get_running_loop().run_in_executor(None, c.ping)
        return await c.compute_async("relu", x)

    assert np.array_equal(asyncio.run(main()), x)
    c.close()


def test_lazy_fetch_when_the_server_is_gone(own_server):
    import torch
    srv = own_server()
    c = djinn.connect(srv.address, timeout=2.0)
    with djinn.remote(c) as s:
        y = (torch.ones(4, 4) * 3).softmax(-1)
    srv.kill()
    t0 = time.monotonic()
    with pytest.raises(djinn.DjinnConnectionError):
        y.cpu()
    assert time.monotonic() - t0 < 10
    with pytest.raises(djinn.DjinnConnectionError):
        y.item()  # a pending tensor of a failed fetch carries its error
    s.close()
    c.close()
