# SPDX-License-Identifier: BSD-3-Clause
"""Fixtures: a djinn-dp of the suite's own (TCP, a port the OS picks), a
connection per test, and a watchdog so that no test can hang the run.

The package is imported from this tree (python/) unless DJINN_PY_INSTALLED=1
(then from wherever pip put it); libdjinn and djinn-dp from the build tree,
or DJINN_LIB / DJINN_DP."""
import faulthandler
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if os.environ.get("DJINN_PY_INSTALLED") != "1":
    sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import djinn  # noqa: E402
from djinn import server as djinn_server  # noqa: E402

# No test may take longer than this: a hang prints every thread's stack and
# ends the run instead of stalling the suite.
TEST_LIMIT_S = int(os.environ.get("DJINN_TEST_LIMIT_S", "240"))


def pytest_runtest_setup(item):
    faulthandler.dump_traceback_later(TEST_LIMIT_S, exit=True)


def pytest_runtest_teardown(item):
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture(scope="session")
def server():
    if djinn_server.find_djinn_dp() is None:
        pytest.skip("djinn-dp not built (bash scripts/setup.sh) and DJINN_DP not set")
    with djinn_server.Server() as srv:
        yield srv


@pytest.fixture
def address(server):
    return server.address


@pytest.fixture
def conn(server):
    c = djinn.connect(server.address, timeout=30)
    yield c
    c.close()


@pytest.fixture
def own_server():
    """A server for this test alone (to kill, pause or configure)."""
    servers = []

    def make(**kw):
        srv = djinn_server.Server(**kw).start()
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.stop()
        srv.remove_log()
