# SPDX-License-Identifier: BSD-3-Clause
"""The original system's asyncio API, over libdjinn.

    from djinn.core.coordinator import DjinnCoordinator, CoordinatorConfig
    coordinator = DjinnCoordinator(CoordinatorConfig(node_id='client', tcp_fallback=True))
    await coordinator.start()
    result = await coordinator.execute_remote_operation('aten::matmul', [x, y], 'localhost:5556')
    await coordinator.stop()

The target is a Djinn server's control address ("host:port", djinn-dp's
--ctl-port). Each call is one request and one reply: the inputs travel inside
it, the operation runs, its result comes back and everything it made is
freed on the server (a batch with puts, a fetch and frees). Inputs may also be
RemoteTensors (resident on that server: nothing uploaded). torch tensors in,
torch tensors out; numpy in, numpy out. Nothing blocks the event loop: the
connect runs in the loop's executor once per target, every request completes
through a C callback (djinn/_async.py).
"""
import asyncio
import errno
from dataclasses import dataclass, field
from typing import List, Optional

from ..client import Connection
from ..errors import DjinnError, InvalidArgumentError
from .._record import record_aten


@dataclass
class CoordinatorConfig:
    """node_id names this client in logs. tcp_fallback: True moves tensor
    bytes over DPDK where both sides have it and TCP otherwise; False
    insists on DPDK (needs eal_args). timeout: seconds per request;
    connect_timeout: per connect attempt. token / token_file: the servers'
    pre-shared token (else DJINN_TOKEN / DJINN_TOKEN_FILE)."""
    node_id: str = "client"
    tcp_fallback: bool = True
    timeout: float = 30.0
    connect_timeout: float = 2.0
    retries: int = 5
    token: Optional[str] = None
    token_file: Optional[str] = None
    tls: bool = False
    tls_ca: Optional[str] = None
    eal_args: Optional[List[str]] = field(default=None)


class DjinnCoordinator:
    def __init__(self, config=None):
        self.config = config or CoordinatorConfig()
        self._conns = {}
        self._connecting = {}
        self._running = False
        self._datapath = None

    @property
    def node_id(self):
        return self.config.node_id

    async def start(self):
        """Ready to send (connections are made on first use of each target)."""
        if self.config.eal_args is not None:
            from .. import dpdk
            self._datapath = dpdk.start(self.config.eal_args).datapath
        elif not self.config.tcp_fallback:
            raise InvalidArgumentError(-errno.EINVAL, "tcp_fallback=False needs a DPDK data "
                                       "path: give CoordinatorConfig(eal_args=[...])")
        self._running = True

    async def stop(self):
        """Close every connection (their sessions end on the servers)."""
        self._running = False
        conns, self._conns = self._conns, {}
        loop = asyncio.get_running_loop()
        for c in conns.values():
            await loop.run_in_executor(None, c.close)

    async def __aenter__(self):
        await self.start()
        return self

    async def __aexit__(self, *exc):
        await self.stop()

    async def connection(self, target):
        """The Connection to target (connected once, in the executor)."""
        if not self._running:
            raise DjinnError(-errno.ENOTCONN, "the coordinator is not started: await "
                             "coordinator.start() first")
        c = self._conns.get(target)
        if c is not None and not c.closed:
            return c
        pending = self._connecting.get(target)
        if pending is None:
            cfg = self.config
            path = "auto" if cfg.tcp_fallback else "dpdk"
            if self._datapath is None and path == "auto":
                path = "tcp"
            loop = asyncio.get_running_loop()
            pending = loop.run_in_executor(None, lambda: Connection(
                target, token=cfg.token, token_file=cfg.token_file, path=path,
                timeout=cfg.timeout, connect_timeout=cfg.connect_timeout,
                retries=cfg.retries, tls=cfg.tls, tls_ca=cfg.tls_ca,
                datapath=self._datapath))
            self._connecting[target] = pending
        try:
            c = await asyncio.shield(pending)
        finally:
            self._connecting.pop(target, None)
        self._conns[target] = c
        return c

    async def execute_remote_operation(self, operation, inputs, target, **kwargs):
        """Run operation ('aten::matmul', or one of djinn.OPERATIONS) on inputs
        (tensors, arrays, RemoteTensors and the aten schema's other arguments,
        in its order; keywords for the rest) on target: the result, as the
        inputs' kind of array."""
        conn = await self.connection(target)
        b = conn.batch()
        out = record_aten(b, operation, list(inputs), kwargs)
        b.fetch(out)
        result = await b.run_async()
        return result[out]

    async def ping(self, target):
        conn = await self.connection(target)
        return await asyncio.get_running_loop().run_in_executor(None, conn.ping)

    async def stats(self, target):
        conn = await self.connection(target)
        return await asyncio.get_running_loop().run_in_executor(None, conn.stats)
