# SPDX-License-Identifier: BSD-3-Clause
"""Batches: uploads, operations, fetches and frees in one request.

    b = conn.batch()
    x = b.put(x_array)                       # carried inside the request
    h = b.op("linear", x, w_remote, b_remote)
    y = b.op("gelu", h, fetch=True)          # its bytes come back with the reply
    out = b.run()                            # one round trip
    out[y]                                   # the fetched array

Each entry's result description is inferred before anything is sent, by the
library's own shape inference (a dj_graph without a server: the same operation
table the server checks with), so a shape error is raised at once and the
fetched outputs land in one buffer allocated once at their exact size.

What a batch makes is freed on the server right after its last reader (or
its fetch) unless kept (keep=True / b.keep(ref): the result then holds a
RemoteTensor). An in-place operation (slice_write) returns its destination:
never freed by the batch, and kept with it.
"""
import ctypes
import errno
import re

import numpy as np

from . import _async, _lib, _tensors
from ._lib import lib
from .client import RemoteTensor, _attrs_json
from .errors import InvalidArgumentError, make_error

_NODE_PREFIX = re.compile(r"^node \d+: ")
_INPLACE = {"slice_write"}
# Buffers a request might still write after it was given up for good.
_stranded = []


class Ref:
    """An entry of a batch: its index and inferred description."""
    __slots__ = ("batch", "index", "node", "shape", "dtype")

    def __init__(self, batch, index, node, desc):
        self.batch = batch
        self.index = index
        self.node = node
        self.shape = _lib.desc_shape(desc)
        self.dtype = _lib.DTYPE_NAMES[desc.dtype]

    def __repr__(self):
        return f"Ref(${self.index}, shape={list(self.shape)}, dtype={self.dtype})"


class _Entry:
    __slots__ = ("op", "inputs", "attrs", "put", "fetch", "keep", "root", "desc")

    def __init__(self, op, inputs, attrs, put, desc):
        self.op = op
        self.inputs = inputs      # Ref or RemoteTensor
        self.attrs = attrs
        self.put = put            # _tensors.Host or None
        self.fetch = False
        self.keep = False
        self.root = None          # in place: the entry index (or RemoteTensor) it writes
        self.desc = desc


def infer_error(graph, rc, what):
    """The exception for a failed dj_graph_* record call, its message without
    the graph's "node N: " prefix."""
    text = (lib.dj_graph_error(graph) or b"").decode(errors="replace")
    return make_error(rc, f"{what}: " + _NODE_PREFIX.sub("", text) if text else
                      f"{what}: {_lib.strerror(rc)}")


