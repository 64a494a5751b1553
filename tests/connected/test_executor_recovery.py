"""Crash recovery: claims, client order ids, leases and cursors never trade twice or late."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from intentbus.bus import Publisher, Topology
from intentbus.executor import results
from intentbus.executor.base import OrderOutcome, VenueContext
from intentbus.executor.claims import ClaimState, ClaimStore
from intentbus.executor.kv import ensure_bucket
from intentbus.executor.ordering import Cursor, CursorStore, LeaseStore, PositionSlots
from intentbus.executor.runtime import (
    CLAIMS_BUCKET,
    CURSORS_BUCKET,
    LEASES_BUCKET,
    ExecutorRuntime,
    RuntimeSettings,
)
from intentbus.schemas import (
    ExecutionIntent,
    ExecutionPlan,
    ExecutionResult,
    ExecutionStatus,
    SkipReason,
    build_intent,
)
from intentbus.testing import wait_for
from intentbus.testing.executor_harness import read_results, running
from intentbus.testing.fake_ledger import FakeLedger
from intentbus.venues.paper import PaperConfig, PaperExecutor
from intentbus.venues.paper.account import PaperAccount, PaperOrder, SymbolBook

FAST = RuntimeSettings(ledger_retry_s=0.1, busy_retry_s=0.02)
CONFIG = PaperConfig(prices={"BTC": 100.0}, slippage_bps=0.0)


class BlindPaper(PaperExecutor):
    """A paper venue that cannot look orders up (like a venue API that is down for good)."""

    async def lookup(self, plan: ExecutionPlan) -> OrderOutcome | None:
        """Refuse every lookup."""
        raise NotImplementedError("this venue has no order lookup")


@pytest_asyncio.fixture
async def ledger(nc: Client, js: JetStreamContext, topology: Topology) -> AsyncIterator[FakeLedger]:
    fake = FakeLedger(nc, js, topology)
    await fake.start()
    fake.open("p1")
    yield fake
    await fake.stop()


@pytest_asyncio.fixture
async def venue(
    nc: Client, js: JetStreamContext, topology: Topology
) -> AsyncIterator[PaperExecutor]:
    """A paper venue sharing the runtime's account, playing the replica that crashed."""
    paper = PaperExecutor(CONFIG)
    await paper.start(VenueContext(nc=nc, js=js, topology=topology))
    yield paper
    await paper.stop()


@pytest_asyncio.fixture
async def claims(js: JetStreamContext, topology: Topology) -> ClaimStore:
    return ClaimStore(await ensure_bucket(js, topology.bucket(CLAIMS_BUCKET)))


def _runtime(
    nc: Client, js: JetStreamContext, topology: Topology, paper: PaperExecutor | None = None
) -> ExecutorRuntime:
    return ExecutorRuntime(nc, js, topology, paper or PaperExecutor(CONFIG), settings=FAST)


def _intent(created_at: datetime | None = None) -> ExecutionIntent:
    return build_intent(
        action="add",
        size_frac=0.5,
        position_id="p1",
        token_contract="BTC",
        token_chain="paper",
        book_id="main",
        created_at=created_at,
    )


class Crash(Exception):
    """The simulated death of the replica that was placing the order."""


class CrashBeforeCommit(PaperAccount):
    """Dies after taking the client order id's gate, before the fill is committed."""

    async def _commit(self, *args: object, **kwargs: object) -> tuple[PaperOrder, bool, bool]:
        raise Crash


class CrashBeforeFinalise(PaperAccount):
    """Dies after committing the fill, before the order key holds the final order."""

    async def _finalise(self, symbol: str, order: PaperOrder) -> None:
        raise Crash


async def _crash_placing(account: PaperAccount, venue: PaperExecutor, plan: ExecutionPlan) -> None:
    def fill(book: SymbolBook) -> PaperOrder:
        return venue._fill(plan, 100.0, book)

    with pytest.raises(Crash):
        await account.place(plan.client_order_id, plan.symbol, fill)


async def _plan(venue: PaperExecutor, ledger: FakeLedger, intent: ExecutionIntent) -> ExecutionPlan:
    plan = await venue.prepare(intent, ledger.positions["p1"])
    assert isinstance(plan, ExecutionPlan)
    return plan


async def _results(js: JetStreamContext, topology: Topology, n: int) -> list[ExecutionResult]:
    found = await wait_for(
        lambda: read_results(js, topology), until=lambda r: len(r) >= n, what=f"{n} result(s)"
    )
    return [result for _, result in found]


