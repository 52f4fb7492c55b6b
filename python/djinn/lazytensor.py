# SPDX-License-Identifier: BSD-3-Clause
"""LazyTensor: torch programs captured into Djinn's lazy graphs (dj_graph_*).

    model = djinn.lazy(model)                # weights named; buffers become state
    with djinn.remote("localhost:5556"):     # torch ops in here are captured
        logits = model(tokens)               # nothing has run yet: a LazyTensor
        print(logits.shape)                  # known, from the C graph's inference
        token = logits[0, -1].argmax()       # still lazy
        token.item()                         # one round trip runs all of it

How it works
- A LazyTensor is a torch.Tensor subclass with shape and dtype but no storage.
  Every torch function it meets comes to __torch_function__; inside
  `with djinn.remote(...)` a TorchFunctionMode also captures functions of
  plain tensors. Supported functions are recorded into the session's current
  graph (the "tape") through the builders of djinn/ops.py; the result's shape
  and dtype come from the C graph's inference (dj_graph_node_desc).
- Values materialize on .cpu(), .numpy(), .item(), .tolist(), printing,
  comparison and bool(): one dj_graph_fetch runs what the tape recorded, in
  one round trip, and brings back the asked-for tensor together with every
  other LazyTensor of the tape still alive (the tape is then retired, so none
  would be reachable otherwise). Outputs land in torch tensors allocated once.
- nn.Parameters are graph parameters (named by djinn.lazy(module), identified
  by name and content hash: uploaded once per server, hashed again only when
  the tensor changed (its version counter, or a new remote() block)). Buffers
  of a module given to djinn.lazy() are graph state: created on the server on
  first use and updated there in place by `buf[..., a:b, ...] = x` (the KV
  cache: slice_write), never sent back unless read. Other tensors are inputs,
  uploaded inside the request that needs them.
- A function Djinn cannot do exactly (an operation or argument we lack, a type
  promotion, a step) runs locally on materialized inputs with one
  DjinnFallbackWarning per function name; its result enters later graphs as an
  input. Never a wrong result: what cannot be kept exact raises
  NotSupportedError (an in-place write through a view, a view read after its
  base was written in place, an unsupported in-place write into state), and a
  borrowed input modified after capture raises before anything runs.
"""
import ctypes
import errno
import os
import threading
import time
import warnings
import weakref

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from . import _lib, _tensors, ops
from ._lib import lib
from .batch import infer_error
from .client import Connection, parse_address
from .errors import DjinnError, NotSupportedError, make_error
from .ops import Unsupported

T = torch.Tensor


class DjinnFallbackWarning(UserWarning):
    """An operation ran locally on materialized inputs (once per operation name)."""


_warned = set()
_stranded = []  # buffers a timed-out fetch may still write


class _Node(int):
    """A node id of a tape, as the builders of djinn.ops see values."""
    __slots__ = ()


class _RecordError(Exception):
    def __init__(self, error):
        super().__init__(str(error))
        self.error = error


# ---- sessions ----------------------------------------------------------------


class Session:
    """One remote for lazy graphs: a connection and a dj_graph_ctx (weights
    cached by name and hash, state) over it, and the tape being recorded.

    Today one server. A fleet (dj_fleet_*) will give the context several
    sessions and a placer (dj_graph_ctx_create takes n servers already): see
    docs/PYTHON.md."""

    def __init__(self, conn, own=True):
        self.conn = conn
        self.own = own
        self.lock = threading.RLock()
        self.ctx = ctypes.c_void_p()
        servers = (ctypes.c_void_p * 1)(conn._ptr())
        rc = lib.dj_graph_ctx_create(None, servers, 1, ctypes.byref(self.ctx))
        if rc != 0:
            raise make_error(rc, "graph context: " + _lib.strerror(rc))
        self.tape = None
        self.epoch = 0
        self.hashes = {}        # id(tensor) -> _Hashed
        self.fetches = 0
        self.round_trips = 0
        self.fetch_seconds = 0.0  # inside dj_graph_fetch (the rest is recording)
        self.last = None
        self._drops = []        # states to drop (collected state tensors)

    def current_tape(self):
        if self.ctx is None:
            raise make_error(-errno.ENOTCONN, "the lazy session is closed")
        if self.tape is None:
            self._drop_pending()
            self.tape = Tape(self)
        return self.tape

    def _drop_pending(self):
        drops, self._drops = self._drops, []
        for name in drops:
            lib.dj_graph_ctx_state_drop(self.ctx, name)

    def flush(self):
        """Run what the tape holds that has effects (in-place writes into
        state) and retire it."""
        with self.lock:
            t = self.tape
            if t is not None and t.writes:
                t.run([])

    def stats(self):
        """Counters: this session's fetches and round trips, and the graph
        context's totals (dj_graph_ctx_stats)."""
        s = _lib.GraphRunStats()
        if self.ctx:
            lib.dj_graph_ctx_stats(self.ctx, ctypes.byref(s))
        d = {name: getattr(s, name) for name, _ in s._fields_}
        d["fetches"] = self.fetches
        d["fetch_seconds"] = self.fetch_seconds
        return d

    def close(self):
        with self.lock:
            if self.ctx is None:
                return
            try:
                self.flush()
            except DjinnError:
                pass
            if self.tape is not None:
                self.tape.retire()
            lib.dj_graph_ctx_destroy(self.ctx)
            self.ctx = None
            if self.own:
                self.conn.close()

    def __repr__(self):
        return f"Session({self.conn.host}:{self.conn.port})"


_sessions = {}
_sessions_lock = threading.Lock()
_active = threading.local()


