# SPDX-License-Identifier: BSD-3-Clause
"""Tensor bytes over the DPDK data path from Python: djinn-dp on a memif
server port, a Python client (in a process of its own: EAL starts once per
process) starting its DPDK data path with djinn.dpdk.start() and insisting on
it (path="dpdk"). Skipped where EAL cannot start here, saying why."""
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from djinn import server as djinn_server

CLIENT = textwrap.dedent("""
    import sys
    import numpy as np
    import djinn, djinn.dpdk
    address, vdev, prefix, idle = sys.argv[1:]
    eal = ["--vdev", vdev, "--file-prefix", prefix, "--no-huge", "-m", "512"]
    try:  # refused before EAL starts: EAL can still start below
        djinn.dpdk.start(eal, caller_runs=True)
        raise SystemExit("caller_runs without interrupt idling was accepted")
    except djinn.InvalidArgumentError:
        pass
    # The memif link comes up first: path="dpdk" below allows no fallback.
    if idle == "interrupt":
        dp = djinn.dpdk.start(eal, idle="interrupt", caller_runs=True, link_timeout_ms=20000)
    else:
        dp = djinn.dpdk.start(eal, idle_sleep_us=20, link_timeout_ms=20000)
    with djinn.connect(address, path="dpdk", datapath=dp.datapath) as c:
        print("path", *c.path)
        x = np.random.default_rng(1).standard_normal((1024, 1024)).astype(np.float32)
        r = c.put(x)                      # 4 MiB over memif
        assert np.array_equal(r.numpy(), x)
        y = c.execute("relu", r).numpy()
        assert np.array_equal(y, np.maximum(x, 0))
        st = c.stats()["session"]
        assert st["path"] == "dpdk" and st["dp_failures"] == 0, st
    dp.stop()
    print("OK")
""")


@pytest.mark.parametrize("idle", ["nap", "interrupt"])
def test_python_client_over_dpdk(tmp_path, idle):
    if djinn_server.find_djinn_dp() is None:
        pytest.skip("djinn-dp not built")
    tag = f"djinn-py-{os.getpid()}"
    sock = str(tmp_path / "dp.memif")
    memif = f"socket={sock},socket-abstract=no,bsize=9216"
    srv = djinn_server.Server(
        eal_args=["--vdev", f"net_memif0,role=server,{memif}", "--file-prefix", f"{tag}-s",
                  "--no-huge", "-m", "512"],
        args=["--dp-idle-sleep-us", "20"], start_timeout=90)  # EAL is slow on a loaded host
    try:
        srv.start()
        if "data plane: port" not in srv.log():
            pytest.skip("djinn-dp could not start its DPDK data plane here:\n" + srv.log()[-800:])
        p = subprocess.run([sys.executable, "-c", CLIENT, srv.address,
                            f"net_memif0,role=client,{memif}", f"{tag}-c", idle],
                           capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
        out = p.stdout + p.stderr
        if p.returncode != 0 and "dj_dpdk_create" in out:
            pytest.skip("the client could not start EAL here: " + out[-800:])
        assert p.returncode == 0, out
        assert "path dpdk" in p.stdout and "OK" in p.stdout
    finally:
        srv.stop()
        srv.remove_log()
        for suffix in ("-s", "-c"):
            shutil.rmtree(f"/var/run/dpdk/{tag}{suffix}", ignore_errors=True)
