"""The shared executor contract, run against the paper venue on a real nats-server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest_asyncio
from nats.aio.client import Client
from nats.js import JetStreamContext

from intentbus.bus import Publisher, Topology
from intentbus.executor.base import VenueContext
from intentbus.schemas import Mark
from intentbus.testing import wait_for
from intentbus.testing.executor_contract import ExecutorContractSuite, VenueHarness
from intentbus.venues.paper import PaperConfig, PaperExecutor


@pytest_asyncio.fixture
async def venue_harness(
    nc: Client, js: JetStreamContext, topology: Topology
) -> AsyncIterator[VenueHarness]:
    """Start a paper venue on a fresh namespace, priced through the MARKS stream."""
    executor = PaperExecutor(PaperConfig())
    await executor.start(VenueContext(nc=nc, js=js, topology=topology))
    publisher = Publisher(js, topology)

    async def set_price(symbol: str, price: float) -> None:
        await publisher.mark(
            Mark(venue=executor.venue, symbol=symbol, price=price, at=datetime.now(UTC))
        )

        async def seen() -> float | None:
            return executor.marks.price(symbol)

        await wait_for(seen, until=lambda p: p == price, what=f"mark {symbol}={price}")

    harness = VenueHarness(executor=executor, set_price=set_price, price=100.0)
    await set_price(harness.symbol, harness.price)
    yield harness
    await executor.stop()


class TestPaperContract(ExecutorContractSuite):
    """Paper passes the contract every venue passes."""