def session_for(target=None, **connect_kwargs):
    """The Session for target: a Session, a Connection (wrapped), an address
    ("host:port"; one Session per address, kept until close_sessions()), or
    None (the innermost remote() block, else DJINN_ADDRESS)."""
    if isinstance(target, Session):
        return target
    if isinstance(target, Connection):
        return Session(target, own=False)
    if target is None:
        stack = getattr(_active, "stack", None)
        if stack:
            return stack[-1]
        target = os.environ.get("DJINN_ADDRESS")
        if not target:
            raise DjinnError(-errno.ENOTCONN, "no remote: use `with djinn.remote(address):`, "
                             "djinn.lazy(x, remote=address) or set DJINN_ADDRESS")
    key = parse_address(target)
    with _sessions_lock:
        s = _sessions.get(key)
        if s is None or s.ctx is None:
            s = Session(Connection(target, **connect_kwargs))
            _sessions[key] = s
        return s


def close_sessions():
    """Close every lazy session (their weights and state are freed on the
    servers); atexit does it too."""
    with _sessions_lock:
        ss = list(_sessions.values())
        _sessions.clear()
    for s in ss:
        s.close()


class remote:
    """`with djinn.remote(address):` capture the torch functions of the block.

    Functions on LazyTensors are captured anywhere; inside the block also
    those on plain tensors (a model's forward on real inputs), for the
    operations Djinn has. Leaving the block runs what is pending with effects
    (state writes); LazyTensors made inside stay usable after it."""

    def __init__(self, target=None, **connect_kwargs):
        self.target = target
        self.kw = connect_kwargs
        self.session = None
        self.mode = None

    def __enter__(self):
        self.session = session_for(self.target, **self.kw)
        self.session.epoch += 1
        stack = getattr(_active, "stack", None)
        if stack is None:
            stack = _active.stack = []
        stack.append(self.session)
        self.mode = _CaptureMode(self.session)
        self.mode.__enter__()
        return self.session

    def __exit__(self, exc_type, exc, tb):
        self.mode.__exit__(exc_type, exc, tb)
        _active.stack.pop()
        if exc_type is None:
            self.session.flush()
        return False


class _CaptureMode(TorchFunctionMode):
    def __init__(self, session):
        super().__init__()
        self.session = session

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _META:
            return func(*args, **kwargs)
        return _dispatch(func, args, kwargs, self.session)


# ---- tapes: one dj_graph each --------------------------------------------------


class _Hashed:
    __slots__ = ("ref", "version", "ptr", "epoch", "host", "hash")


class _State:
    """A named resident tensor (a module buffer made state)."""

    def __init__(self, session, name, init):
        self.session = session
        self.name = name
        self.bname = name.encode()
        self.code = _tensors.torch_code(init.dtype)
        self.shape = tuple(init.shape)
        self.init = _tensors.as_host(init, f"state {name}")
        self.created = False

    def desc(self):
        return _lib.make_desc(self.code, self.shape)


