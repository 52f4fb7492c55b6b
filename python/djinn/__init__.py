# SPDX-License-Identifier: BSD-3-Clause
"""Djinn from Python: run tensor work on a remote Djinn server as if local.

Over libdjinn.so (ctypes; docs/PYTHON.md):

- djinn.connect(address) -> Connection: put / execute / get / compute,
  resident RemoteTensors, batches, stats, and *_async forms for asyncio;
- djinn.core.coordinator.DjinnCoordinator: the original system's asyncio API
  (execute_remote_operation('aten::matmul', [x, y], 'localhost:5556'));
- djinn.errors: DjinnError and one subclass per error code.
"""
from ._lib import lib as _lib_handle  # noqa: F401  (loads libdjinn, or ImportError)
from .batch import Batch, BatchResult, Ref
from .client import Connection, RemoteTensor, close_all, connect, parse_address
from .errors import (AuthError, DjinnConnectionError, DjinnError, DjinnTimeoutError,
                     DTypeError, HandleError, InvalidArgumentError, LimitError,
                     NotSupportedError, OutOfRangeError, ShapeError, UnknownOperationError)
from ._logging import set_log_level
from .ops import ATEN_OPS, OPERATIONS

__version__ = "0.1.0"

import atexit as _atexit
_atexit.register(close_all)
