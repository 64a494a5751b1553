"""The shared executor contract (venue level and lifecycle), run against the paper venue."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest_asyncio
from nats.aio.client import Client
from nats.js import JetStreamContext

from intentbus.bus import Publisher, Topology
from intentbus.executor.base import BaseExecutor
from intentbus.schemas import Mark
from intentbus.testing import wait_for
from intentbus.testing.executor_contract import ExecutorContractSuite, VenueHarness
from intentbus.testing.lifecycle_contract import LifecycleContractSuite
from intentbus.venues.paper import PaperConfig, PaperExecutor, PaperExecutorOptions
from intentbus.venues.paper.server import PaperVenueServer

DEPTH, LOT = 0.5, 0.01


@pytest_asyncio.fixture
async def venue_harness(
    nc: Client, js: JetStreamContext, topology: Topology
) -> AsyncIterator[VenueHarness]:
    """Start a paper venue server on a fresh namespace, priced through the MARKS stream."""
    config = PaperConfig(depths={"BTC": DEPTH}, lot_size=LOT, heartbeat_s=0.2)
    server = PaperVenueServer(nc, js, topology, config)
    await server.start()
    publisher = Publisher(js, topology)
    made: list[PaperExecutor] = []

    def new_executor() -> BaseExecutor:
        executor = PaperExecutor(PaperExecutorOptions(name=config.name))
        made.append(executor)
        return executor

    async def set_price(symbol: str, price: float) -> None:
        done = server.marks_applied.get(symbol, 0)
        await publisher.mark(Mark(venue=config.name, symbol=symbol, price=price, at=now()))

        async def seen() -> bool:
            live = [ex for ex in made if ex.following_marks]
            matched = server.marks_applied.get(symbol, 0) > done
            return matched and all(ex.mark(symbol) == price for ex in live)

        await wait_for(seen, what=f"mark {symbol}={price}")

    async def drop_feed(executor: BaseExecutor) -> None:
        assert isinstance(executor, PaperExecutor)
        await executor.drop_feed()

    async def restore_feed(executor: BaseExecutor) -> None:
        assert isinstance(executor, PaperExecutor)
        await executor.restore_feed()

    harness = VenueHarness(
        new_executor=new_executor,
        set_price=set_price,
        drop_feed=drop_feed,
        restore_feed=restore_feed,
        depth=DEPTH,
        lot=LOT,
    )
    await set_price(harness.symbol, harness.price)
    yield harness
    await server.stop()


def now() -> datetime:
    return datetime.now(UTC)


class TestPaperContract(ExecutorContractSuite):
    """Paper passes the contract every venue passes."""


class TestPaperLifecycle(LifecycleContractSuite):
    """Orders that live through the runtime, on the paper venue."""