class Tape:
    """The graph being recorded for a session, until a fetch runs it."""

    def __init__(self, session):
        self.s = session
        self.g = ctypes.c_void_p()
        rc = lib.dj_graph_create(session.ctx, ctypes.byref(self.g))
        if rc != 0:
            raise make_error(rc, "graph: " + _lib.strerror(rc))
        self.leaves = {}     # id(obj) -> node, for real tensors and valued LazyTensors
        self.keep = []       # what the graph borrows: Hosts, and (tensor, version) checks
        self.lazies = {}     # id -> weakref of the LazyTensors pending in this tape
        self.descs = {}      # node -> (shape, dtype name)
        self.scalars = {}
        self.states = []     # _State recorded here
        self.writes = False  # in-place writes into state pending
        self.done = False

    def desc(self, node):
        d = self.descs.get(node)
        if d is None:
            cd = _lib.TensorDesc()
            lib.dj_graph_node_desc(self.g, node, ctypes.byref(cd))
            d = self.descs[node] = (_lib.desc_shape(cd), _lib.DTYPE_NAMES[cd.dtype], cd.dtype)
        return d

    def op(self, name, nodes, attrs):
        arr = (ctypes.c_int * max(len(nodes), 1))(*nodes)
        node = lib.dj_graph_op(self.g, name.encode(), arr, len(nodes), _attrs(attrs))
        if node < 0:
            raise _RecordError(infer_error(self.g, node, name))
        return _Node(node)

    def _borrow(self, host, original):
        """The graph reads host's buffer at fetch time: where that is the
        caller's own tensor (no copy was needed), check it did not change."""
        self.keep.append(host)
        if host.obj.data_ptr() == original.data_ptr():
            self.keep.append((original, original._version))

    def input(self, t, key=None):
        key = id(t) if key is None else key
        node = self.leaves.get(key)
        if node is None:
            host = _tensors.as_host(t, "input")
            node = lib.dj_graph_input(self.g, None, ctypes.byref(host.ct))
            if node < 0:
                raise make_error(node, (lib.dj_graph_error(self.g) or b"").decode())
            self._borrow(host, t)
            self.leaves[key] = node
        return node

    def param(self, t):
        node = self.leaves.get(id(t))
        if node is not None:
            return node
        s = self.s
        h = s.hashes.get(id(t))
        ptr = t.data_ptr()
        if (h is None or h.ref() is not t or h.version != t._version or h.ptr != ptr or
                h.epoch != s.epoch):
            h = _Hashed()
            h.ref = weakref.ref(t)
            h.version = t._version
            h.ptr = ptr
            h.epoch = s.epoch
            h.host = _tensors.as_host(t, "parameter")
            h.hash = lib.dj_graph_hash(ctypes.byref(h.host.ct))
            if id(t) not in s.hashes:
                weakref.finalize(t, s.hashes.pop, id(t), None)
            s.hashes[id(t)] = h
        node = lib.dj_graph_param_hashed(self.g, param_name(t).encode(),
                                         ctypes.byref(h.host.ct), h.hash)
        if node < 0:
            raise make_error(node, (lib.dj_graph_error(self.g) or b"").decode())
        self.keep.append(h.host)
        self.keep.append((t, h.version))
        self.leaves[id(t)] = node
        return node

    def state(self, st):
        if st.created:
            server, handle = ctypes.c_int(), ctypes.c_uint64()
            if lib.dj_graph_ctx_state_where(self.s.ctx, st.bname, ctypes.byref(server),
                                            ctypes.byref(handle)) != 0:
                raise DjinnError(-errno.ENOENT, f"state '{st.name}' is gone from the server "
                                 "(restarted, or the session was lost): its values are lost")
        d = st.desc()
        init = None if st.created else ctypes.byref(st.init.ct)
        node = lib.dj_graph_state(self.g, st.bname, ctypes.byref(d), init)
        if node < 0:
            raise make_error(node, (lib.dj_graph_error(self.g) or b"").decode())
        self.states.append(st)
        return node

    def scalar(self, v, code):
        key = (type(v), v, code)
        node = self.scalars.get(key)
        if node is None:
            t = torch.tensor(v, dtype=_tensors.torch_dtype(code))
            node = self.input(t, key=("scalar",) + key)
            self.scalars[key] = node
        return node

    def register(self, lt):
        self.lazies[id(lt)] = weakref.ref(lt, lambda _r, k=id(lt), d=self.lazies: d.pop(k, None))

    def describe(self):
        p = lib.dj_graph_describe(self.g)
        if not p:
            raise MemoryError("dj_graph_describe")
        try:
            return ctypes.string_at(p).decode()
        finally:
            _lib.c_free(p)

    def _check_versions(self):
        for k in self.keep:
            if isinstance(k, tuple) and k[0]._version != k[1]:
                raise DjinnError(-errno.EINVAL, "a tensor captured by a lazy graph was "
                                 f"modified in place before the graph ran ({_desc_text(k[0])}); "
                                 "its captured value is gone: clone it before modifying")

    def run(self, targets):
        """One dj_graph_fetch: targets (LazyTensors of this session) and every
        live pending LazyTensor of the tape. Returns the targets' values."""
        if self.done:
            raise DjinnError(-errno.EINVAL, "internal: a retired tape ran")
        try:
            self._check_versions()
        except DjinnError as e:
            self.fail(e)
            raise
        order, values = [], {}
        wanted = {id(t) for t in targets}
        pending = [r() for r in list(self.lazies.values())]
        for lt in targets + [p for p in pending if p is not None]:
            if id(lt) in values:
                continue
            if lt._dj_state is not None and id(lt) not in wanted:
                continue  # state stays on the server unless asked for
            if lt._dj_tape is not self and lt._dj_state is not None:
                lt._dj_tape, lt._dj_node = self, self.state(lt._dj_state)
                self.register(lt)
            if lt._dj_tape is not self or lt._dj_error is not None:
                continue
            shape, _, code = self.desc(lt._dj_node)
            obj, host = _tensors.alloc("torch", code, shape)
            values[id(lt)] = (lt, obj, host)
            order.append(id(lt))
        n = len(order)
        nodes = (ctypes.c_int * max(n, 1))(*[values[k][0]._dj_node for k in order])
        outs = (_lib.Tensor * max(n, 1))()
        for i, k in enumerate(order):
            outs[i] = values[k][2].ct
        t0 = time.perf_counter()
        rc = lib.dj_graph_fetch(self.g, nodes, n, outs)
        s = self.s
        s.fetch_seconds += time.perf_counter() - t0
        st = _lib.GraphRunStats()
        lib.dj_graph_last_run(self.g, ctypes.byref(st))
        s.fetches += 1
        s.round_trips += st.round_trips
        s.last = {name: getattr(st, name) for name, _ in st._fields_}
        if rc != 0:
            err = make_error(rc, (lib.dj_graph_error(self.g) or b"").decode(errors="replace")
                             or _lib.strerror(rc))
            if rc == -errno.ETIMEDOUT:
                _stranded.append((values, outs))
            self.fail(err)
            raise err
        out = []
        for st_ in self.states:
            st_.created = True
            st_.init = None
        for k in order:
            lt, obj, _ = values[k]
            if lt._dj_state is None:
                lt._dj_value = obj
        for lt in targets:
            out.append(values[id(lt)][1] if id(lt) in values else lt._dj_value)
        self.retire()
        return out

    def fail(self, err):
        """Every pending LazyTensor of the tape carries err from now on."""
        for r in list(self.lazies.values()):
            lt = r()
            if lt is not None and lt._dj_state is None and lt._dj_value is None:
                lt._dj_error = err
        self.retire()

    def retire(self):
        if self.done:
            return
        self.done = True
        for r in list(self.lazies.values()):
            lt = r()
            if lt is not None and lt._dj_tape is self:
                lt._dj_tape = None
                lt._dj_node = None
        self.lazies.clear()
        if self.s.tape is self:
            self.s.tape = None
        lib.dj_graph_destroy(self.g)
        self.g = None
        self.keep = []


def _attrs(attrs):
    import json
    return json.dumps(attrs, separators=(",", ":")).encode() if attrs else None


def _desc_text(t):
    return f"{tuple(t.shape)} {t.dtype}"


# ---- names of parameters ---------------------------------------------------------

