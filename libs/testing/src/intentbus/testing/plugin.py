"""Pytest fixtures: one real NATS server per session, a fresh namespace per test.

``ledger_db`` runs a test twice: on a SQLite file and on a fresh PostgreSQL database
of the session's real server (:mod:`intentbus.testing.postgres`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from nats.aio.client import Client
from nats.js import JetStreamContext

from intentbus.bus import BusSettings, Topology, connect, provision
from intentbus.testing.postgres import (
    PostgresEndpoint,
    create_database,
    drop_database,
    start_postgres,
)
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
async def js(nc: Client, topology: Topology) -> AsyncIterator[JetStreamContext]:
    """Return JetStream with the test topology's streams provisioned; remove them after."""
    context = nc.jetstream()
    await provision(context, topology)
    yield context
    await remove_namespace(context, topology)


async def remove_namespace(js: JetStreamContext, topology: Topology) -> None:
    """Delete every stream and KV bucket of the test's namespace (streams start NS_)."""
    prefix = topology.intents_stream.removesuffix("INTENTS")
    for info in await js.streams_info():
        name = info.config.name or ""
        if name.startswith(prefix) or name.startswith(f"KV_{prefix}"):
            await js.delete_stream(name)


@pytest.fixture(scope="session")
def postgres_endpoint() -> Iterator[PostgresEndpoint]:
    """Reach (or start) the session's real PostgreSQL server."""
    endpoint = start_postgres()
    yield endpoint
    endpoint.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Return a ledger ``--db`` of this test alone: a SQLite file, then a PostgreSQL URL."""
    if request.param == "sqlite":
        yield str(tmp_path / "ledger.sqlite3")
        return
    endpoint: PostgresEndpoint = request.getfixturevalue("postgres_endpoint")
    url = create_database(endpoint.url)
    yield url
    drop_database(endpoint.url, url)
