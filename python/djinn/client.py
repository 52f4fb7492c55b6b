# SPDX-License-Identifier: BSD-3-Clause
"""The synchronous and asyncio client: connections, resident tensors, batches.

    conn = djinn.connect("localhost:5556")            # one session on one server
    a = conn.put(x)                                    # RemoteTensor: stays on the server
    c = conn.execute("matmul", a, b)                   # runs there; nothing comes back
    y = c.numpy()   /   y = conn.get(c)                # now it does
    y = conn.compute("softmax", x, dim=-1)             # put, run, fetch, free: one round trip
    r = await conn.execute_async("relu", c)            # the same, from asyncio

Every call goes straight to libdjinn's client (include/djinn/djinn.h); blocking
calls release the GIL while they wait. Errors raise the DjinnError subclass of
their code with the server's message (djinn.errors).
"""
import ctypes
import json
import threading
import weakref

from . import _async, _lib, _tensors
from ._lib import lib
from .errors import DjinnError, InvalidArgumentError, NotSupportedError, make_error
import errno

_open = weakref.WeakSet()


def parse_address(address, default_port=18515):
    """("host", port) from "host:port", "host", ("host", port) or a port number.

    A list of addresses is a fleet: not in this build (the fleet client,
    dj_fleet_*, will take it; see docs/PYTHON.md)."""
    if isinstance(address, int):
        return "127.0.0.1", address
    if isinstance(address, tuple) and len(address) == 2 and isinstance(address[1], int):
        return str(address[0]), address[1]
    if isinstance(address, (list, tuple, set)):
        raise NotSupportedError(-errno.ENOTSUP, "a list of addresses is a fleet: this build "
                                "has no fleet client (dj_fleet_*); give one address")
    if not isinstance(address, str) or not address:
        raise InvalidArgumentError(-errno.EINVAL, f"address {address!r}: expected 'host:port'")
    host, sep, port = address.rpartition(":")
    if not sep:
        return address, default_port
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        p = int(port)
    except ValueError:
        p = -1
    if not host or not 0 < p < 65536:
        raise InvalidArgumentError(-errno.EINVAL, f"address {address!r}: expected 'host:port' "
                                   "with a port from 1 to 65535")
    return host, p


def _attrs_json(attrs):
    if not attrs:
        return None
    return json.dumps(attrs, separators=(",", ":")).encode()


def _check(rc, conn_ptr, what):
    if rc != 0:
        text = ""
        if conn_ptr:
            raw = lib.dj_conn_last_error(conn_ptr)
            text = raw.decode(errors="replace") if raw else ""
        raise make_error(rc, text or f"{what}: {_lib.strerror(rc)}")


class RemoteTensor:
    """A tensor resident on the server: a handle, its shape and dtype.

    Freed on the server by free(), by leaving a `with` block, or when
    collected. .numpy() / .torch() / .get() fetch its bytes.
    """
    __slots__ = ("conn", "handle", "shape", "dtype", "kind", "_alive", "__weakref__")

    def __init__(self, conn, handle, desc, kind="numpy"):
        self.conn = conn
        self.handle = handle
        self.shape = _lib.desc_shape(desc)
        self.dtype = _lib.DTYPE_NAMES[desc.dtype]
        self.kind = kind
        self._alive = True

    @property
    def nbytes(self):
        n = _lib.DTYPE_SIZES[_lib.DTYPE_CODES[self.dtype]]
        for s in self.shape:
            n *= s
        return n

    @property
    def ndim(self):
        return len(self.shape)

    def desc(self):
        return _lib.make_desc(_lib.DTYPE_CODES[self.dtype], self.shape)

    def ref(self):
        """The handle as the wire writes it ("0x..."), for batch inputs."""
        if not self._alive:
            raise make_error(-10005, f"tensor {self.handle:#x} was freed")
        return f"{self.handle:#x}"

    def get(self, out=None):
        return self.conn.get(self, out=out)

    def numpy(self):
        return self.conn.get(self, kind="numpy")

    def torch(self):
        return self.conn.get(self, kind="torch")

    async def get_async(self, out=None):
        return await self.conn.get_async(self, out=out)

    def free(self):
        """Free it on the server now (waits for the reply)."""
        if self._alive:
            self._alive = False
            self.conn._free(self.handle)

    def _forget(self):
        self._alive = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.free()

    def __del__(self):
        if getattr(self, "_alive", False):
            self._alive = False
            try:
                self.conn._free_later(self.handle)
            except Exception:
                pass

    def __repr__(self):
        state = "" if self._alive else ", freed"
        return (f"RemoteTensor({self.handle:#x}, shape={list(self.shape)}, "
                f"dtype={self.dtype}{state})")