_names = {}          # id(tensor) -> (weakref, name)
_names_taken = {}    # name -> weakref
_name_lock = threading.Lock()
_auto = [0]


def _set_name(t, name):
    with _name_lock:
        old = _names_taken.get(name)
        if old is not None and old() is not None and old() is not t:
            k = 2
            while _names_taken.get(f"{name}#{k}") is not None and \
                    _names_taken[f"{name}#{k}"]() is not None:
                k += 1
            name = f"{name}#{k}"
        _names[id(t)] = (weakref.ref(t), name)
        _names_taken[name] = weakref.ref(t)
        weakref.finalize(t, _names.pop, id(t), None)
    return name


def param_name(t):
    e = _names.get(id(t))
    if e is not None and e[0]() is t:
        return e[1]
    _auto[0] += 1
    return _set_name(t, f"param{_auto[0]}")


def _is_param(t):
    if isinstance(t, torch.nn.Parameter):
        return True
    e = _names.get(id(t))
    return e is not None and e[0]() is t


# ---- LazyTensor --------------------------------------------------------------------


class LazyTensor(torch.Tensor):
    """A tensor whose value is on (or will come from) a Djinn server."""

    @staticmethod
    def __new__(cls, *args, **kwargs):
        raise TypeError("make LazyTensors with djinn.lazy()")

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _META:
            with torch._C.DisableTorchFunction():
                return func(*args, **kwargs)
        return _dispatch(func, args, kwargs, None)

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        # Only what __torch_function__ let through gets here: run it locally.
        return _local(func, args, kwargs or {})


def _make(session, shape, dtype, tape=None, node=None, value=None, state=None):
    lt = T._make_wrapper_subclass(LazyTensor, shape, dtype=dtype, device="cpu",
                                  requires_grad=False)
    lt._dj_session = session
    lt._dj_tape = tape
    lt._dj_node = node
    lt._dj_value = value
    lt._dj_state = state
    lt._dj_error = None
    lt._dj_base = None
    lt._dj_views = None
    if tape is not None:
        tape.register(lt)
    return lt


def _lazy_from_value(session, value):
    """A materialized LazyTensor (a local result that stays capturable)."""
    return _make(session, tuple(value.shape), value.dtype, value=value)


def lazy(x, remote=None, state=None):
    """Make x lazy: a tensor or array becomes a LazyTensor (an input, uploaded
    when a graph needs it); an nn.Module gets its parameters named and its
    buffers turned into state in place (lazy(module, state=...) below) and is
    returned."""
    if isinstance(x, torch.nn.Module):
        return lazy_module(x, remote=remote, state=state)
    session = session_for(remote)
    if isinstance(x, LazyTensor):
        return x
    if not isinstance(x, torch.Tensor):
        import numpy as np
        x = torch.from_numpy(np.ascontiguousarray(x))
    if _tensors.torch_code(x.dtype) is None:
        raise _tensors._refuse("djinn.lazy", x.dtype)
    return _lazy_from_value(session, x.detach())


def lazy_module(module, remote=None, state=None):
    """Name module's parameters (graph parameters, cached by the server) and
    make its buffers graph state (resident, written in place there): all of
    them, or those whose qualified names are in state (or for which
    state(name, buffer) is true); the others are named parameters too."""
    session = session_for(remote)
    for name, p in module.named_parameters():
        _set_name(p, name)
    for mod_name, mod in module.named_modules():
        for bname, buf in list(mod._buffers.items()):
            if buf is None or isinstance(buf, LazyTensor):
                continue
            qual = f"{mod_name}.{bname}" if mod_name else bname
            chosen = state is None or (state(qual, buf) if callable(state) else qual in state)
            if not chosen:
                _set_name(buf, qual)
                continue
            mod._buffers[bname] = make_state(buf, qual, session)
    return module


def make_state(tensor, name, remote=None):
    """A LazyTensor that is graph state named name, initially tensor's bytes."""
    session = session_for(remote)
    st = _State(session, _unique_state_name(session, name), tensor.detach())
    lt = _make(session, st.shape, tensor.dtype, state=st)
    weakref.finalize(lt, _drop_state, weakref.ref(session), st)
    return lt


_state_uid = [0]


def _unique_state_name(session, name):
    _state_uid[0] += 1
    return f"{name}@{_state_uid[0]}"


def _drop_state(sref, st):
    s = sref()
    if s is not None and st.created and s.ctx is not None:
        s._drops.append(st.bname)


def unlazy(module):
    """The reverse of lazy(module): state buffers come back as plain tensors
    holding their current values (one GET each) and are freed on the server."""
    for _, mod in module.named_modules():
        for bname, buf in list(mod._buffers.items()):
            if isinstance(buf, LazyTensor) and buf._dj_state is not None:
                value = _materialize(buf)
                st = buf._dj_state
                mod._buffers[bname] = value
                if st.created and st.session.ctx is not None:
                    lib.dj_graph_ctx_state_drop(st.session.ctx, st.bname)
                    st.created = False
    return module


def describe(x):
    """The annotated graph (dj_graph_describe) that x's value is pending in:
    residency of each node (persistent_weight, stateful_kv_cache...),
    patterns and phase. Runs nothing."""
    if not isinstance(x, LazyTensor) or x._dj_tape is None:
        raise DjinnError(-errno.EINVAL, "describe: not a pending LazyTensor")
    with x._dj_session.lock:
        return x._dj_tape.describe()


def sync(remote=None):
    """Run the pending state writes of a session (remote() does it at exit)."""
    session_for(remote).flush()


def last_run(remote=None):
    """Counters of the session's last fetch (round_trips, ops, bytes...)."""
    return session_for(remote).last