async def _orders(js: JetStreamContext, topology: Topology) -> list[PaperOrder]:
    return await PaperAccount(await js.key_value(topology.bucket("PAPER_paper"))).orders()


async def _claimed(
    venue: PaperExecutor,
    ledger: FakeLedger,
    claims: ClaimStore,
    intent: ExecutionIntent,
    owner: str,
) -> ExecutionPlan:
    """Plan the intent and record ``owner``'s claim on it, as a replica does before sending."""
    plan = await _plan(venue, ledger, intent)
    await claims.claim(intent.intent_id, owner, plan)
    return plan


async def _deliver(
    nc: Client,
    js: JetStreamContext,
    topology: Topology,
    intent: ExecutionIntent,
    paper: PaperExecutor | None = None,
) -> tuple[ExecutionResult, ExecutorRuntime]:
    """Publish one intent and run a runtime until its result is out and the intent settled."""
    await Publisher(js, topology).intent(intent)
    runtime = _runtime(nc, js, topology, paper)
    async with running(runtime):
        (result,) = await _results(js, topology, 1)
        await _settled(js, topology, runtime)
    return result, runtime


async def _settled(js: JetStreamContext, topology: Topology, runtime: ExecutorRuntime) -> None:
    async def pending() -> tuple[int, int]:
        try:
            info = await js.consumer_info(topology.intents_stream, runtime.durable)
        except NotFoundError:
            return -1, -1  # the runtime has not declared its consumer yet
        return info.num_pending, info.num_ack_pending

    await wait_for(pending, until=lambda p: p == (0, 0), what="every intent acked")


async def test_crash_after_placing_reports_the_order_without_a_second_one(
    nc: Client,
    js: JetStreamContext,
    topology: Topology,
    ledger: FakeLedger,
    venue: PaperExecutor,
    claims: ClaimStore,
) -> None:
    intent = _intent()
    plan = await _plan(venue, ledger, intent)
    assert await claims.claim(intent.intent_id, "crashed-replica", plan) is not None
    placed = await venue.execute(plan, ledger.positions["p1"])
    result, runtime = await _deliver(nc, js, topology, intent)
    assert result.status is ExecutionStatus.SUCCESS
    assert result.tx_hash == placed.venue_order_id
    assert result.tokens_bought == placed.filled_size
    assert len(await _orders(js, topology)) == 1
    claim = await claims.get(intent.intent_id)
    assert claim is not None
    assert claim.state is ClaimState.DONE
    assert runtime.stats.executed == 0


async def test_crash_after_claiming_before_placing_places_exactly_once(
    nc: Client,
    js: JetStreamContext,
    topology: Topology,
    ledger: FakeLedger,
    venue: PaperExecutor,
    claims: ClaimStore,
) -> None:
    intent = _intent()
    plan = await _claimed(venue, ledger, claims, intent, "crashed-replica")
    await Publisher(js, topology).intent(intent)
    async with running(_runtime(nc, js, topology)):
        (result,) = await _results(js, topology, 1)
    assert result.status is ExecutionStatus.SUCCESS
    (order,) = await _orders(js, topology)
    assert order.client_order_id == plan.client_order_id
    assert result.tx_hash == order.order_id


async def test_crash_after_publishing_republishes_the_same_result(
    nc: Client,
    js: JetStreamContext,
    topology: Topology,
    ledger: FakeLedger,
    venue: PaperExecutor,
    claims: ClaimStore,
) -> None:
    intent = _intent()
    plan = await _claimed(venue, ledger, claims, intent, "crashed-replica")
    outcome = await venue.execute(plan, ledger.positions["p1"])
    first = results.executed(intent, plan, outcome)
    await Publisher(js, topology).result(first)
    await Publisher(js, topology).intent(intent)
    async with running(runtime := _runtime(nc, js, topology)):
        await _settled(js, topology, runtime)
    (stored,) = await _results(js, topology, 1)  # the stream dropped the copy
    assert stored.result_id == first.result_id
    assert len(await _orders(js, topology)) == 1


async def test_done_claim_is_republished_and_acked_without_trading(
    nc: Client,
    js: JetStreamContext,
    topology: Topology,
    ledger: FakeLedger,
    venue: PaperExecutor,
    claims: ClaimStore,
) -> None:
    intent = _intent()
    plan = await _claimed(venue, ledger, claims, intent, "crashed-replica")
    outcome = await venue.execute(plan, ledger.positions["p1"])
    done = results.executed(intent, plan, outcome)
    await claims.finish(intent.intent_id, "crashed-replica", done)
    result, runtime = await _deliver(nc, js, topology, intent)
    assert result == done
    assert runtime.stats.republished == 1
    assert len(await _orders(js, topology)) == 1


