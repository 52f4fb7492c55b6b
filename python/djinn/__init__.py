# SPDX-License-Identifier: BSD-3-Clause
"""Djinn from Python: run tensor work on a remote Djinn server as if local.

Over libdjinn.so (ctypes; docs/PYTHON.md):

- djinn.connect(address) -> Connection: put / execute / get / compute,
  resident RemoteTensors, batches, stats, and *_async forms for asyncio;
- djinn.core.coordinator.DjinnCoordinator: the original system's asyncio API
  (execute_remote_operation('aten::matmul', [x, y], 'localhost:5556'));
- djinn.lazy(t) / djinn.lazy(module) and `with djinn.remote(address):`
  capture torch programs into lazy graphs that run remotely on demand;
- djinn.errors: DjinnError and one subclass per error code.
"""
from .batch import Batch, BatchResult, Ref
from .client import Connection, RemoteTensor, close_all, connect, parse_address
from .errors import (AuthError, DjinnConnectionError, DjinnError, DjinnTimeoutError,
                     DTypeError, HandleError, InvalidArgumentError, LimitError,
                     NotSupportedError, OutOfRangeError, ShapeError, UnknownOperationError)
from ._logging import set_log_level
from .ops import ATEN_OPS, OPERATIONS

__version__ = "0.1.0"
__all__ = ["Batch", "BatchResult", "Ref", "Connection", "RemoteTensor", "close_all", "connect",
           "parse_address", "AuthError", "DjinnConnectionError", "DjinnError",
           "DjinnTimeoutError", "DTypeError", "HandleError", "InvalidArgumentError",
           "LimitError", "NotSupportedError", "OutOfRangeError", "ShapeError",
           "UnknownOperationError", "set_log_level", "ATEN_OPS", "OPERATIONS", "lazy",
           "remote", "LazyTensor", "Session", "describe", "unlazy", "sync",
           "DjinnFallbackWarning", "session_for", "last_run", "make_state", "close_sessions"]


def __getattr__(name):
    # The torch frontend loads torch (a second): only when asked for.
    if name in ("lazy", "remote", "LazyTensor", "Session", "describe", "unlazy", "sync",
                "DjinnFallbackWarning", "session_for", "last_run", "make_state",
                "close_sessions"):
        import importlib
        return getattr(importlib.import_module(".lazytensor", __name__), name)
    raise AttributeError(f"module 'djinn' has no attribute {name!r}")


import atexit as _atexit
_atexit.register(close_all)