# ---- materialization ------------------------------------------------------------------


def _materialize(lt):
    """The value of a LazyTensor as a plain torch tensor (state: a copy)."""
    if lt._dj_error is not None:
        raise lt._dj_error
    if lt._dj_state is None and lt._dj_value is not None:
        return lt._dj_value
    s = lt._dj_session
    with s.lock:
        if lt._dj_state is None and lt._dj_value is not None:
            return lt._dj_value
        tape = lt._dj_tape if lt._dj_tape is not None else s.current_tape()
        return tape.run([lt])[0]


def _flatten(obj, out):
    if isinstance(obj, (list, tuple)):
        for o in obj:
            _flatten(o, out)
    elif isinstance(obj, dict):
        for o in obj.values():
            _flatten(o, out)
    else:
        out.append(obj)
    return out


def _replace(obj, fn):
    if isinstance(obj, list):
        return [_replace(o, fn) for o in obj]
    if isinstance(obj, tuple) and not hasattr(obj, "_fields"):
        return tuple(_replace(o, fn) for o in obj)
    if isinstance(obj, dict):
        return {k: _replace(v, fn) for k, v in obj.items()}
    return fn(obj)


def _real(x):
    return _materialize(x) if isinstance(x, LazyTensor) else x


def _local(func, args, kwargs):
    """func on the values of its LazyTensor arguments (one fetch per tape)."""
    for lt in _flatten((args, kwargs), []):
        if isinstance(lt, LazyTensor) and lt._dj_error is not None:
            raise lt._dj_error
    rargs = _replace(args, _real)
    rkwargs = _replace(kwargs, _real)
    with torch._C.DisableTorchFunction():
        return func(*rargs, **rkwargs)


def _func_name(func):
    self = getattr(func, "__self__", None)
    if getattr(func, "__name__", "") == "__get__" and self is not None:
        return f"Tensor.{getattr(self, '__name__', '?')}"
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", repr(func))
    name = name.replace("_TensorBase.", "Tensor.").replace("_VariableFunctionsClass.",
                                                           "torch.")
    mod = getattr(func, "__module__", None) or ""
    if mod.startswith("torch.nn.functional"):
        return f"F.{name}"
    if "." not in name and mod.startswith("torch"):
        return f"torch.{name}"
    return name


def _is_inplace(func, kwargs):
    return func in _INPLACE_ALL or (func in _INPLACE_KW and kwargs.get("inplace"))


def _fallback(func, args, kwargs, reason=None):
    """func run locally on the values of its LazyTensors, once-per-name warned;
    tensor results become (materialized) LazyTensors so capture goes on."""
    lazies = [x for x in _flatten((args, kwargs), []) if isinstance(x, LazyTensor)]
    if not lazies:
        return func(*args, **kwargs)
    name = _func_name(func)
    inplace = _is_inplace(func, kwargs) and isinstance(args[0], LazyTensor)
    if inplace:
        target = args[0]
        if target._dj_state is not None:
            raise NotSupportedError(-errno.ENOTSUP, f"{name} into state "
                                    f"'{target._dj_state.name}': {reason or 'not supported'}"
                                    " (state takes writes of one slice along one dim)")
        _inplace_guard(target, name)
    if name not in _warned:
        _warned.add(name)
        warnings.warn(f"djinn: {name} runs locally on materialized inputs"
                      + (f" ({reason})" if reason else " (no remote equivalent)"),
                      DjinnFallbackWarning, stacklevel=4)
    result = _local(func, args, kwargs)
    if inplace:
        # The target's value (a local tensor now) was written in place.
        return None if func is T.__setitem__ else args[0]
    session = lazies[0]._dj_session
    return _replace(result, lambda r: _lazy_from_value(session, r)
                    if type(r) is torch.Tensor and _tensors.torch_code(r.dtype) is not None
                    else r)


# ---- recording ------------------------------------------------------------------------


class _Recorder:
    """The recorder of djinn.ops' builders over a tape: values are node ids."""
    reuses_values = True

    def __init__(self, tape):
        self.tape = tape
        self.inputs = {}  # node -> the LazyTensor it came from

    def tensor(self, x):
        tape = self.tape
        if isinstance(x, _Node):
            return x
        if isinstance(x, LazyTensor):
            if x._dj_error is not None:
                raise x._dj_error
            if x._dj_session is not tape.s:
                node = tape.input(_materialize(x))
            elif x._dj_tape is tape:
                node = x._dj_node
            elif x._dj_state is not None:
                node = tape.state(x._dj_state)
                x._dj_tape, x._dj_node = tape, node
                tape.register(x)
            elif x._dj_value is not None:
                node = tape.input(x._dj_value)
            else:
                raise DjinnError(-errno.EINVAL, "internal: a LazyTensor without a value")
            node = _Node(node)
            self.inputs.setdefault(node, x)
            return node
        if isinstance(x, torch.Tensor):
            if _tensors.torch_code(x.dtype) is None:
                raise Unsupported(f"dtype {x.dtype}")
            if x.device.type != "cpu":
                raise Unsupported(f"a tensor on {x.device}")
            return _Node(tape.param(x) if _is_param(x) else tape.input(x))
        if hasattr(x, "__array__") and not isinstance(x, (int, float, bool)):
            import numpy as np
            arr = np.asarray(x)
            if arr.dtype == np.float64:
                raise Unsupported("a float64 array")
            t = torch.from_numpy(np.ascontiguousarray(arr))
            node = tape.input(t)
            tape.keep.append(t)
            return _Node(node)
        raise Unsupported(f"a {type(x).__name__} where a tensor goes")

    def scalar(self, v, like):
        return _Node(self.tape.scalar(v, self.tape.desc(like)[2]))

    def op(self, name, vals, attrs=None):
        return self.tape.op(name, list(vals), attrs)

    def shape(self, v):
        return self.tape.desc(v)[0]

    def dtype(self, v):
        return self.tape.desc(v)[1]

    def wrap(self, out, session):
        if isinstance(out, (tuple, list)):
            return type(out)(self.wrap(o, session) for o in out)
        if out is None:
            return None
        same = self.inputs.get(out)
        if same is not None and same._dj_tape is self.tape and same._dj_node == out:
            return same
        shape, _, code = self.tape.desc(out)
        return _make(session, shape, _tensors.torch_dtype(code), tape=self.tape, node=out)


