# SPDX-License-Identifier: BSD-3-Clause
"""C futures as asyncio futures, without a thread per request.

A request is sent by a dj_*_async call with one C callback for all of them.
The library runs that callback on the connection's reader thread when the
reply (or the connection's failure) completes the future; there, still on the
reader thread and while the connection certainly exists, the callback reads
the result out of the C future (rc, handles, descriptions, error text) and
releases it, then hands the plain Python result to the event loop with
loop.call_soon_threadsafe. Thousands of requests may be in flight on one
connection at no cost in threads; the event loop never blocks.

(run_in_executor would block a pool thread per request in dj_future_wait,
capping concurrency at the pool's size and adding a thread hand-off each way.)

Timeouts: a C future completes on its reply or on a lost connection, never on
its request timeout alone, so the loop watches the deadlines: one sweep per
loop every 100 ms while requests are pending (no timer per request). A
request past its deadline is given up with dj_future_abandon() (the
connection is abandoned, as a blocking call's is when it times out: a late
reply lands nowhere) and the awaiting coroutine gets DjinnTimeoutError. The
buffers a request writes (a GET's, a batch's fetched outputs) stay referenced
until the C future has completed, whatever happened on the Python side.
"""
import asyncio
import ctypes
import itertools
import threading
import time
import weakref

from . import _lib
from ._lib import lib
from .errors import DjinnTimeoutError, make_error
import errno

_pending = {}
_keys = itertools.count(1)
_SWEEP_S = 0.1
_sweeping = weakref.WeakSet()  # loops with a sweep scheduled


class _Entry:
    __slots__ = ("loop", "fut", "extract", "keep", "fptr", "lock", "released", "deadline",
                 "timeout", "what")

    def __init__(self, loop, extract, keep, what, timeout):
        self.loop = loop
        self.fut = loop.create_future()
        self.extract = extract
        self.keep = keep
        self.fptr = None
        self.lock = threading.Lock()
        self.released = False
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout if timeout and timeout > 0 else None
        self.what = what


def _deliver(entry, outcome):
    """On the loop: the extracted outcome (value or exception) to the awaiter."""
    entry.keep = None
    ok, value = outcome
    if entry.fut.done():
        # Timed out or cancelled first: what the request made is nobody's
        # (a RemoteTensor dropped here frees itself on the server).
        return
    if ok:
        entry.fut.set_result(value)
    else:
        entry.fut.set_exception(value)


@_lib.FUTURE_CB
def _on_complete(fptr, arg):
    entry = _pending.pop(arg, None)
    if entry is None:
        return
    try:
        with entry.lock:
            rc = lib.dj_future_wait(fptr, 0)
            try:
                if rc != 0:
                    text = lib.dj_future_error(fptr)
                    outcome = (False, make_error(rc, (text or b"").decode(errors="replace") or
                                                 f"{entry.what}: {_lib.strerror(rc)}"))
                else:
                    outcome = (True, entry.extract(fptr))
            except Exception as e:  # an extraction failure is the request's
                outcome = (False, e)
            lib.dj_future_release(fptr)
            entry.released = True
        entry.loop.call_soon_threadsafe(_deliver, entry, outcome)
    except RuntimeError:
        # The loop is closed: nobody awaits this any more.
        entry.keep = None


def _expire(entry):
    with entry.lock:
        if entry.released or entry.fut.done():
            return
        lib.dj_future_abandon(entry.fptr)
    entry.fut.set_exception(DjinnTimeoutError(
        -errno.ETIMEDOUT, f"{entry.what}: no reply in {entry.timeout:g} s; the connection "
        "was abandoned (the next idempotent call reconnects and resumes the session)"))


def _sweep(loop):
    """Give up this loop's requests past their deadline; again while any wait."""
    now = time.monotonic()
    mine = [e for e in list(_pending.values()) if e.loop is loop]
    for e in mine:
        if e.deadline is not None and e.deadline <= now and e.fptr is not None:
            _expire(e)
    if any(not e.fut.done() for e in mine) and not loop.is_closed():
        loop.call_later(_SWEEP_S, _sweep, loop)
    else:
        _sweeping.discard(loop)


def submit(start, extract, keep, timeout, what):
    """Send one request; returns an awaitable of extract(fptr)'s value.

    start(cb, arg, pfuture) calls a dj_*_async function and returns its rc;
    extract(fptr) runs on the reader thread once the request succeeded; keep
    is referenced until the C future completes (buffers the request reads or
    writes).
    Must be called on the running loop's thread.
    """
    loop = asyncio.get_running_loop()
    key = next(_keys)
    entry = _Entry(loop, extract, keep, what, timeout)
    _pending[key] = entry
    fptr = ctypes.c_void_p()
    rc = start(_on_complete, key, ctypes.byref(fptr))
    if rc != 0:
        _pending.pop(key, None)
        raise make_error(rc, f"{what}: {_lib.strerror(rc)}")
    with entry.lock:
        entry.fptr = fptr.value
    if entry.deadline is not None and loop not in _sweeping:
        _sweeping.add(loop)
        loop.call_later(_SWEEP_S, _sweep, loop)
    return entry.fut
