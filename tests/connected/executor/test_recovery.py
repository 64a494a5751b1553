"""Crash recovery: claims left at every point of placing, and a response lost in transit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest_asyncio
from nats.aio.client import Client
from nats.js import JetStreamContext

from intentbus.bus import Publisher, Topology
from intentbus.executor.base import VenueContext, VenueOrder
from intentbus.executor.claims import ClaimStore
from intentbus.executor.kv import ensure_bucket
from intentbus.executor.prepare import prepare
from intentbus.executor.settings import CLAIMS_BUCKET
from intentbus.schemas import (
    ExecutionIntent,
    ExecutionPlan,
    ExecutionStatus,
    OrderState,
    SkipReason,
)
from intentbus.testing.fake_ledger import FakeLedger
from intentbus.venues.paper import PaperExecutor, PaperExecutorOptions
from tests.connected.executor.conftest import Runtimes, Venue
from tests.connected.executor.test_runtime import intent, results


class DroppedResponse(PaperExecutor):
    """A paper executor whose first ``place`` reaches the venue but whose answer is lost."""

    def __init__(self) -> None:
        super().__init__(PaperExecutorOptions(timeout_s=2.0))
        self.places = 0

    async def place(self, plan: ExecutionPlan) -> VenueOrder:
        self.places += 1
        order = await super().place(plan)
        if self.places == 1:
            raise TimeoutError("the venue applied the order but its answer was lost")
        return order


@pytest_asyncio.fixture
async def paper(
    nc: Client, js: JetStreamContext, topology: Topology, venue: Venue
) -> AsyncIterator[PaperExecutor]:
    """A started paper executor for the test itself (to plan and to place by hand)."""
    executor = PaperExecutor(PaperExecutorOptions(timeout_s=2.0))
    await executor.start(VenueContext(nc=nc, js=js, topology=topology))
    yield executor
    await executor.stop()


async def claimed(
    js: JetStreamContext,
    topology: Topology,
    paper: PaperExecutor,
    ledger: FakeLedger,
    one: ExecutionIntent,
) -> ExecutionPlan:
    """Claim ``one`` as a replica that crashed right after claiming would have."""
    plan = prepare(paper, one, ledger.positions[one.position_id], 0.0)
    assert isinstance(plan, ExecutionPlan), plan
    claims = ClaimStore(await ensure_bucket(js, topology.bucket(CLAIMS_BUCKET)))
    assert await claims.claim(one.intent_id, "crashed-replica", plan) is not None
    return plan


async def test_a_claim_left_before_placing_is_placed_once(
    js: JetStreamContext,
    topology: Topology,
    venue: Venue,
    ledger: FakeLedger,
    paper: PaperExecutor,
    runtimes: Runtimes,
) -> None:
    ledger.open("p1", allocation_usd=1_000.0)
    one = intent("p1", urgency="high")
    plan = await claimed(js, topology, paper, ledger, one)
    await Publisher(js, topology).intent(one)
    async with runtimes():
        (result,) = await results(js, topology, 1)
    assert result.status is ExecutionStatus.SUCCESS
    assert venue.orders("main") == [plan.client_order_id]
    assert venue.net("main", "BTC") == plan.size == ledger.positions["p1"].size


async def test_an_order_placed_before_a_crash_is_adopted_not_placed_again(
    js: JetStreamContext,
    topology: Topology,
    venue: Venue,
    ledger: FakeLedger,
    paper: PaperExecutor,
    runtimes: Runtimes,
) -> None:
    ledger.open("p1", allocation_usd=80.0)  # 0.4 BTC: one mark fills it (depth 0.5)
    one = intent("p1", urgency="low")
    plan = await claimed(js, topology, paper, ledger, one)
    placed = await paper.place(plan)  # then the replica died before recording it
    assert placed.state is OrderState.WORKING
    await Publisher(js, topology).intent(one)
    async with runtimes() as running:
        assert plan.price is not None
        await venue.mark("BTC", plan.price * 0.999)
        (result,) = await results(js, topology, 1)
        assert running.runtime.stats.adopted == 1
        assert running.runtime.stats.placed == 0
    assert (result.status, result.order_state) == (ExecutionStatus.SUCCESS, OrderState.FILLED)
    assert venue.orders("main") == [plan.client_order_id]
    assert ledger.positions["p1"].size == plan.size


async def test_an_expired_claim_never_placed_is_fenced_and_skipped(
    js: JetStreamContext,
    topology: Topology,
    venue: Venue,
    ledger: FakeLedger,
    paper: PaperExecutor,
    runtimes: Runtimes,
) -> None:
    ledger.open("p1", allocation_usd=1_000.0)
    created = datetime.now(UTC) - timedelta(seconds=59)
    one = intent("p1", urgency="high", created_at=created)  # expires within a second
    plan = await claimed(js, topology, paper, ledger, one)
    await Publisher(js, topology).intent(one)
    while not one.is_expired():
        await venue.mark("BTC", 100.0)  # time passes at the venue; no sleep
    async with runtimes():
        (result,) = await results(js, topology, 1)
    assert (result.status, result.skip_reason) == (ExecutionStatus.SKIPPED, SkipReason.EXPIRED)
    late = await paper.place(plan)  # the stalled claimant wakes up and sends it
    assert late.filled_size == 0
    assert venue.net("main", "BTC") == 0


async def test_a_response_lost_after_the_venue_applied_the_order_trades_once(
    js: JetStreamContext, topology: Topology, venue: Venue, ledger: FakeLedger, runtimes: Runtimes
) -> None:
    ledger.open("p1", allocation_usd=1_000.0)
    one = intent("p1", urgency="high")
    flaky = DroppedResponse()
    await Publisher(js, topology).intent(one)
    async with runtimes(flaky):
        (result,) = await results(js, topology, 1)
    assert flaky.places == 1  # the unknown outcome was asked about, not placed again
    assert result.status is ExecutionStatus.SUCCESS
    assert len(venue.orders("main")) == 1
    assert venue.net("main", "BTC") == result.filled_size == ledger.positions["p1"].size