def _scan(args, kwargs):
    """(the LazyTensors among the arguments, whether any tensor is), looking
    one level into lists and tuples (torch.cat's) and keyword values."""
    lazies, tensors = [], False
    for group in (args, kwargs.values()):
        for a in group:
            if isinstance(a, (list, tuple)):
                for b in a:
                    if isinstance(b, torch.Tensor):
                        tensors = True
                        if isinstance(b, LazyTensor):
                            lazies.append(b)
            elif isinstance(a, torch.Tensor):
                tensors = True
                if isinstance(a, LazyTensor):
                    lazies.append(a)
    return lazies, tensors


def _dispatch(func, args, kwargs, mode_session):
    if func in _MATERIALIZE:
        return _local(func, args, kwargs)
    lazies, tensors = _scan(args, kwargs)
    if func in _LIKE:
        return _like(func, args, kwargs)
    if func in _SAME and args and isinstance(args[0], LazyTensor) and _same(args, kwargs):
        return args[0]
    build = _HANDLERS.get(func)
    session = lazies[0]._dj_session if lazies else mode_session
    if build is None or session is None or not tensors:
        if not lazies:
            return func(*args, **kwargs)
        return _fallback(func, args, kwargs)
    with session.lock:
        tape = session.current_tape()
        rec = _Recorder(tape)
        try:
            if _is_inplace(func, kwargs):
                return _inplace(rec, func, build, args, kwargs)
            out = build(rec, *args, **kwargs)
        except Unsupported as e:
            return _fallback(func, args, kwargs, str(e))
        except _RecordError as e:
            return _fallback(func, args, kwargs, f"Djinn refused it: {e.error}")
        except TypeError as e:
            return _fallback(func, args, kwargs, f"arguments: {e}")
        result = rec.wrap(out, session)
    if func in _VIEWS and lazies:
        _note_views(lazies[0], result)
    return result


def _note_views(base, result):
    root = base._dj_base if base._dj_base is not None else base
    for r in (result if isinstance(result, (tuple, list)) else (result,)):
        if isinstance(r, LazyTensor) and r is not base:
            r._dj_base = root
            if root._dj_views is None:
                root._dj_views = []
            root._dj_views.append(weakref.ref(r))


def _poison_views(base, what):
    views, base._dj_views = base._dj_views or [], None
    for ref in views:
        v = ref()
        if v is not None:
            v._dj_error = NotSupportedError(
                -errno.ENOTSUP, f"a view of a lazy tensor read after {what} wrote its base "
                "in place (torch would show the write through the view; take the view "
                "again after the write)")


def _inplace_guard(target, name):
    """An in-place write into target keeps torch's meaning, or raises: not
    through a view (its base would not see it); views of target taken before
    would not see it either, so they refuse to be read from now on."""
    if target._dj_base is not None:
        raise NotSupportedError(-errno.ENOTSUP, f"{name}: an in-place write through a view "
                                "of a lazy tensor (its base would not see it); write into "
                                "the base, or clone() the view first")
    _poison_views(target, name)


def _inplace(rec, func, build, args, kwargs):
    """An in-place function recorded: the target LazyTensor stands for the
    result from now on (state: a slice_write, the KV-cache append)."""
    target = args[0]
    if not isinstance(target, LazyTensor):
        raise Unsupported("in-place on a local tensor")
    name = _func_name(func)
    if target._dj_state is not None and func is not T.__setitem__:
        raise Unsupported("state takes slice writes only")
    if func is T.__setitem__:
        node = _setitem(rec, target, args[1], args[2])
    else:
        kw = dict(kwargs)
        kw.pop("inplace", None)
        node = build(rec, *args, **kw)
    _inplace_guard(target, name)  # after the build: a refusal above falls back intact
    tape = rec.tape
    if target._dj_tape is not tape:
        tape.register(target)
    target._dj_tape, target._dj_node = tape, node
    if target._dj_state is None:
        target._dj_value = None
    else:
        tape.writes = True
    return None if func is T.__setitem__ else target


def _setitem(rec, dst, index, value):
    shape = tuple(dst.shape)
    steps, _ = _parse_index(index, shape)
    partial = [(d, s, n, sq) for d, s, n, sq in steps if not (s == 0 and n == shape[d] and
                                                                not sq)]
    if len(partial) > 1:
        raise Unsupported("a write into more than one partial dim")
    if not isinstance(value, torch.Tensor):
        raise Unsupported("writing a number (fill) into a slice")
    vnode = rec.tensor(value)
    dnode = rec.tensor(dst)
    if rec.dtype(vnode) != rec.dtype(dnode):
        raise Unsupported(f"writing {rec.dtype(vnode)} into {rec.dtype(dnode)}")
    dim, start, length = (partial[0][:3] if partial else (0, 0, shape[0] if shape else 1))
    want = list(shape)
    if shape:
        want[dim] = length
    got = list(rec.shape(vnode))
    squeezed = [i for i, (d, s, n, sq) in enumerate(steps) if sq]
    if got != want:
        if squeezed and got == [w for i, w in enumerate(want) if i != dim]:
            vnode = ops.reshape(rec, vnode, want)
        else:
            raise Unsupported(f"value {got} does not match the slice {want} (broadcast)")
    if not shape:
        raise Unsupported("a write into a 0-d tensor")
    return rec.op("slice_write", [dnode, vnode], {"dim": dim, "start": start})