async def test_unknowable_outcome_is_reported_unknown_never_guessed(
    nc: Client,
    js: JetStreamContext,
    topology: Topology,
    ledger: FakeLedger,
    venue: PaperExecutor,
    claims: ClaimStore,
) -> None:
    intent = _intent()
    await _claimed(venue, ledger, claims, intent, "crashed-replica")
    await Publisher(js, topology).intent(intent)
    async with running(_runtime(nc, js, topology, BlindPaper(CONFIG))):
        (result,) = await _results(js, topology, 1)
    assert result.status is ExecutionStatus.UNKNOWN
    assert result.error is not None
    assert "lookup impossible" in result.error
    assert (result.tokens_bought, result.tokens_sold, result.fees_usd) == (None, None, None)
    assert await _orders(js, topology) == []


async def test_intent_behind_the_position_cursor_is_superseded(
    nc: Client, js: JetStreamContext, topology: Topology, ledger: FakeLedger
) -> None:
    cursors = CursorStore(await ensure_bucket(js, topology.bucket(CURSORS_BUCKET)))
    await cursors.advance("p1", intent_seq=1_000, results_seq=0)
    await Publisher(js, topology).intent(_intent())
    async with running(_runtime(nc, js, topology)):
        (result,) = await _results(js, topology, 1)
    assert result.status is ExecutionStatus.SKIPPED
    assert result.skip_reason == SkipReason.SUPERSEDED
    assert await _orders(js, topology) == []


async def test_live_lease_of_another_replica_makes_the_intent_wait(
    nc: Client, js: JetStreamContext, topology: Topology, ledger: FakeLedger
) -> None:
    leases = LeaseStore(await ensure_bucket(js, topology.bucket(LEASES_BUCKET)), ttl_s=60.0)
    revision = await leases.acquire("p1", "other-replica", "some-intent", 1)
    assert revision is not None
    await Publisher(js, topology).intent(_intent())
    runtime = _runtime(nc, js, topology)
    async with running(runtime):

        async def retried() -> int:
            return runtime.stats.retried

        await wait_for(retried, until=lambda n: n >= 3, what="retries on a held lease")
        assert await read_results(js, topology) == []
        await leases.release("p1", revision)
        (result,) = await _results(js, topology, 1)
    assert result.status is ExecutionStatus.SUCCESS


async def test_stale_lease_of_a_dead_replica_is_taken_over(
    nc: Client, js: JetStreamContext, topology: Topology, ledger: FakeLedger
) -> None:
    dead = LeaseStore(await ensure_bucket(js, topology.bucket(LEASES_BUCKET)), ttl_s=-1.0)
    assert await dead.acquire("p1", "dead-replica", "some-intent", 1) is not None
    await Publisher(js, topology).intent(_intent())
    async with running(_runtime(nc, js, topology)):
        (result,) = await _results(js, topology, 1)
    assert result.status is ExecutionStatus.SUCCESS
    assert await dead.holder("p1") is None


async def _account(
    js: JetStreamContext, topology: Topology, cls: type[PaperAccount]
) -> PaperAccount:
    return cls(await js.key_value(topology.bucket("PAPER_paper")))


async def test_crash_after_the_order_gate_before_the_fill_places_exactly_once(
    nc: Client,
    js: JetStreamContext,
    topology: Topology,
    ledger: FakeLedger,
    venue: PaperExecutor,
    claims: ClaimStore,
) -> None:
    intent = _intent()
    plan = await _claimed(venue, ledger, claims, intent, "crashed-replica")
    await _crash_placing(await _account(js, topology, CrashBeforeCommit), venue, plan)
    result, runtime = await _deliver(nc, js, topology, intent)
    assert result.status is ExecutionStatus.SUCCESS
    (order,) = await _orders(js, topology)
    assert (order.client_order_id, order.order_id) == (plan.client_order_id, result.tx_hash)
    book = await venue.account.book("BTC")
    assert (book.order_count, book.size) == (1, order.filled_size)
    assert runtime.stats.executed == 1


async def test_crash_after_the_fill_before_finalising_reports_the_order_without_a_second_one(
    nc: Client,
    js: JetStreamContext,
    topology: Topology,
    ledger: FakeLedger,
    venue: PaperExecutor,
    claims: ClaimStore,
) -> None:
    intent = _intent()
    plan = await _claimed(venue, ledger, claims, intent, "crashed-replica")
    await _crash_placing(await _account(js, topology, CrashBeforeFinalise), venue, plan)
    result, runtime = await _deliver(nc, js, topology, intent)
    assert result.status is ExecutionStatus.SUCCESS
    (order,) = await _orders(js, topology)
    assert result.tx_hash == order.order_id
    assert result.tokens_bought == order.filled_size
    book = await venue.account.book("BTC")
    assert (book.order_count, book.size) == (1, order.filled_size)
    assert runtime.stats.executed == 0


