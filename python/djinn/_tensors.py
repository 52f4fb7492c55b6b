# SPDX-License-Identifier: BSD-3-Clause
"""numpy arrays and torch tensors as struct dj_tensor, without copies.

A host array is handed to C as a pointer to its own buffer: numpy through
`arr.ctypes.data`, a CPU torch tensor through `data_ptr()`. The only copies
are those the layout forces, made once: a non-contiguous array or tensor is
made contiguous, a non-native byte order swapped, a tensor on another device
brought to the CPU. Results are allocated once, as the kind of array that
came in (numpy in, numpy out; torch in, torch out), and C writes into them.

torch is imported only where a torch tensor is seen (it takes a second).
"""
import sys

import numpy as np

from . import _lib
from .errors import DTypeError, DJ_EDTYPE

_NP_CODES = {np.dtype(np.float32): 0, np.dtype(np.float16): 1, np.dtype(np.int32): 3,
             np.dtype(np.int64): 4}
_NP_BY_CODE = {0: np.float32, 1: np.float16, 2: np.uint16, 3: np.int32, 4: np.int64}
_TORCH_CODES = None
_TORCH_BY_CODE = None


def _torch():
    global _TORCH_CODES, _TORCH_BY_CODE
    import torch
    if _TORCH_CODES is None:
        _TORCH_CODES = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2,
                        torch.int32: 3, torch.int64: 4}
        _TORCH_BY_CODE = {v: k for k, v in _TORCH_CODES.items()}
    return torch


def is_torch(x):
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def torch_code(dtype):
    """The dj_dtype of a torch dtype, or None."""
    _torch()
    return _TORCH_CODES.get(dtype)


def torch_dtype(code):
    _torch()
    return _TORCH_BY_CODE[code]


def _refuse(what, dtype):
    return DTypeError(-DJ_EDTYPE, f"{what}: {dtype} is not a Djinn dtype (float32, float16, "
                      "bfloat16, int32, int64); convert it first, e.g. .astype(np.float32) "
                      "or .float()")


class Host:
    """A host array handed to C: .obj keeps the buffer alive, .ct is its dj_tensor."""
    __slots__ = ("obj", "ct", "kind")

    def __init__(self, obj, code, shape, ptr, kind):
        self.obj = obj
        self.kind = kind
        ct = _lib.Tensor()
        d = ct.desc
        d.dtype = code
        d.ndim = len(shape)
        for i, s in enumerate(shape):
            d.shape[i] = s
        ct.data = ptr
        ct.mem = _lib.DJ_MEM_HOST
        self.ct = ct

    @property
    def shape(self):
        return _lib.desc_shape(self.ct.desc)

    @property
    def dtype(self):
        return _lib.DTYPE_NAMES[self.ct.desc.dtype]


def _torch_host(t, what):
    torch = _torch()
    code = _TORCH_CODES.get(t.dtype)
    if code is None:
        raise _refuse(what, t.dtype)
    if t.requires_grad:
        t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    if not t.is_contiguous():
        t = t.contiguous()
    if type(t) is not torch.Tensor and not isinstance(t, torch.nn.Parameter):
        # A subclass (a LazyTensor) never gets here: its caller materializes it.
        t = t.as_subclass(torch.Tensor)
    return Host(t, code, tuple(t.shape), t.data_ptr() or None, "torch")


def _numpy_host(a, what):
    native = a.dtype.newbyteorder("=")
    code = _NP_CODES.get(native)
    if code is None:
        raise _refuse(what, a.dtype)
    if a.dtype != native:
        a = a.astype(native)
    if not a.flags.c_contiguous:
        a = np.ascontiguousarray(a)
    return Host(a, code, a.shape, a.ctypes.data or None, "numpy")


def as_host(x, what="input"):
    """A Host for a numpy array, a CPU torch tensor, or an array-like."""
    if isinstance(x, np.ndarray):
        return _numpy_host(x, what)
    if is_torch(x):
        return _torch_host(x, what)
    if isinstance(x, (bool, int, float)) or x is None:
        raise TypeError(f"{what}: a Python {type(x).__name__} is not a tensor; wrap it "
                        "(np.array(v, dtype=np.float32)) or pass it as an attribute")
    a = np.asarray(x)
    if a.dtype == np.float64:
        raise _refuse(what, a.dtype)
    return _numpy_host(a, what)


def alloc(kind, code, shape):
    """A new host array of dtype code and shape, as kind ("numpy"/"torch"): (obj, Host)."""
    if kind == "torch":
        torch = _torch()
        t = torch.empty(tuple(shape), dtype=_TORCH_BY_CODE[code])
        return t, Host(t, code, tuple(shape), t.data_ptr() or None, "torch")
    a = np.empty(tuple(shape), dtype=_NP_BY_CODE[code])
    return a, Host(a, code, tuple(shape), a.ctypes.data or None, "numpy")


def kind_of(x):
    return "torch" if is_torch(x) else "numpy"