def _parse_index(index, shape):
    """x[index] as narrows: ([(dim, start, length, squeezed)], final shape)."""
    idx = index if isinstance(index, tuple) else (index,)
    n_real = sum(1 for i in idx if i is not None and i is not Ellipsis)
    if sum(1 for i in idx if i is Ellipsis) > 1:
        raise Unsupported("two ellipses")
    if n_real > len(shape):
        raise Unsupported("too many indices")
    steps, final, d = [], [], 0
    for i in idx:
        if i is Ellipsis:
            for _ in range(len(shape) - n_real):
                steps.append((d, 0, shape[d], False))
                final.append(shape[d])
                d += 1
        elif i is None:
            final.append(1)
        elif isinstance(i, slice):
            if i.step not in (None, 1):
                raise Unsupported(f"a slice with step {i.step}")
            if not all(v is None or (isinstance(v, int) and not isinstance(v, bool))
                       for v in (i.start, i.stop)):
                raise Unsupported("a slice with tensor bounds")
            s, e, _ = i.indices(shape[d])
            n = max(e - s, 0)
            steps.append((d, s, n, False))
            final.append(n)
            d += 1
        elif isinstance(i, int) and not isinstance(i, bool):
            if not -shape[d] <= i < shape[d]:
                raise Unsupported(f"index {i} out of range for size {shape[d]}")
            steps.append((d, i % shape[d], 1, True))
            d += 1
        else:
            raise Unsupported(f"an index of {type(i).__name__} (advanced indexing)")
    while d < len(shape):
        steps.append((d, 0, shape[d], False))
        final.append(shape[d])
        d += 1
    return steps, final


def _getitem(rec, x, index):
    v = rec.tensor(x)
    shape = rec.shape(v)
    steps, final = _parse_index(index, shape)
    for d, s, n, _ in steps:
        if not (s == 0 and n == shape[d]):
            v = rec.op("narrow", [v], {"dim": d, "start": s, "length": n})
    return ops.reshape(rec, v, final)


def _like(func, args, kwargs):
    """zeros_like(lazy) and friends need the shape, not the values."""
    def meta(x):
        if isinstance(x, LazyTensor):
            return torch.empty(tuple(x.shape), dtype=x.dtype)
        return x
    with torch._C.DisableTorchFunction():
        return func(*_replace(args, meta), **_replace(kwargs, meta))


def _same(args, kwargs):
    """.to() / .float() / .type_as() / .contiguous() that change nothing."""
    x = args[0]
    rest = list(args[1:]) + list(kwargs.values())
    for r in rest:
        if isinstance(r, torch.dtype):
            if r != x.dtype:
                return False
        elif isinstance(r, torch.Tensor):
            if r.dtype != x.dtype:
                return False
        elif isinstance(r, (str, torch.device)):
            if torch.device(r).type != "cpu":
                return False
        elif isinstance(r, torch.memory_format):
            if r not in (torch.contiguous_format, torch.preserve_format):
                return False
        elif r not in (None, False):
            return False
    return True


# ---- the tables ------------------------------------------------------------------------

