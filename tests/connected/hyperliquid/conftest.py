"""Hyperliquid fixtures: the local venue over real HTTP/WebSocket, the contract harness."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from nats.aio.client import Client
from nats.js import JetStreamContext

from intentbus.bus import Topology
from intentbus.executor.base import BaseExecutor
from intentbus.testing import wait_for
from intentbus.testing.executor_contract import VenueHarness
from intentbus.testing.fake_ledger import FakeLedger
from intentbus.venues.hyperliquid.executor import HyperliquidExecutor
from intentbus.venues.hyperliquid.local import LocalVenue

PRICE = 65_000.0
DEPTH = 0.01  # BTC filled per resting order per mid update
LOT = 0.00001  # BTC szDecimals 5


@pytest_asyncio.fixture
async def local() -> AsyncIterator[LocalVenue]:
    """Start a local venue with one funded master account and its API wallet."""
    venue = await LocalVenue.start(mids={"BTC": PRICE, "ETH": 3_200.0}, depths={"BTC": DEPTH})
    yield venue
    await venue.stop()


@pytest_asyncio.fixture
async def venue_harness(local: LocalVenue) -> VenueHarness:
    """Drive the local venue for the shared contract suites."""

    async def set_price(symbol: str, price: float) -> None:
        local.set_mid(symbol, price)

        async def seen() -> bool:
            return local.marks_seen(symbol, price)

        await wait_for(seen, what=f"mid {symbol}={price}")

    async def drop_feed(executor: BaseExecutor) -> None:
        assert isinstance(executor, HyperliquidExecutor)
        await executor.drop_feed()

    async def restore_feed(executor: BaseExecutor) -> None:
        assert isinstance(executor, HyperliquidExecutor)
        await executor.restore_feed()

    return VenueHarness(
        new_executor=local.executor,
        set_price=set_price,
        drop_feed=drop_feed,
        restore_feed=restore_feed,
        depth=DEPTH,
        lot=LOT,
        price=PRICE,
    )


@pytest_asyncio.fixture
async def ledger(nc: Client, js: JetStreamContext, topology: Topology) -> AsyncIterator[FakeLedger]:
    """Return a started fake ledger."""
    fake = FakeLedger(nc, js, topology)
    await fake.start()
    yield fake
    await fake.stop()
