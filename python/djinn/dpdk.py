# SPDX-License-Identifier: BSD-3-Clause
"""The client's DPDK data path from Python (dj_dpdk_*): tensor bytes over DPDK.

    dp = djinn.dpdk.start(["--vdev", "net_memif0,role=client,socket=/tmp/x.memif,"
                           "socket-abstract=no,bsize=9216", "--no-huge", "-m", "512"])
    conn = djinn.connect(address, path="dpdk", datapath=dp.datapath)

EAL starts once per process (a second start() returns the first data path,
or raises if the first failed); stop() ends it for good. Without EAL
arguments naming a device, the library adds the memif client of djinn-dp's
default socket; see include/djinn/djinn.h for the defaults it fills in.
"""
import atexit
import ctypes
import errno
import threading

from . import _lib
from ._lib import lib
from .errors import make_error

_lock = threading.Lock()
_dpdk = None
_failed = None


class Dpdk:
    """A started EAL with a polling data-plane engine (struct dj_dpdk)."""

    def __init__(self, ptr):
        self._ptr = ptr
        self.datapath = lib.dj_dpdk_datapath(ptr)

    def stop(self):
        """Stop DPDK (every Connection using it must be closed first)."""
        global _dpdk
        with _lock:
            if self._ptr:
                lib.dj_dpdk_destroy(self._ptr)
                self._ptr = None
                self.datapath = None
                _dpdk = None


IDLE_MODES = ("default", "poll", "nap", "interrupt")


def start(eal_args, local_ip=None, idle_sleep_us=None, frame_size=None, link_timeout_ms=None,
          idle=None, caller_runs=False, queues=None):
    """Start EAL with eal_args (DPDK's own options): the process's Dpdk.

    idle: what an idle lcore does, "poll", "nap" or "interrupt" (default:
    naps where idle_sleep_us is set, else polling); caller_runs (with
    "interrupt"): a waiting thread runs the lcore's loop; queues: queue
    pairs, one lcore each (EAL needs that many worker lcores)."""
    if idle is not None and idle not in IDLE_MODES:
        raise ValueError(f"idle must be one of {IDLE_MODES[1:]}, not {idle!r}")
    global _dpdk, _failed
    with _lock:
        if _dpdk is not None:
            return _dpdk
        if _failed is not None:
            raise make_error(-errno.EALREADY, f"DPDK failed to start before in this process "
                             f"({_failed}); EAL starts once")
        o = _lib.DpdkOptions()
        lib.dj_dpdk_options_init(ctypes.byref(o))
        keep = []
        if local_ip is not None:
            keep.append(local_ip.encode())
            o.local_ip = keep[-1]
        if idle_sleep_us is not None:
            o.idle_sleep_us = idle_sleep_us
        if frame_size is not None:
            o.frame_size = frame_size
        if link_timeout_ms is not None:
            o.link_timeout_ms = link_timeout_ms
        if idle is not None:
            o.idle = IDLE_MODES.index(idle)
        o.caller_runs = 1 if caller_runs else 0
        if queues is not None:
            o.queues = queues
        args = [b"djinn-python"] + [a.encode() for a in eal_args] + [b"--"]
        argv = (ctypes.c_char_p * (len(args) + 1))(*args, None)
        ptr = ctypes.c_void_p()
        rc = lib.dj_dpdk_create(len(args), argv, ctypes.byref(o), None, None,
                                ctypes.byref(ptr))
        if rc != 0:
            # Options refused before EAL was tried leave it startable.
            if rc != -errno.EINVAL:
                _failed = _lib.strerror(rc)
            raise make_error(rc, f"dj_dpdk_create: {_lib.strerror(rc)}")
        _dpdk = Dpdk(ptr.value)
        return _dpdk


@atexit.register
def _stop_at_exit():
    # After the connections (atexit runs in reverse: client.close_all was
    # registered at import, before this module was).
    if _dpdk is not None:
        _dpdk.stop()
