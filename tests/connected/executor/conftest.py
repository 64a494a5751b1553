"""Executor runtime fixtures: a paper venue server, a fake ledger and runtimes to run."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import pytest_asyncio
from nats.aio.client import Client
from nats.js import JetStreamContext

from intentbus.bus import Publisher, Topology
from intentbus.executor.base import BaseExecutor
from intentbus.executor.guards import RiskCaps
from intentbus.executor.runtime import RuntimeSettings
from intentbus.schemas import Mark
from intentbus.testing import wait_for
from intentbus.testing.executor_harness import RunningReplica, replica
from intentbus.testing.fake_ledger import FakeLedger
from intentbus.venues.paper import PaperConfig, PaperExecutor, PaperExecutorOptions
from intentbus.venues.paper.server import PaperVenueServer

FAST = RuntimeSettings(retry_s=0.05, retry_max_s=0.2, poll_s=0.5)
PRICES = {"BTC": 100.0, "ETH": 20.0}


Runtimes = Callable[..., AbstractAsyncContextManager[RunningReplica]]


@dataclass
class Venue:
    """The paper venue server of a test and how to move its market."""

    server: PaperVenueServer
    publisher: Publisher

    async def mark(self, symbol: str, price: float) -> None:
        """Publish a mark and wait until the venue matched it."""
        done = self.server.marks_applied.get(symbol, 0)
        at = datetime.now(UTC)
        await self.publisher.mark(Mark(venue="paper", symbol=symbol, price=price, at=at))

        async def applied() -> int:
            return self.server.marks_applied.get(symbol, 0)

        await wait_for(applied, until=lambda n: n > done, what=f"mark {symbol}={price}")

    def net(self, account: str, symbol: str) -> float:
        """Return an account's net at the venue."""
        found = self.server.state.accounts.get(account)
        return found.net(symbol) if found is not None else 0.0

    def orders(self, account: str) -> list[str]:
        """Return the client order ids of every order the venue recorded for an account."""
        return [key[1] for key in self.server.state.orders if key[0] == account]


@pytest_asyncio.fixture
async def venue(nc: Client, js: JetStreamContext, topology: Topology) -> AsyncIterator[Venue]:
    """Start a paper venue server (no slippage, depth 0.5 BTC per mark) on the test namespace."""
    config = PaperConfig(
        prices=PRICES, slippage_bps=0.0, depths={"BTC": 0.5}, lot_size=0.01, heartbeat_s=0.2
    )
    server = PaperVenueServer(nc, js, topology, config)
    await server.start()
    yield Venue(server, Publisher(js, topology))
    await server.stop()


@pytest_asyncio.fixture
async def ledger(nc: Client, js: JetStreamContext, topology: Topology) -> AsyncIterator[FakeLedger]:
    """Start the hand-written fake ledger."""
    fake = FakeLedger(nc, js, topology)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def runtimes(nats_url: str, topology: Topology) -> Runtimes:
    """Return a factory of runtimes, each on its own connection, stopped after its block."""

    def run(
        executor: BaseExecutor | None = None,
        *,
        settings: RuntimeSettings = FAST,
        caps: RiskCaps | None = None,
    ) -> AbstractAsyncContextManager[RunningReplica]:
        venue_executor = executor or PaperExecutor(PaperExecutorOptions(timeout_s=2.0))
        return replica(nats_url, topology, venue_executor, settings=settings, caps=caps)

    return run