async def test_an_intent_placed_before_a_crash_is_reported_even_once_expired(
    nc: Client,
    js: JetStreamContext,
    topology: Topology,
    ledger: FakeLedger,
    venue: PaperExecutor,
    claims: ClaimStore,
) -> None:
    # expired by the time it is delivered: the existing claim wins over the expiry skip
    intent = _intent(created_at=datetime.now(UTC) - timedelta(hours=1))
    assert intent.is_expired()
    plan = await _claimed(venue, ledger, claims, intent, "crashed-replica")
    placed = await venue.execute(plan, ledger.positions["p1"])
    result, _ = await _deliver(nc, js, topology, intent)
    assert result.status is ExecutionStatus.SUCCESS
    assert result.tx_hash == placed.venue_order_id
    assert len(await _orders(js, topology)) == 1
    claim = await claims.get(intent.intent_id)
    assert claim is not None
    assert claim.state is ClaimState.DONE
    assert claim.result == result


async def test_a_lease_taken_over_mid_intent_keeps_the_new_holder_and_the_cursor_advances(
    js: JetStreamContext, topology: Topology
) -> None:
    bucket = await ensure_bucket(js, topology.bucket(CURSORS_BUCKET))
    slow = PositionSlots(bucket, ttl_s=-1.0)  # its lease is stale at once
    other = PositionSlots(bucket, ttl_s=60.0)
    held_slow = await slow.acquire("p1", "slow-replica", "i1", 5)
    assert held_slow is not None
    held_other = await other.acquire("p1", "other-replica", "i2", 6)
    assert held_other is not None
    assert await slow.acquire("p1", "slow-replica", "i3", 7) is None  # live lease: wait
    await slow.release("p1", held_slow, Cursor(intent_seq=5, results_seq=50))
    holder = await other.holder("p1")
    assert holder is not None
    assert holder.owner == "other-replica"
    assert await other.cursor("p1") == Cursor(intent_seq=5, results_seq=50)
    await other.release("p1", held_other, Cursor(intent_seq=6, results_seq=40))
    assert await other.holder("p1") is None
    assert await slow.cursor("p1") == Cursor(intent_seq=6, results_seq=50)  # never back


async def test_a_claimed_unplaced_expired_intent_is_fenced_so_a_stalled_replica_cannot_trade(
    nc: Client,
    js: JetStreamContext,
    topology: Topology,
    ledger: FakeLedger,
    venue: PaperExecutor,
    claims: ClaimStore,
) -> None:
    # A replica claimed the intent and stalled before sending; it is expired on redelivery.
    intent = _intent(created_at=datetime.now(UTC) - timedelta(hours=1))
    plan = await _claimed(venue, ledger, claims, intent, "stalled-replica")
    result, _ = await _deliver(nc, js, topology, intent)
    assert result.status is ExecutionStatus.SKIPPED
    assert result.skip_reason == SkipReason.EXPIRED
    # The stalled replica wakes up and sends its order: the fence stops it.
    late = await venue.execute(plan, ledger.positions["p1"])
    assert late.filled_size == 0
    assert late.status is ExecutionStatus.ERROR
    book = await venue.account.book("BTC")
    assert book.size == 0
    assert await venue.lookup(plan) is None


class UnfenceablePaper(PaperExecutor):
    """A paper venue that cannot fence a client order id (like most venue APIs)."""

    async def fence(self, plan: ExecutionPlan) -> OrderOutcome | None:
        """Refuse to fence."""
        raise NotImplementedError("this venue cannot fence a client order id")


async def test_without_a_fence_a_claimed_unplaced_expired_intent_is_unknown(
    nc: Client,
    js: JetStreamContext,
    topology: Topology,
    ledger: FakeLedger,
    venue: PaperExecutor,
    claims: ClaimStore,
) -> None:
    intent = _intent(created_at=datetime.now(UTC) - timedelta(hours=1))
    await _claimed(venue, ledger, claims, intent, "stalled-replica")
    result, _ = await _deliver(nc, js, topology, intent, UnfenceablePaper(CONFIG))
    assert result.status is ExecutionStatus.UNKNOWN
    assert "fenced" in (result.error or "")
