# SPDX-License-Identifier: BSD-3-Clause
"""The recorder of the aten:: builders (djinn.ops) over a Batch.

Values are batch Refs and RemoteTensors; arrays and numbers become puts
inside the batch, so a whole aten:: call is one request.
"""
import numpy as np

from . import _tensors
from .batch import Ref
from .client import RemoteTensor
from .ops import Unsupported, aten_builder
from .errors import NotSupportedError, UnknownOperationError, DJ_EUNKNOWN_OP
import errno

_NP = {"float32": np.float32, "float16": np.float16, "int32": np.int32, "int64": np.int64}


class BatchRecorder:
    reuses_values = False

    def __init__(self, batch):
        self.b = batch

    def tensor(self, x):
        if isinstance(x, (Ref, RemoteTensor)):
            return x
        if isinstance(x, (int, float, bool)):
            raise Unsupported(f"a {type(x).__name__} where a tensor goes")
        return self.b.put(x)

    def scalar(self, v, like):
        dt = self.dtype(like)
        if dt == "bfloat16":
            torch = _tensors._torch()
            return self.b.put(torch.tensor(v, dtype=torch.bfloat16))
        return self.b.put(np.array(v, dtype=_NP[dt]))

    def op(self, name, vals, attrs=None):
        return self.b.op(name, *vals, attrs=attrs)

    @staticmethod
    def shape(v):
        return tuple(v.shape)

    @staticmethod
    def dtype(v):
        return v.dtype


def record_aten(batch, name, args, kwargs):
    """Record aten:: call name(*args, **kwargs) into batch: the result's Ref."""
    build = aten_builder(name)
    if build is None:
        raise UnknownOperationError(-DJ_EUNKNOWN_OP, f"{name}: no such operation here "
                                    "(djinn.ATEN_OPS lists the aten:: names, "
                                    "djinn.OPERATIONS the server's)")
    try:
        out = build(BatchRecorder(batch), *args, **kwargs)
    except Unsupported as e:
        raise NotSupportedError(-errno.ENOTSUP, f"{name}: {e}") from None
    except TypeError as e:
        raise NotSupportedError(-errno.ENOTSUP, f"{name}: arguments not understood: {e}") \
            from None
    if not isinstance(out, Ref):
        raise NotSupportedError(-errno.ENOTSUP, f"{name}: gives {type(out).__name__}, not "
                                "one tensor")
    return out
