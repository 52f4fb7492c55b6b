# SPDX-License-Identifier: BSD-3-Clause
"""What the Python benchmarks share: a server to talk to, spreads over rounds,
the machine and its load, and the closing JSON."""
import contextlib
import json
import os
import platform
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))                      # python/: the package
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))  # tiny_decoder

from djinn import server  # noqa: E402


@contextlib.contextmanager
def server_address(address=None):
    """address, or that of a djinn-dp started here (TCP, a free port)."""
    if address is not None:
        yield address
        return
    with server.Server() as srv:
        yield srv.address


def spread(values):
    values = list(values)
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def machine():
    load = os.getloadavg()
    return {"machine": f"{platform.node()} ({os.cpu_count()} cores), {platform.platform()}",
            "loadavg": load}


def emit(result, path=None):
    """The closing JSON object on stdout, and in path when given."""
    print(json.dumps(result))
    if path:
        with open(path, "w") as f:
            json.dump(result, f, indent=1)
