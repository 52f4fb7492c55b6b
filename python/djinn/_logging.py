# SPDX-License-Identifier: BSD-3-Clause
"""libdjinn's log lines into Python's logging, under the logger "djinn.lib".

Without this the library prints its lines on stderr ("session 7: data path
tcp (...)") where logging's levels and handlers cannot reach them. The
library's level follows the logger's effective level when the first
connection is made (DEBUG -> debug, INFO -> info, else notice); set it later
with djinn.set_log_level(). Lines come from the library's threads (the
connection's reader); logging is thread safe.
"""
import atexit
import logging

from . import _lib
from ._lib import lib

log = logging.getLogger("djinn.lib")
# enum dj_log_level -> logging level
_LEVELS = {0: logging.ERROR, 1: logging.WARNING, 2: logging.INFO, 3: logging.INFO,
           4: logging.DEBUG}
_installed = False


@_lib.LOG_FN
def _handler(level, component, line, arg):
    try:
        log.log(_LEVELS.get(level, logging.INFO), "%s: %s",
                (component or b"").decode(errors="replace"),
                (line or b"").decode(errors="replace"))
    except Exception:
        pass


def _uninstall():
    # Before the interpreter goes: a library thread must not call into it.
    lib.dj_log_set_handler(_lib.NO_LOG_FN, None)


def install():
    global _installed
    if _installed:
        return
    _installed = True
    eff = log.getEffectiveLevel()
    lib.dj_log_set_level(4 if eff <= logging.DEBUG else 3 if eff <= logging.INFO else 2)
    lib.dj_log_set_handler(_handler, None)
    atexit.register(_uninstall)


def set_log_level(level):
    """The library's level: "err", "warn", "notice", "info", "debug" or a logging level."""
    names = {"err": 0, "warn": 1, "notice": 2, "info": 3, "debug": 4}
    if isinstance(level, str):
        lib.dj_log_set_level(names[level])
    else:
        lib.dj_log_set_level(0 if level >= logging.ERROR else 1 if level >= logging.WARNING
                             else 3 if level >= logging.INFO else 4)
