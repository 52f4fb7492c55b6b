# SPDX-License-Identifier: BSD-3-Clause
"""Errors become exceptions of their code's class, carrying the server's
message and the code (docs/CONTROL.md, "Error codes"); a failed request
leaves the session serving and nothing behind."""
import errno
import os
import stat

import numpy as np
import pytest
import torch

import djinn
from djinn import errors
from djinn.core.coordinator import CoordinatorConfig, DjinnCoordinator


def test_server_shape_error(conn):
    a = conn.put(np.ones((3, 4), np.float32))
    with pytest.raises(djinn.ShapeError) as e:
        conn.execute("matmul", a, a)
    assert e.value.code == -errors.DJ_ESHAPE == -10002
    assert e.value.name == "DJ_ESHAPE"
    assert e.value.message == "matmul: inner dimensions differ: [3,4] @ [3,4]"
    assert isinstance(e.value, ValueError) and isinstance(e.value, djinn.DjinnError)
    assert conn.ping() > 0  # the session serves on


def test_server_dtype_unknown_op_and_attribute_errors(conn):
    i = conn.put(np.arange(4, dtype=np.int32))
    with pytest.raises(djinn.DTypeError, match="sqrt: int32 not supported") as e:
        conn.execute("sqrt", i)
    assert e.value.code == -10003 and isinstance(e.value, TypeError)
    with pytest.raises(djinn.UnknownOperationError) as e:
        conn.execute("nosuchop", i)
    assert e.value.code == -10004
    with pytest.raises(djinn.InvalidArgumentError, match="attribute 'dimm' is unknown") as e:
        conn.execute("sum", i, dimm=0)
    assert e.value.code == -errno.EINVAL


def test_another_sessions_handle_is_unknown(server, conn):
    other = djinn.connect(server.address)
    theirs = other.put(np.ones(4, np.float32))
    stolen = djinn.RemoteTensor(conn, theirs.handle, theirs.desc())
    try:
        with pytest.raises(djinn.HandleError, match="unknown tensor handle") as e:
            conn.execute("relu", stolen)
        assert e.value.code == -10005
    finally:
        stolen._forget()
        other.close()


def test_run_time_range_error_names_the_entry_and_leaves_nothing(conn):
    weight = np.arange(10, dtype=np.float32).reshape(5, 2)
    before = conn.stats()["session"]["handles"]
    with pytest.raises(djinn.OutOfRangeError,
                       match=r"embedding: index 7 out of range for 5 rows \(at position 3\)") as e:
        conn.compute("embedding", np.array([0, 1, 2, 7], np.int64), weight)
    assert e.value.code == -errno.ERANGE and "batch op" in e.value.message
    assert conn.stats()["session"]["handles"] == before


def test_local_shape_check_before_sending(conn):
    # A batch infers every shape first (the same table as the server).
    with pytest.raises(djinn.ShapeError, match="matmul: inner dimensions differ"):
        conn.compute("matmul", np.ones((2, 3), np.float32), np.ones((2, 3), np.float32))


def test_coordinator_errors(address):
    async def main():
        async with DjinnCoordinator(CoordinatorConfig()) as c:
            x = torch.ones(2, 2)
            with pytest.raises(djinn.UnknownOperationError, match="aten::frobnicate"):
                await c.execute_remote_operation("aten::frobnicate", [x], address)
            with pytest.raises(djinn.NotSupportedError, match="gelu approximate='tanh'"):
                await c.execute_remote_operation("aten::gelu", [x], address, approximate="tanh")
            with pytest.raises(djinn.NotSupportedError, match="type promotion"):
                await c.execute_remote_operation("aten::add", [x, torch.ones(2, dtype=torch.int64)],
                                                 address)
        with pytest.raises(djinn.DjinnError, match="not started"):
            await DjinnCoordinator().execute_remote_operation("aten::relu", [x], address)
    import asyncio
    asyncio.run(main())


def test_memory_limit(own_server):
    srv = own_server(args=["--mem-limit", "1M"])
    with djinn.connect(srv.address) as c:
        with pytest.raises(djinn.LimitError, match="limit") as e:
            c.put(np.zeros(512 * 1024, np.float32))   # 2 MiB
        assert e.value.code == -10008
        assert np.array_equal(c.put(np.ones(4, np.float32)).numpy(), np.ones(4))


def test_authentication(own_server, tmp_path):
    tok = tmp_path / "token"
    tok.write_text("sesame\n")
    os.chmod(tok, stat.S_IRUSR | stat.S_IWUSR)
    srv = own_server(args=["--token-file", str(tok)])
    with djinn.connect(srv.address, token="sesame") as c:
        assert c.ping() > 0
    with djinn.connect(srv.address, token_file=str(tok)) as c:
        assert c.ping() > 0
    with pytest.raises(djinn.AuthError, match="authentication failed") as e:
        djinn.connect(srv.address, token="wrong", retries=0)
    assert e.value.code == -10001 and isinstance(e.value, PermissionError)


def test_refused_connection_is_bounded(own_server):
    srv = own_server()
    addr = srv.address
    srv.stop()
    import time
    t0 = time.monotonic()
    with pytest.raises(djinn.DjinnConnectionError) as e:
        djinn.connect(addr, retries=2)
    assert e.value.code == -errno.ECONNREFUSED and isinstance(e.value, ConnectionError)
    assert time.monotonic() - t0 < 10


def test_error_classes_by_code():
    assert isinstance(errors.make_error(-errno.ETIMEDOUT, "x"), TimeoutError)
    assert isinstance(errors.make_error(-errno.ENOMEM), MemoryError)
    assert type(errors.make_error(-12345)) is djinn.DjinnError
    assert errors.make_error(-errno.ECONNRESET).name == "ECONNRESET"
    assert str(errors.make_error(-10002, "m")) == "m [DJ_ESHAPE]"
