# SPDX-License-Identifier: BSD-3-Clause
"""Start a djinn-dp server from Python: for examples, tests and benchmarks.

    with djinn.server.Server() as srv:        # TCP only, a port the OS picks
        conn = djinn.connect(srv.address)

djinn-dp is found at DJINN_DP=/path, else in the build tree this package sits
in (build/apps/djinn-dp), else on PATH. The server's log goes to a file
(srv.log_path); start() waits for its "listening on" line and reads the port
from it, so parallel runs never collide (port 0 by default).
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

_LISTEN = re.compile(r"control plane: listening on ([0-9.]+):(\d+)")


def find_djinn_dp():
    """Path of djinn-dp, or None."""
    env = os.environ.get("DJINN_DP")
    if env:
        return env
    here = Path(__file__).resolve().parent.parent.parent
    for build in ([Path(os.environ["DJINN_BUILD"])] if os.environ.get("DJINN_BUILD") else []) \
            + [here / "build"]:
        p = build / "apps" / "djinn-dp"
        if p.exists():
            return str(p)
    return shutil.which("djinn-dp")


def port_free(port, host="127.0.0.1"):
    """True when nothing listens on host:port and it can be bound."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def listening(port, host="127.0.0.1", timeout=0.5):
    """True when something accepts connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class ServerError(RuntimeError):
    pass


class Server:
    """A djinn-dp process: TCP only (--no-dpdk) unless eal_args are given.

    port: the control port (0: the OS picks). args: more djinn-dp options
    (["--token-file", path], ["--mem-limit", "1M"]...)."""

    def __init__(self, port=0, args=(), eal_args=None, binary=None, start_timeout=20.0):
        self.binary = binary or find_djinn_dp()
        if self.binary is None:
            raise ServerError("djinn-dp not found: build it (bash scripts/setup.sh) or set "
                              "DJINN_DP=/path/to/djinn-dp")
        self.port = port
        self.args = list(args)
        self.eal_args = eal_args
        self.start_timeout = start_timeout
        self.proc = None
        self.host = "127.0.0.1"
        fd, self.log_path = tempfile.mkstemp(prefix="djinn-dp.", suffix=".log")
        os.close(fd)

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def start(self):
        cmd = [self.binary]
        if self.eal_args is not None:
            cmd += list(self.eal_args) + ["--"]
        else:
            cmd += ["--", "--no-dpdk"]
        cmd += ["--ctl-port", str(self.port), "--stats-interval", "0"] + self.args
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            m = _LISTEN.search(self.log())
            if m:
                self.host, self.port = m.group(1), int(m.group(2))
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        text = self.log()
        self.stop()
        raise ServerError(f"djinn-dp did not start ({' '.join(cmd)}):\n{text[-2000:]}")

    def stop(self, timeout=10.0):
        p, self.proc = self.proc, None
        if p is None or p.poll() is not None:
            return
        try:
            os.kill(p.pid, signal.SIGCONT)
        except OSError:
            pass
        p.send_signal(signal.SIGINT)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    def kill(self):
        """SIGKILL: the server vanishes without a word."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def _state(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]

    def pause(self, timeout=5.0):
        """SIGSTOP: the server stops answering (connections stay open).
        Returns once the process is stopped (the signal is asynchronous)."""
        os.kill(self.proc.pid, signal.SIGSTOP)
        deadline = time.monotonic() + timeout
        while self._state() not in ("T", "t") and time.monotonic() < deadline:
            time.sleep(0.001)

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)

    def __enter__(self):
        return self.start()

    def remove_log(self):
        try:
            os.unlink(self.log_path)
        except OSError:
            pass

    def __exit__(self, *exc):
        self.stop()
        self.remove_log()