class Connection:
    """One session on one Djinn server (a dj_client with one dj_conn).

    address: "host:port" (the server's control port). token / token_file:
    the pre-shared token (else DJINN_TOKEN / DJINN_TOKEN_FILE). path: "auto",
    "tcp" or "dpdk" (tensor bytes over the DPDK data path: needs
    djinn.dpdk_start()). timeout: seconds per request (blocking calls and
    async ones); connect_timeout: seconds per connect attempt, retries: how
    many (with backoff). device: where the session keeps its tensors by
    default ("cuda:1", "host"; docs/MULTIGPU.md), None for the server's
    choice; a device the server lacks fails the connect. Thread safe:
    several threads may call at once.
    """

    def __init__(self, address, token=None, token_file=None, path="auto", timeout=30.0,
                 connect_timeout=2.0, retries=5, tls=False, tls_ca=None, datapath=None,
                 device=None):
        from . import _logging
        _logging.install()
        self.address = address
        self.host, self.port = parse_address(address)
        if path not in _lib.PATHS:
            raise InvalidArgumentError(-errno.EINVAL, f"path {path!r}: expected one of "
                                       + ", ".join(_lib.PATHS))
        self.timeout = float(timeout) if timeout else 0.0
        self._client = ctypes.c_void_p()
        self._conn = None
        self._lock = threading.Lock()
        o = _lib.ClientOptions()
        lib.dj_client_options_init(ctypes.byref(o))
        keep = [self.host.encode(), token.encode() if token else None,
                token_file.encode() if token_file else None,
                tls_ca.encode() if tls_ca else None, device.encode() if device else None]
        o.host, o.token, o.token_file, o.tls_ca, o.device = keep
        o.port = self.port
        o.tls = 1 if tls else 0
        o.path = _lib.PATHS[path]
        o.datapath = datapath
        o.connect_timeout_ms = int(connect_timeout * 1000)
        o.request_timeout_ms = int(self.timeout * 1000)
        o.max_retries = retries
        rc = lib.dj_client_create(ctypes.byref(o), ctypes.byref(self._client))
        if rc != 0:
            raise make_error(rc, f"client for {self.host}:{self.port}: {_lib.strerror(rc)}")
        conn = ctypes.c_void_p()
        rc = lib.dj_connect(self._client, ctypes.byref(conn))
        if rc != 0:
            lib.dj_client_destroy(self._client)
            self._client = None
            raise make_error(rc, f"connect to {self.host}:{self.port}: {_lib.strerror(rc)}")
        self._conn = conn.value
        _open.add(self)

    # ---- the connection ---------------------------------------------------

    @property
    def closed(self):
        return self._conn is None

    def _ptr(self):
        c = self._conn
        if c is None:
            raise make_error(-errno.ENOTCONN, f"connection to {self.host}:{self.port} is closed")
        return c

    @property
    def session_id(self):
        return lib.dj_conn_session_id(self._ptr())

    @property
    def device(self):
        """The session's default device as the server named it ("cuda:0",
        "host"), or "" where the server names no devices."""
        return lib.dj_conn_device(self._ptr()).decode()

    @property
    def path(self):
        """(path name, reason): "tcp" or "dpdk", and why."""
        reason = ctypes.c_char_p()
        p = lib.dj_conn_path(self._ptr(), ctypes.byref(reason))
        return ("auto", "tcp", "dpdk")[p], (reason.value or b"").decode()

    def close(self):
        """Close the session (BYE): every tensor it holds is freed on the server.

        Requests still in flight complete with DjinnConnectionError."""
        with self._lock:
            conn, self._conn = self._conn, None
            client, self._client = self._client, None
        if conn is not None:
            lib.dj_conn_close(conn)
        if client:
            lib.dj_client_destroy(client)
        _open.discard(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self):
        state = "closed" if self.closed else f"session {self.session_id}"
        return f"Connection({self.host}:{self.port}, {state})"

    def ping(self):
        """One round trip; its time in seconds."""
        rtt = ctypes.c_uint64()
        c = self._ptr()
        _check(lib.dj_ping(c, ctypes.byref(rtt)), c, "ping")
        return rtt.value / 1e9

    def stats(self):
        """The server's STATS (server, session, backend) as a dict."""
        text = ctypes.c_void_p()
        c = self._ptr()
        _check(lib.dj_stats(c, ctypes.byref(text)), c, "stats")
        try:
            return json.loads(ctypes.string_at(text.value).decode())
        finally:
            _lib.c_free(text.value)

    def client_stats(self):
        """The client's own counters (connects, reuses, retries...)."""
        s = _lib.ClientStats()
        lib.dj_client_get_stats(self._client, ctypes.byref(s))
        return {name: getattr(s, name) for name, _ in s._fields_}

    # ---- tensors ----------------------------------------------------------

    def _remote(self, handle, desc, kind):
        return RemoteTensor(self, handle, desc, kind)

    def put(self, array):
        """Upload a numpy array or CPU torch tensor: a RemoteTensor."""
        h = _tensors.as_host(array, "put")
        handle = ctypes.c_uint64()
        c = self._ptr()
        _check(lib.dj_put(c, ctypes.byref(h.ct), ctypes.byref(handle)), c, "put")
        return self._remote(handle.value, h.ct.desc, h.kind)

    def put_into(self, remote, array):
        """Overwrite a resident tensor (same byte size) with array's bytes."""
        h = _tensors.as_host(array, "put_into")
        c = self._ptr()
        _check(lib.dj_put_into(c, remote.handle, ctypes.byref(h.ct)), c, "put_into")

    def alloc(self, shape, dtype="float32", kind="numpy"):
        """A new resident tensor of zeros."""
        d = _lib.make_desc(_code(dtype), tuple(shape))
        handle = ctypes.c_uint64()
        c = self._ptr()
        _check(lib.dj_alloc(c, ctypes.byref(d), ctypes.byref(handle)), c, "alloc")
        return self._remote(handle.value, d, kind)

    def describe(self, remote):
        """(shape, dtype) of a resident tensor, as the server knows it."""
        d = _lib.TensorDesc()
        c = self._ptr()
        _check(lib.dj_describe(c, _handle(remote), ctypes.byref(d)), c, "describe")
        return _lib.desc_shape(d), _lib.DTYPE_NAMES[d.dtype]

    def get(self, remote, out=None, kind=None):
        """Download a RemoteTensor into out (an array of its size), or into a new
        array of the kind it came from (numpy or torch)."""
        handle = _handle(remote)
        obj, h = self._out(remote, out, kind)
        c = self._ptr()
        _check(lib.dj_get(c, handle, ctypes.byref(h.ct)), c, "get")
        return obj

    def _out(self, remote, out, kind):
        if out is None:
            return _tensors.alloc(kind or remote.kind, _lib.DTYPE_CODES[remote.dtype],
                                  remote.shape)
        h = _tensors.as_host(out, "get: out")
        if h.obj is not out and not _shares(h.obj, out):
            raise InvalidArgumentError(-errno.EINVAL, "get: out must be contiguous (the "
                                       "bytes land in it directly)")
        return out, h

    def _free(self, handle):
        c = self._ptr()
        _check(lib.dj_free(c, handle), c, "free")

    def _free_later(self, handle):
        """FREE without waiting (a collected RemoteTensor): nobody reads the reply."""
        c = self._conn
        if c is None:
            return
        f = ctypes.c_void_p()
        if lib.dj_free_async(c, handle, _lib.NO_CB, None, ctypes.byref(f)) == 0:
            lib.dj_future_release(f)

    def free(self, remote):
        remote.free()

    def execute(self, op, *inputs, attrs=None, **kw_attrs):
        """Run op on the server: a RemoteTensor of its (first) output.

        inputs are RemoteTensors, or arrays (uploaded in the same request and
        freed after it). Attributes as keywords (dim=-1) or attrs={...}."""
        attrs = _merge_attrs(attrs, kw_attrs)
        kind = _kind(inputs)
        if all(isinstance(x, RemoteTensor) for x in inputs):
            return self._execute_handles(op, inputs, attrs, kind)
        b = self.batch()
        refs = [x if isinstance(x, RemoteTensor) else b.put(x) for x in inputs]
        out = b.op(op, *refs, attrs=attrs, keep=True)
        return b.run()[out]

    def _execute_handles(self, op, inputs, attrs, kind):
        if len(inputs) > _lib.DJ_MAX_OP_ARGS:
            raise InvalidArgumentError(-errno.EINVAL, f"{op}: at most {_lib.DJ_MAX_OP_ARGS} "
                                       "inputs")
        hs = (ctypes.c_uint64 * max(len(inputs), 1))(*[_handle(x) for x in inputs])
        out = ctypes.c_uint64()
        d = _lib.TensorDesc()
        c = self._ptr()
        _check(lib.dj_execute(c, op.encode(), hs, len(inputs), _attrs_json(attrs),
                              ctypes.byref(out), ctypes.byref(d)), c, op)
        return self._remote(out.value, d, kind)

    def compute(self, op, *inputs, attrs=None, **kw_attrs):
        """Upload the inputs, run op, fetch the result, free everything: one
        round trip. Returns an array of the inputs' kind (numpy or torch)."""
        attrs = _merge_attrs(attrs, kw_attrs)
        b = self.batch()
        refs = [x if isinstance(x, RemoteTensor) else b.put(x) for x in inputs]
        out = b.op(op, *refs, attrs=attrs, fetch=True)
        return b.run()[out]

    def batch(self):
        """A batch: puts, operations, fetches and frees in one request (djinn.Batch)."""
        from .batch import Batch
        return Batch(self)

    # ---- asyncio ------------------------------------------------------------

    async def put_async(self, array):
        h = _tensors.as_host(array, "put")
        c = self._ptr()

        def extract(f):
            handle = ctypes.c_uint64()
            _check_future(lib.dj_future_handle(f, ctypes.byref(handle), None), "put")
            return RemoteTensor(self, handle.value, h.ct.desc, h.kind)

        return await _async.submit(
            lambda cb, key, pf: lib.dj_put_async(c, ctypes.byref(h.ct), cb, key, pf),
            extract, h, self.timeout, "put")

    async def get_async(self, remote, out=None, kind=None):
        handle = _handle(remote)
        obj, h = self._out(remote, out, kind)
        c = self._ptr()
        await _async.submit(
            lambda cb, key, pf: lib.dj_get_async(c, handle, ctypes.byref(h.ct), cb, key, pf),
            lambda f: None, (obj, h, remote), self.timeout, "get")
        return obj

    async def execute_async(self, op, *inputs, attrs=None, **kw_attrs):
        attrs = _merge_attrs(attrs, kw_attrs)
        kind = _kind(inputs)
        if not all(isinstance(x, RemoteTensor) for x in inputs):
            b = self.batch()
            refs = [x if isinstance(x, RemoteTensor) else b.put(x) for x in inputs]
            out = b.op(op, *refs, attrs=attrs, keep=True)
            return (await b.run_async())[out]
        hs = (ctypes.c_uint64 * max(len(inputs), 1))(*[_handle(x) for x in inputs])
        aj = _attrs_json(attrs)
        c = self._ptr()

        def extract(f):
            handle = ctypes.c_uint64()
            d = _lib.TensorDesc()
            _check_future(lib.dj_future_handle(f, ctypes.byref(handle), ctypes.byref(d)), op)
            return RemoteTensor(self, handle.value, d, kind)

        return await _async.submit(
            lambda cb, key, pf: lib.dj_execute_async(c, op.encode(), hs, len(inputs), aj, cb,
                                                     key, pf),
            extract, (hs, inputs), self.timeout, op)

    async def compute_async(self, op, *inputs, attrs=None, **kw_attrs):
        attrs = _merge_attrs(attrs, kw_attrs)
        b = self.batch()
        refs = [x if isinstance(x, RemoteTensor) else b.put(x) for x in inputs]
        out = b.op(op, *refs, attrs=attrs, fetch=True)
        return (await b.run_async())[out]

    async def free_async(self, remote):
        if not remote._alive:
            return
        remote._forget()
        c = self._ptr()
        handle = remote.handle
        await _async.submit(
            lambda cb, key, pf: lib.dj_free_async(c, handle, cb, key, pf),
            lambda f: None, None, self.timeout, "free")


