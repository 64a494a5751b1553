"""The order-lifecycle half of the executor contract: the real runtime against a venue.

Subclass :class:`LifecycleContractSuite` beside :class:`~intentbus.testing.
executor_contract.ExecutorContractSuite` with the same ``venue_harness`` fixture. Each
test runs the :class:`~intentbus.executor.runtime.ExecutorRuntime` on its own NATS
connection (so a test can kill it: the connection is closed under it, as a SIGKILL
would), publishes intents, drives the market and checks what reached the bus and the
:class:`~intentbus.testing.fake_ledger.FakeLedger`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest_asyncio
from nats.aio.client import Client
from nats.js import JetStreamContext

from intentbus.bus import Publisher, Topology
from intentbus.schemas import (
    ActionType,
    Direction,
    ExecutionResult,
    ExecutionStatus,
    OrderState,
    build_intent,
)
from intentbus.testing.executor_contract import VenueHarness
from intentbus.testing.executor_harness import RunningReplica, replica
from intentbus.testing.fake_ledger import FakeLedger
from intentbus.testing.waiting import wait_for


class LifecycleContractSuite:
    """Orders that live, through the runtime; the subclass provides ``venue_harness``."""

    @pytest_asyncio.fixture
    async def ledger(
        self, nc: Client, js: JetStreamContext, topology: Topology
    ) -> AsyncIterator[FakeLedger]:
        """Return a started fake ledger."""
        fake = FakeLedger(nc, js, topology)
        await fake.start()
        yield fake
        await fake.stop()

    @asynccontextmanager
    async def replica(
        self, h: VenueHarness, nats_url: str, topology: Topology
    ) -> AsyncIterator[RunningReplica]:
        """Run an executor runtime replica of the venue until the block ends (unless killed)."""
        async with replica(nats_url, topology, h.new_executor()) as running:
            yield running

    @staticmethod
    def open(h: VenueHarness, ledger: FakeLedger, pid: str, allocation: float) -> None:
        """Open a long position in the fake ledger."""
        ledger.open(
            pid,
            venue=h.new_executor().venue,
            book_id=h.book_id,
            token_contract=h.symbol,
            direction=Direction.LONG,
            allocation_usd=allocation,
        )

    @staticmethod
    async def publish(
        js: JetStreamContext,
        topology: Topology,
        h: VenueHarness,
        pid: str,
        action: ActionType,
        frac: float,
        **extra: Any,
    ) -> str:
        """Publish an intent for position ``pid``; return its id."""
        intent = build_intent(
            action=action,
            size_frac=frac,
            position_id=pid,
            token_contract=h.symbol,
            token_chain=h.new_executor().venue,
            book_id=h.book_id,
            **extra,
        )
        await Publisher(js, topology).intent(intent)
        return intent.intent_id

    @staticmethod
    async def result(
        ledger: FakeLedger, intent_id: str, timeout_s: float = 20.0
    ) -> ExecutionResult:
        """Wait for the final result of an intent."""

        async def found() -> ExecutionResult | None:
            return next((r for r in ledger.results if r.intent_id == intent_id), None)

        result = await wait_for(found, until=lambda r: r is not None, timeout_s=timeout_s)
        assert result is not None
        return result

    @staticmethod
    async def working(ledger: FakeLedger, intent_id: str) -> float:
        """Wait until the intent's order is reported working; return its limit price."""
        await wait_for(
            lambda: _value([u for u in ledger.updates if u.intent_id == intent_id]),
            what=f"order update of {intent_id}",
        )
        update = next(u for u in ledger.updates if u.intent_id == intent_id)
        assert update.order_state is OrderState.WORKING
        assert update.price is not None
        return update.price

    # the lifecycle ---------------------------------------------------------------------
    async def test_a_resting_add_fills_in_three_parts(
        self,
        venue_harness: VenueHarness,
        nats_url: str,
        js: JetStreamContext,
        topology: Topology,
        ledger: FakeLedger,
    ) -> None:
        h = venue_harness
        self.open(h, ledger, "life-1", three_parts(h))
        async with self.replica(h, nats_url, topology):
            iid = await self.publish(js, topology, h, "life-1", ActionType.ADD, 0.5, urgency="low")
            limit = await self.working(ledger, iid)
            for part in (1, 2, 3):
                await h.set_price(h.symbol, limit * 0.999)
                await _wait_fills(ledger, iid, part)
                await h.set_price(h.symbol, limit * 1.01)
            result = await self.result(ledger, iid)
        fills = [f for f in ledger.fills if f.intent_id == iid]
        assert len(fills) == 3
        assert [f.order_state for f in fills] == [
            OrderState.PARTIALLY_FILLED,
            OrderState.PARTIALLY_FILLED,
            OrderState.FILLED,
        ]
        assert (result.status, result.order_state) == (ExecutionStatus.SUCCESS, OrderState.FILLED)
        assert result.fill_count == 3
        assert abs(result.filled_size - sum(f.size for f in fills)) < 1e-9
        assert abs(result.fees_usd - sum(f.fee for f in fills)) < 1e-9  # the fills' fees
        vwap = sum(f.size * f.price for f in fills) / result.filled_size
        assert result.avg_price is not None
        assert abs(result.avg_price - vwap) < 1e-6
        assert all(f.price <= limit + 1e-9 for f in fills)
        assert abs(ledger.positions["life-1"].size - result.filled_size) < 1e-9

    async def test_an_order_resting_past_its_deadline_is_cancelled(
        self,
        venue_harness: VenueHarness,
        nats_url: str,
        js: JetStreamContext,
        topology: Topology,
        ledger: FakeLedger,
    ) -> None:
        h = venue_harness
        self.open(h, ledger, "life-2", three_parts(h))
        async with self.replica(h, nats_url, topology):
            iid = await self.publish(
                js,
                topology,
                h,
                "life-2",
                ActionType.ADD,
                0.5,
                urgency="low",
                ttl=timedelta(seconds=4),
            )
            limit = await self.working(ledger, iid)
            await h.set_price(h.symbol, limit * 0.999)  # one part fills
            await h.set_price(h.symbol, limit * 1.01)
            result = await self.result(ledger, iid, timeout_s=15.0)
        assert result.order_state in (OrderState.CANCELLED, OrderState.EXPIRED)
        assert result.status is ExecutionStatus.PARTIAL
        filled = sum(f.size for f in ledger.fills if f.intent_id == iid)
        assert 0 < filled < result.requested_size  # type: ignore[operator]
        assert abs(ledger.positions["life-2"].size - filled) < 1e-9
        assert abs(result.filled_size - filled) < 1e-9

    async def test_an_exit_cancels_a_resting_add_and_leaves_the_account_flat(
        self,
        venue_harness: VenueHarness,
        nats_url: str,
        js: JetStreamContext,
        topology: Topology,
        ledger: FakeLedger,
    ) -> None:
        h = venue_harness
        self.open(h, ledger, "life-3", three_parts(h))
        async with self.replica(h, nats_url, topology) as running:
            add = await self.publish(js, topology, h, "life-3", ActionType.ADD, 0.5, urgency="low")
            limit = await self.working(ledger, add)
            await h.set_price(h.symbol, limit * 0.999)  # a part fills, the rest rests
            await _wait_fills(ledger, add, 1)
            await h.set_price(h.symbol, limit * 1.01)
            exit_id = await self.publish(
                js, topology, h, "life-3", ActionType.EXIT, 1.0, urgency="critical"
            )
            cancelled = await self.result(ledger, add)
            exited = await self.result(ledger, exit_id)
            account = running.executor.account_for(h.book_id)
            net = await running.executor.net_position(account, h.symbol)
        assert cancelled.status is ExecutionStatus.PARTIAL
        assert ledger.results.index(cancelled) < ledger.results.index(exited)
        assert exited.status is ExecutionStatus.SUCCESS
        assert abs(exited.filled_size - cancelled.filled_size) < 1e-9
        assert net == 0
        assert ledger.positions["life-3"].size == 0

    async def test_fills_while_the_executor_is_dead_reach_the_ledger_once(
        self,
        venue_harness: VenueHarness,
        nats_url: str,
        js: JetStreamContext,
        topology: Topology,
        ledger: FakeLedger,
    ) -> None:
        h = venue_harness
        self.open(h, ledger, "life-4", three_parts(h))
        async with self.replica(h, nats_url, topology) as first:
            iid = await self.publish(js, topology, h, "life-4", ActionType.ADD, 0.5, urgency="low")
            limit = await self.working(ledger, iid)
            await h.set_price(h.symbol, limit * 0.999)
            await _wait_fills(ledger, iid, 1)
            await first.kill()
            for _ in range(2):  # the rest fills while nobody follows the order
                await h.set_price(h.symbol, limit * 1.01)
                await h.set_price(h.symbol, limit * 0.999)
        async with self.replica(h, nats_url, topology):
            result = await self.result(ledger, iid, timeout_s=20.0)
        fills = [f for f in ledger.fills if f.intent_id == iid]
        assert len(fills) == len({f.fill_id for f in fills}) == 3
        assert result.order_state is OrderState.FILLED
        assert abs(ledger.positions["life-4"].size - result.filled_size) < 1e-9

    async def test_a_fill_during_a_dropped_feed_is_recovered(
        self,
        venue_harness: VenueHarness,
        nats_url: str,
        js: JetStreamContext,
        topology: Topology,
        ledger: FakeLedger,
    ) -> None:
        h = venue_harness
        self.open(h, ledger, "life-5", h.depth * h.price / 0.5 * 0.9)
        async with self.replica(h, nats_url, topology) as running:
            iid = await self.publish(js, topology, h, "life-5", ActionType.ADD, 0.5, urgency="low")
            limit = await self.working(ledger, iid)
            await h.drop_feed(running.executor)
            await h.set_price(h.symbol, limit * 0.999)
            await h.restore_feed(running.executor)
            result = await self.result(ledger, iid)
        assert result.order_state is OrderState.FILLED
        fills = [f for f in ledger.fills if f.intent_id == iid]
        assert len(fills) == len({f.fill_id for f in fills}) >= 1
        assert abs(sum(f.size for f in fills) - result.filled_size) < 1e-9


def three_parts(h: VenueHarness) -> float:
    """Return the allocation whose ADD 0.5 buys just over three depths: it fills in three parts."""
    return 3 * h.depth * h.price / 0.5 * 1.0001


async def _wait_fills(ledger: FakeLedger, intent_id: str, count: int) -> None:
    async def seen() -> int:
        return len([f for f in ledger.fills if f.intent_id == intent_id])

    await wait_for(seen, until=lambda n: n >= count, what=f"fill {count} at the ledger")


async def _value(value: Any) -> Any:
    return value