def _tables():
    meta = {T.shape.__get__, T.dtype.__get__, T.device.__get__, T.ndim.__get__, T.size,
            T.dim, T.numel, T.nelement, T.element_size, T.is_floating_point, T.is_complex,
            T.is_contiguous, T.stride, T.requires_grad.__get__, T.is_cuda.__get__,
            T.layout.__get__, T.__len__, T.get_device, T.is_leaf.__get__, T.grad.__get__,
            T.is_sparse.__get__, T.is_quantized.__get__, T.is_meta.__get__,
            T.storage_offset, T.names.__get__, T.grad_fn.__get__, T.__hash__}
    for prop in ("is_mps", "is_xpu", "is_nested", "is_sparse_csr", "is_mkldnn", "is_vulkan",
                 "is_ort", "is_ipu", "is_hpu", "is_inference", "output_nr", "_version"):
        attr = getattr(T, prop, None)
        if attr is not None:
            meta.add(attr.__get__ if hasattr(attr, "__get__") and not callable(attr) else attr)
    materialize = {T.cpu, T.numpy, T.item, T.tolist, T.__repr__, T.__str__, T.__format__,
                   T.__bool__, T.__float__, T.__int__, T.__index__, T.__array__,
                   T.__contains__, T.__complex__, T.eq, T.ne, T.lt, T.le, T.gt, T.ge,
                   T.__eq__, T.__ne__, T.__lt__, T.__le__, T.__gt__, T.__ge__, torch.eq,
                   torch.ne, torch.lt, torch.le, torch.gt, torch.ge, torch.allclose,
                   torch.equal, torch.isclose, T.allclose, T.equal, T.isclose, T.data_ptr}
    like = {torch.zeros_like, torch.ones_like, torch.empty_like, torch.full_like,
            torch.rand_like, torch.randn_like, T.new_zeros, T.new_ones, T.new_empty,
            T.new_full}
    same = {T.to, T.float, T.half, T.bfloat16, T.int, T.long, T.type_as, T.contiguous,
            T.detach, torch.detach, T.requires_grad_}
    h = {}

    def reg(fns, build):
        for f in fns:
            if f is not None:
                h[f] = build

    mm = ops.ATEN_OPS["aten::matmul"]
    reg([torch.matmul, T.matmul, T.__matmul__, torch.mm, T.mm, torch.bmm, T.bmm], mm)
    reg([T.__rmatmul__], lambda rec, a, b: mm(rec, b, a))
    for name, extra in (("add", [T.__radd__, T.__iadd__, T.add_]),
                        ("sub", [T.__isub__, T.sub_]),
                        ("mul", [T.__rmul__, T.__imul__, T.mul_]),
                        ("div", [torch.true_divide, T.__itruediv__, T.div_])):
        reg([getattr(torch, name), getattr(T, name), getattr(T, f"__{name}__", None)
             if name != "div" else T.__truediv__] + extra, ops.binary(name))
    reg([T.__rsub__, torch.rsub], ops.rsub)
    reg([T.__rtruediv__], lambda rec, a, b: ops.binary("div")(rec, b, a))
    reg([torch.neg, T.neg, T.__neg__, T.neg_], lambda rec, x: ops.neg(rec, x))
    for name in ("relu", "sigmoid", "tanh", "exp", "log", "sqrt"):
        floats = name != "relu"
        reg([getattr(torch, name), getattr(T, name), getattr(T, name + "_"),
             getattr(torch, name + "_", None)], ops.unary(name, floats_only=floats))
    reg([F.relu, F.relu_], ops.unary("relu"))
    reg([F.sigmoid], ops.unary("sigmoid", floats_only=True))
    reg([F.tanh], ops.unary("tanh", floats_only=True))
    reg([torch.rsqrt, T.rsqrt], ops.rsqrt)
    reg([torch.pow, T.pow, T.__pow__], ops.pow_)
    reg([F.gelu], ops.gelu)
    reg([F.silu], ops.unary("silu"))
    reg([torch.softmax, T.softmax, F.softmax], ops.softmax)
    reg([torch.sum, T.sum], ops._reduction("sum"))
    reg([torch.mean, T.mean], ops._reduction("mean"))
    reg([F.linear], ops.linear)
    reg([F.layer_norm], ops.layer_norm)
    reg([getattr(F, "rms_norm", None)], ops.rms_norm)
    reg([torch.transpose, T.transpose, torch.swapaxes, T.swapaxes], ops.transpose)
    reg([torch.t, T.t, T.T.__get__], ops.t)
    reg([T.mT.__get__], lambda rec, x: ops.transpose(rec, x, -2, -1))
    reg([torch.permute], ops.permute)
    reg([T.permute], lambda rec, x, *dims: ops.permute(rec, x, ops._variadic_shape(dims)))
    reg([torch.reshape], ops.reshape)
    reg([T.reshape, T.view], lambda rec, x, *shape: ops.reshape(
        rec, x, _view_shape(rec, x, ops._variadic_shape(shape))))
    reg([T.view_as, T.reshape_as], lambda rec, x, other: ops.reshape(rec, x, other.shape))
    reg([torch.flatten, T.flatten], ops.flatten)
    reg([torch.unsqueeze, T.unsqueeze], ops.unsqueeze)
    reg([torch.squeeze, T.squeeze], ops.squeeze)
    reg([T.clone, torch.clone], lambda rec, x, memory_format=None: ops.identity(rec, x))
    reg([torch.cat, torch.concat], ops.cat)
    reg([torch.stack], ops.stack)
    reg([F.embedding], ops.embedding_torch)
    reg([torch.narrow, T.narrow], ops.narrow)
    reg([torch.select, T.select], ops.select)
    reg([T.__getitem__], _getitem)
    reg([T.__setitem__], lambda rec, dst, index, value: None)
    reg([getattr(F, "scaled_dot_product_attention", None)], ops.sdpa)
    reg([torch.argmax, T.argmax], ops.argmax)
    reg([torch.split, T.split], ops.split)
    reg([torch.chunk, T.chunk], ops.chunk)
    reg([torch.unbind, T.unbind], ops.unbind)
    reg([F.dropout], lambda rec, x, p=0.5, training=True, inplace=False: ops.dropout(
        rec, x, p, training))
    views = {T.view, T.view_as, T.reshape, torch.reshape, T.reshape_as, T.transpose,
             torch.transpose, T.t, torch.t, T.T.__get__, T.mT.__get__, T.permute,
             torch.permute, T.narrow, torch.narrow, T.__getitem__, T.select, torch.select,
             T.squeeze, torch.squeeze, T.unsqueeze, torch.unsqueeze, T.flatten,
             torch.flatten, T.split, torch.split, T.chunk, torch.chunk, torch.swapaxes,
             T.unbind, torch.unbind,
             T.swapaxes, F.dropout}
    inplace = {T.__iadd__, T.add_, T.__isub__, T.sub_, T.__imul__, T.mul_, T.__itruediv__,
               T.div_, T.neg_, T.relu_, torch.relu_, F.relu_, T.sigmoid_, T.tanh_, T.exp_,
               T.log_, T.sqrt_, T.__setitem__}
    inplace_kw = {F.relu, F.silu, F.dropout}
    return meta, materialize, like, same, h, views, inplace, inplace_kw


def _view_shape(rec, x, shape):
    if len(shape) == 1 and isinstance(shape[0], torch.dtype):
        raise Unsupported("view as another dtype")
    return [int(s) for s in shape]


_META, _MATERIALIZE, _LIKE, _SAME, _HANDLERS, _VIEWS, _INPLACE_ALL, _INPLACE_KW = _tables()

import atexit as _atexit  # noqa: E402
_atexit.register(close_sessions)