class Batch:
    """Entries run in order in one request (dj_execute_batch_async)."""

    def __init__(self, conn):
        self.conn = conn
        self.entries = []
        self._kind = None
        self._graph = ctypes.c_void_p()
        self._nodes = {}          # id(RemoteTensor) -> inference node
        rc = lib.dj_graph_create(None, ctypes.byref(self._graph))
        if rc != 0:
            raise make_error(rc, "batch: out of memory")

    def __del__(self):
        g, self._graph = getattr(self, "_graph", None), None
        if g:
            lib.dj_graph_destroy(g)

    def __len__(self):
        return len(self.entries)

    def _note_kind(self, kind):
        if self._kind is None:
            self._kind = kind

    def put(self, array):
        """Upload array inside the request: a Ref."""
        h = _tensors.as_host(array, f"batch put ${len(self.entries)}")
        self._note_kind(h.kind)
        node = lib.dj_graph_input(self._graph, None, ctypes.byref(h.ct))
        if node < 0:
            raise infer_error(self._graph, node, f"batch put ${len(self.entries)}")
        return self._add(_Entry(None, (), None, h, h.ct.desc), node)

    def _add(self, e, node):
        self.entries.append(e)
        return Ref(self, len(self.entries) - 1, node, e.desc)

    def _input_node(self, x):
        if isinstance(x, Ref):
            if x.batch is not self:
                raise InvalidArgumentError(-errno.EINVAL, f"{x!r} belongs to another batch")
            return x.node, x
        if isinstance(x, RemoteTensor):
            x.ref()  # refuses a freed one
            self._note_kind(x.kind)
            node = self._nodes.get(id(x))
            if node is None:
                t = _lib.Tensor()
                t.desc = x.desc()
                t.mem = _lib.DJ_MEM_HOST
                node = lib.dj_graph_input(self._graph, None, ctypes.byref(t))
                if node < 0:
                    raise infer_error(self._graph, node, "batch input")
                self._nodes[id(x)] = node
            return node, x
        ref = self.put(x)
        return ref.node, ref

    def op(self, name, *inputs, attrs=None, fetch=False, keep=False, **kw_attrs):
        """Operation name on inputs (Refs, RemoteTensors, or arrays: put first)."""
        if kw_attrs:
            attrs = dict(attrs or {}, **kw_attrs)
        idx = len(self.entries)
        if len(inputs) > _lib.DJ_MAX_OP_ARGS:
            raise InvalidArgumentError(-errno.EINVAL, f"batch op ${idx}: {name}: at most "
                                       f"{_lib.DJ_MAX_OP_ARGS} inputs")
        pairs = [self._input_node(x) for x in inputs]
        idx = len(self.entries)
        nodes = (ctypes.c_int * max(len(pairs), 1))(*[n for n, _ in pairs])
        aj = _attrs_json(attrs)
        node = lib.dj_graph_op(self._graph, name.encode(), nodes, len(pairs), aj)
        if node < 0:
            raise infer_error(self._graph, node, f"batch op ${idx}")
        d = _lib.TensorDesc()
        lib.dj_graph_node_desc(self._graph, node, ctypes.byref(d))
        e = _Entry(name, tuple(x for _, x in pairs), aj, None, d)
        if name in _INPLACE and pairs:
            dst = pairs[0][1]
            e.root = self._root(dst.index) if isinstance(dst, Ref) else dst
        ref = self._add(e, node)
        if fetch:
            self.fetch(ref)
        if keep:
            self.keep(ref)
        return ref

    def _root(self, index):
        r = self.entries[index].root
        return index if r is None else r

    def fetch(self, ref):
        """Bring ref's bytes back with the reply."""
        self.entries[ref.index].fetch = True
        return ref

    def keep(self, ref):
        """Leave ref's tensor on the server: the result gives a RemoteTensor."""
        self.entries[ref.index].keep = True
        return ref

    # ---- the request ------------------------------------------------------

    def _frees(self):
        """free[j]: the entries freed after entry j ran (and was fetched)."""
        n = len(self.entries)
        last = {}
        keep = set()
        for j, e in enumerate(self.entries):
            own = self._root(j)
            if isinstance(own, int):
                last[own] = j
                if e.keep:
                    keep.add(own)
            for x in e.inputs:
                if isinstance(x, Ref):
                    r = self._root(x.index)
                    if isinstance(r, int):
                        last[r] = j
        frees = [[] for _ in range(n)]
        for m, j in last.items():
            if m not in keep:
                frees[j].append(m)
        return frees

    def _build(self):
        n = len(self.entries)
        if n == 0:
            raise InvalidArgumentError(-errno.EINVAL, "batch: no entries")
        ops = (_lib.BatchOp * n)()
        keep = [ops]
        for j, (e, fr) in enumerate(zip(self.entries, self._frees())):
            o = ops[j]
            if e.put is not None:
                o.put = ctypes.pointer(e.put.ct)
                keep.append(e.put)
            else:
                o.op = e.op.encode()
                texts = [(f"${x.index}" if isinstance(x, Ref) else x.ref()).encode()
                         for x in e.inputs]
                for i, t in enumerate(texts):
                    o.inputs[i] = t
                o.n_in = len(texts)
                o.attrs_json = e.attrs
                keep.append(texts)
            o.fetch = 1 if e.fetch else 0
            if fr:
                arr = (ctypes.c_int * len(fr))(*fr)
                o.free = arr
                o.n_free = len(fr)
                keep.append(arr)
        return ops, keep

    def _fetch_buffer(self):
        """(buffer Host or None, [(index, array view)]) for the fetched entries."""
        kind = self._kind or "numpy"
        fetched = [j for j, e in enumerate(self.entries) if e.fetch]
        if not fetched:
            return None, []
        if len(fetched) == 1:
            e = self.entries[fetched[0]]
            obj, h = _tensors.alloc(kind, e.desc.dtype, _lib.desc_shape(e.desc))
            return h, [(fetched[0], obj)]
        sizes = [_lib.desc_nbytes(self.entries[j].desc) for j in fetched]
        total = sum(sizes)
        buf, h = _tensors.alloc(kind, 4, ((total + 7) // 8,))
        raw = buf.view(np.uint8) if kind == "numpy" else buf.view(_tensors._torch().uint8)
        views, off = [], 0
        for j, size in zip(fetched, sizes):
            views.append((j, self._view(raw, off, size, self.entries[j].desc, kind)))
            off += size
        return (h, total), views

    @staticmethod
    def _view(raw, off, size, desc, kind):
        shape = _lib.desc_shape(desc)
        isz = _lib.DTYPE_SIZES[desc.dtype]
        piece = raw[off:off + size]
        if kind == "numpy":
            return piece.view(_tensors._NP_BY_CODE[desc.dtype]).reshape(shape)
        if off % isz:
            # Misaligned for torch: the one copy left, into an array of its own.
            return _LateCopy(piece, desc)
        return piece.view(_tensors.torch_dtype(desc.dtype)).view(shape)

    def _prepare(self):
        """Everything the request needs, built before it is sent (a reply may
        come back before the sending call returns)."""
        ops, keep = self._build()
        fb, views = self._fetch_buffer()
        if fb is None:
            ptr, length = None, 0
        elif isinstance(fb, tuple):
            ptr, length = fb[0].ct.data, fb[1]
        else:
            ptr, length = fb.ct.data, _lib.desc_nbytes(fb.ct.desc)
        return ops, keep, fb, views, ptr, length

    def _send(self, held, cb, key, pf):
        ops, _, _, _, ptr, length = held
        return lib.dj_execute_batch_async(self.conn._ptr(), ops, len(self.entries), ptr,
                                          length, cb, key, pf)

    def _result(self, fptr, views):
        n = len(self.entries)
        handles = (ctypes.c_uint64 * n)()
        got = lib.dj_future_batch_handles(fptr, handles, n)
        if got != n:
            raise make_error(got if got < 0 else -errno.EBADMSG, "batch: reply without "
                             "every entry's handle")
        return BatchResult(self, list(handles), views)

    def run(self):
        """Send the batch and wait: a BatchResult."""
        conn = self.conn
        fptr = ctypes.c_void_p()
        held = self._prepare()
        rc = self._send(held, _lib.NO_CB, None, ctypes.byref(fptr))
        if rc != 0:
            raise make_error(rc, f"batch: {_lib.strerror(rc)}")
        f = fptr.value
        try:
            rc = lib.dj_future_wait(f, -1)
            if rc == -errno.ETIMEDOUT and not lib.dj_future_done(f):
                # As a blocking call does: give the connection up so that no
                # late reply writes into the fetch buffer once we return.
                lib.dj_future_abandon(f)
                if lib.dj_future_wait(f, 10000) == -errno.ETIMEDOUT:
                    _stranded.append(held)
                rc = -errno.ETIMEDOUT
                raise make_error(rc, f"batch: no reply in {conn.timeout:g} s; the "
                                 "connection was abandoned")
            if rc != 0:
                text = (lib.dj_future_error(f) or b"").decode(errors="replace")
                raise make_error(rc, text or f"batch: {_lib.strerror(rc)}")
            return self._result(f, held[3])
        finally:
            lib.dj_future_release(f)

    async def run_async(self):
        """The same from asyncio: the reply completes an awaitable."""
        held = self._prepare()
        return await _async.submit(lambda cb, key, pf: self._send(held, cb, key, pf),
                                   lambda f: self._result(f, held[3]), held,
                                   self.conn.timeout, "batch")


class _LateCopy:
    """A fetched output whose offset torch cannot view: copied once, on access."""
    __slots__ = ("piece", "desc")

    def __init__(self, piece, desc):
        self.piece = piece
        self.desc = desc

    def resolve(self):
        obj, h = _tensors.alloc("torch", self.desc.dtype, _lib.desc_shape(self.desc))
        ctypes.memmove(h.ct.data, self.piece.data_ptr(), _lib.desc_nbytes(self.desc))
        return obj


class BatchResult:
    """What a batch gave: result[ref] is the fetched array, or the RemoteTensor
    of a kept entry; .handles are every entry's first output handle."""

    def __init__(self, batch, handles, views):
        self.handles = handles
        self._fetched = {}
        for j, v in views:
            self._fetched[j] = v.resolve() if isinstance(v, _LateCopy) else v
        self._kept = {}
        kind = batch._kind or "numpy"
        for j, e in enumerate(batch.entries):
            if not e.keep:
                continue
            root = batch._root(j)
            if isinstance(root, RemoteTensor):
                self._kept[j] = root
            elif root in self._kept:
                self._kept[j] = self._kept[root]
            else:
                rt = RemoteTensor(batch.conn, handles[root], batch.entries[root].desc, kind)
                self._kept[j] = self._kept[root] = rt

    def __getitem__(self, ref):
        j = ref.index if isinstance(ref, Ref) else ref
        if j in self._fetched:
            return self._fetched[j]
        if j in self._kept:
            return self._kept[j]
        raise KeyError(f"batch entry ${j} was neither fetched nor kept")

    def remote(self, ref):
        """The RemoteTensor of a kept entry (also when it was fetched)."""
        return self._kept[ref.index if isinstance(ref, Ref) else ref]
