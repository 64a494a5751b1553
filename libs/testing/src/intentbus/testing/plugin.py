"""Pytest fixtures: one real NATS server per session, a fresh namespace per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from nats.aio.client import Client
from nats.js import JetStreamContext

from intentbus.bus import BusSettings, Topology, connect, provision
from intentbus.testing.servers import NatsEndpoint, fresh_namespace, start_endpoint


@pytest.fixture(scope="session")
def nats_endpoint() -> Iterator[NatsEndpoint]:
    """Start (or reach) the session's real JetStream server."""
    endpoint = start_endpoint()
    yield endpoint
    endpoint.close()


@pytest.fixture(scope="session")
def nats_url(nats_endpoint: NatsEndpoint) -> str:
    """Return the URL of the session's server."""
    return nats_endpoint.url


@pytest.fixture
def topology() -> Topology:
    """Return a topology under a namespace of this test alone."""
    return Topology(fresh_namespace())


@pytest_asyncio.fixture
async def nc(nats_url: str) -> AsyncIterator[Client]:
    """Connect to the session's server."""
    client = await connect(BusSettings.from_env(nats_url, name="intentbus-tests"))
    yield client
    await client.drain()


@pytest_asyncio.fixture
async def js(nc: Client, topology: Topology) -> JetStreamContext:
    """Return JetStream with the test topology's streams provisioned."""
    context = nc.jetstream()
    await provision(context, topology)
    return context
