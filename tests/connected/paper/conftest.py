"""Paper venue fixtures: servers and executors on a real nats-server, one namespace a test."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from nats.aio.client import Client
from nats.js import JetStreamContext

from intentbus.bus import Topology
from intentbus.executor.base import VenueContext
from intentbus.venues.paper import PaperConfig, PaperExecutor, PaperExecutorOptions
from intentbus.venues.paper.server import PaperVenueServer
from tests.connected.paper.paper_support import Paper, Recorder, StartPaper


@pytest_asyncio.fixture
async def start_paper(
    nc: Client, js: JetStreamContext, topology: Topology
) -> AsyncIterator[StartPaper]:
    """Start a paper venue server (options as keywords) and an executor recording events."""
    started: list[Any] = []

    async def start(**options: Any) -> Paper:
        config = PaperConfig(**{"slippage_bps": 0.0, "heartbeat_s": 0.2, **options})
        server = PaperVenueServer(nc, js, topology, config)
        await server.start()
        started.append(server)
        seen = Recorder()
        executor = PaperExecutor(PaperExecutorOptions(name=config.name, timeout_s=5.0))
        executor.set_event_sink(seen)
        await executor.start(VenueContext(nc=nc, js=js, topology=topology))
        started.append(executor)
        return Paper(nc, js, topology, config, server, executor, seen, started)

    yield start
    for thing in reversed(started):
        with contextlib.suppress(Exception):
            await thing.stop()