def _check_future(rc, what):
    if rc != 0:
        raise make_error(rc, f"{what}: {_lib.strerror(rc)}")


def _shares(a, b):
    try:
        return a.data_ptr() == b.data_ptr()
    except AttributeError:
        return a.ctypes.data == b.ctypes.data


def _handle(x):
    if isinstance(x, RemoteTensor):
        if not x._alive:
            raise make_error(-10005, f"tensor {x.handle:#x} was freed")
        return x.handle
    if isinstance(x, int):
        return x
    raise TypeError(f"expected a RemoteTensor, got {type(x).__name__}")


def _kind(inputs):
    for x in inputs:
        if isinstance(x, RemoteTensor):
            continue
        return _tensors.kind_of(x)
    for x in inputs:
        if isinstance(x, RemoteTensor):
            return x.kind
    return "numpy"


def _code(dtype):
    name = str(dtype).replace("torch.", "").replace("numpy.", "")
    name = {"float": "float32", "half": "float16", "long": "int64", "int": "int32"}.get(
        name, name)
    if name not in _lib.DTYPE_CODES:
        raise _tensors._refuse("dtype", dtype)
    return _lib.DTYPE_CODES[name]


def _merge_attrs(attrs, kw):
    if attrs and kw:
        merged = dict(attrs)
        merged.update(kw)
        return merged
    return attrs or kw or None


def connect(address, token=None, token_file=None, path="auto", timeout=30.0,
            connect_timeout=2.0, retries=5, tls=False, tls_ca=None, datapath=None, device=None):
    """A Connection to the Djinn server at address ("host:port"). See Connection."""
    return Connection(address, token=token, token_file=token_file, path=path, timeout=timeout,
                      connect_timeout=connect_timeout, retries=retries, tls=tls, tls_ca=tls_ca,
                      datapath=datapath, device=device)


def close_all():
    """Close every open Connection (atexit does it too)."""
    for c in list(_open):
        c.close()


__all__ = ["Connection", "RemoteTensor", "connect", "parse_address", "close_all",
           "DjinnError"]
