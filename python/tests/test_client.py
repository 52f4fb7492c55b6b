# SPDX-License-Identifier: BSD-3-Clause
"""The synchronous and asyncio client: byte-exact transfers of every dtype,
numpy in -> numpy out and torch in -> torch out, results written straight
into the caller's buffer, resident tensors and their lifetime, batches, stats,
and many requests in flight from asyncio."""
import asyncio
import gc
import logging

import numpy as np
import pytest
import torch

import djinn
from djinn.errors import HandleError, NotSupportedError, InvalidArgumentError

NP_DTYPES = [np.float32, np.float16, np.int32, np.int64]
TORCH_DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.int32, torch.int64]


def rand_np(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if np.issubdtype(dtype, np.integer):
        return rng.integers(-1000, 1000, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("dtype", NP_DTYPES)
@pytest.mark.parametrize("shape", [(), (0,), (7,), (3, 5), (2, 3, 4, 5), (256, 1024)])
def test_numpy_put_get_byte_exact(conn, dtype, shape):
    a = rand_np(shape, dtype)
    r = conn.put(a)
    assert r.shape == shape and r.dtype == np.dtype(dtype).name
    b = r.numpy()
    assert isinstance(b, np.ndarray) and b.dtype == a.dtype and b.shape == a.shape
    assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("dtype", TORCH_DTYPES)
def test_torch_put_get_byte_exact(conn, dtype):
    t = (torch.randn(4, 33) * 100).to(dtype)
    r = conn.put(t)
    back = conn.get(r)
    assert isinstance(back, torch.Tensor) and back.dtype == dtype
    assert torch.equal(back.view(torch.uint8) if dtype != torch.bfloat16 else
                       back.view(torch.int16), t.view(torch.uint8) if dtype != torch.bfloat16
                       else t.view(torch.int16))


def test_non_contiguous_inputs_are_made_contiguous(conn):
    a = rand_np((6, 8), np.float32)
    t = torch.from_numpy(a.copy())
    assert np.array_equal(conn.put(a.T).numpy(), a.T)
    assert np.array_equal(conn.put(a[::2, 1::3]).numpy(), a[::2, 1::3])
    assert torch.equal(conn.put(t.t()).torch(), t.t())
    assert np.array_equal(conn.put(a.astype(">f4")).numpy(), a)  # big endian swapped


def test_result_lands_in_the_callers_buffer(conn):
    a = rand_np((64, 64), np.float32)
    r = conn.put(a)
    out = np.empty_like(a)
    got = conn.get(r, out=out)
    assert got is out and np.array_equal(out, a)
    t_out = torch.empty(64, 64)
    ptr = t_out.data_ptr()
    assert conn.get(r, out=t_out) is t_out and t_out.data_ptr() == ptr
    assert np.array_equal(t_out.numpy(), a)
    with pytest.raises(InvalidArgumentError):
        conn.get(r, out=np.empty((64, 128), np.float32)[:, ::2])


def test_floats64_and_other_dtypes_are_refused(conn):
    with pytest.raises(djinn.DTypeError, match="float64 is not a Djinn dtype"):
        conn.put(np.zeros(3))
    with pytest.raises(djinn.DTypeError):
        conn.put(torch.zeros(3, dtype=torch.bool))


def test_execute_keeps_results_resident(conn):
    a, b = rand_np((3, 4), np.float32), rand_np((4, 5), np.float32, 1)
    ra, rb = conn.put(a), conn.put(b)
    rc = conn.execute("matmul", ra, rb)
    assert isinstance(rc, djinn.RemoteTensor) and rc.shape == (3, 5)
    rd = conn.execute("softmax", rc, dim=0)
    assert conn.describe(rd) == ((3, 5), "float32")
    np.testing.assert_allclose(rd.numpy(), _softmax(a @ b, 0), rtol=1e-5, atol=1e-6)
    # Arrays as inputs: uploaded inside the same request, freed after it.
    re = conn.execute("add", rc, a @ b)
    np.testing.assert_allclose(re.numpy(), 2 * (a @ b), rtol=1e-5, atol=1e-5)


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def test_compute_is_one_request(conn):
    x = rand_np((5, 7), np.float32)
    before = conn.stats()["session"]["requests"]
    y = conn.compute("softmax", x, dim=-1)
    assert conn.stats()["session"]["requests"] == before + 2  # the compute and this STATS
    np.testing.assert_allclose(y, _softmax(x, -1), rtol=1e-5, atol=1e-6)
    t = conn.compute("relu", torch.from_numpy(x))
    assert isinstance(t, torch.Tensor) and torch.equal(t, torch.relu(torch.from_numpy(x)))


def _handles(conn):
    return conn.stats()["session"]["handles"]


def test_remote_tensor_lifetime(conn):
    base = _handles(conn)
    r = conn.put(np.arange(10, dtype=np.int64))
    assert _handles(conn) == base + 1
    r.free()
    assert _handles(conn) == base
    with pytest.raises(HandleError, match="was freed"):
        r.numpy()
    with conn.put(np.ones(3, np.float32)) as r2:
        assert _handles(conn) == base + 1
    assert _handles(conn) == base and "freed" in repr(r2)
    conn.put(np.ones(3, np.float32))  # dropped at once: collected, freed
    gc.collect()
    conn.ping()  # the FREE was sent before this; replies come in order of work
    assert _handles(conn) == base


def test_alloc_put_into(conn):
    r = conn.alloc((2, 3), "int32")
    assert np.array_equal(r.numpy(), np.zeros((2, 3), np.int32))
    conn.put_into(r, np.full((2, 3), 7, np.int32))
    assert np.array_equal(r.numpy(), np.full((2, 3), 7, np.int32))


def test_batch_puts_ops_fetches_and_frees(conn):
    base = _handles(conn)
    x = rand_np((4, 6), np.float32)
    w = conn.put(rand_np((3, 6), np.float32, 2))
    b = conn.batch()
    rx = b.put(x)
    h = b.op("linear", rx, w)
    y = b.op("gelu", h, fetch=True)
    idx = b.op("argmax", y, dim=-1, fetch=True)        # int64 after float32 bytes
    half = b.op("reshape", b.put(x.astype(np.float16)), shape=[-1], fetch=True)
    kept = b.op("mul", h, h, keep=True)
    res = b.run()
    ref = x @ w.numpy().T
    gelu = ref * 0.5 * (1 + np.vectorize(__import__("math").erf)(ref / np.sqrt(2)))
    np.testing.assert_allclose(res[y], gelu, rtol=1e-5, atol=1e-6)
    assert res[idx].dtype == np.int64 and np.array_equal(res[idx], gelu.argmax(-1))
    assert np.array_equal(res[half], x.astype(np.float16).reshape(-1))
    assert isinstance(res[kept], djinn.RemoteTensor)
    np.testing.assert_allclose(res[kept].numpy(), ref * ref, rtol=1e-5, atol=1e-5)
    # Everything else the batch made was freed inside it.
    assert _handles(conn) == base + 2  # w and kept
    with pytest.raises(KeyError):
        res[rx]


def test_batch_torch_fetches_misaligned(conn):
    b = conn.batch()
    a = b.put(torch.arange(3, dtype=torch.float16))     # 6 bytes
    c = b.put(torch.arange(5, dtype=torch.int64))       # at offset 6: not 8-aligned
    o1 = b.op("relu", a, fetch=True)
    o2 = b.op("relu", c, fetch=True)
    res = b.run()
    assert torch.equal(res[o1], torch.arange(3, dtype=torch.float16))
    assert torch.equal(res[o2], torch.arange(5, dtype=torch.int64))


def test_stats_and_ping(conn):
    s = conn.stats()
    assert {"server", "session", "backend"} <= set(s)
    assert s["session"]["path"] == "tcp"
    assert 0 < conn.ping() < 5
    assert conn.path[0] == "tcp"
    assert conn.client_stats()["connects"] >= 1


def test_addresses():
    assert djinn.parse_address("localhost:5556") == ("localhost", 5556)
    assert djinn.parse_address("10.0.0.2") == ("10.0.0.2", 18515)
    assert djinn.parse_address(("h", 7)) == ("h", 7)
    with pytest.raises(NotSupportedError, match="fleet"):
        djinn.parse_address(["a:1", "b:2"])
    with pytest.raises(InvalidArgumentError):
        djinn.parse_address("host:99999")


def test_library_logs_through_python_logging(server, caplog, capfd):
    djinn.set_log_level("info")
    try:
        with caplog.at_level(logging.INFO, logger="djinn.lib"):
            djinn.connect(server.address).close()
    finally:
        djinn.set_log_level("notice")
    assert any("data path tcp" in r.getMessage() for r in caplog.records)
    assert "data path" not in capfd.readouterr().err


def test_async_calls(conn):
    async def main():
        x = rand_np((8, 8), np.float32)
        r = await conn.put_async(x)
        assert np.array_equal(await r.get_async(), x)
        s = await conn.execute_async("relu", r)
        out = np.empty_like(x)
        assert await conn.get_async(s, out=out) is out
        assert np.array_equal(out, np.maximum(x, 0))
        t = await conn.compute_async("mul", torch.from_numpy(x), torch.from_numpy(x))
        assert isinstance(t, torch.Tensor) and torch.equal(t, torch.from_numpy(x * x))
        await conn.free_async(s)
        with pytest.raises(djinn.ShapeError, match="inner dimensions differ"):
            await conn.execute_async("matmul", r, await conn.put_async(x[:3]))
    asyncio.run(main())


def test_many_requests_in_flight(conn):
    async def main():
        xs = [rand_np((16,), np.float32, i) for i in range(300)]
        ys = await asyncio.gather(*(conn.compute_async("mul", x, x) for x in xs))
        for x, y in zip(xs, ys):
            assert np.array_equal(y, x * x)
    asyncio.run(main())


def test_session_device_is_named_and_checked(server):
    # The suite's server has host memory only: the session's device is
    # "host" whether asked for or left to the server; one it lacks is refused.
    with djinn.connect(server.address, timeout=30) as c:
        default = c.device
    assert default == "host"
    with djinn.connect(server.address, timeout=30, device="host") as c:
        assert c.device == "host"
        x = np.array([-2.0, -1.0, 1.0, 2.0], np.float32)
        assert c.compute("relu", x).tolist() == [0.0, 0.0, 1.0, 2.0]
    with pytest.raises(djinn.DjinnError):
        djinn.connect(server.address, timeout=30, retries=0, device="cuda:7")
