"""The one contract test suite every venue executor passes.

A venue's test module subclasses :class:`ExecutorContractSuite` (as ``Test...``) and
defines a ``venue_harness`` fixture yielding a :class:`VenueHarness`: a way to make
fresh (unstarted) executors of one venue with a fresh account, to move the market price
of a symbol (effective at the venue when it returns), to drop and restore an executor's
live feed, and the venue's numbers the tests need. The venue-level tests use only the
:class:`~intentbus.executor.base.BaseExecutor` protocol; the lifecycle tests run the
real :class:`~intentbus.executor.runtime.ExecutorRuntime` against the venue, with the
hand-written :class:`~intentbus.testing.fake_ledger.FakeLedger`, on a real nats-server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest_asyncio
from nats.aio.client import Client
from nats.js import JetStreamContext

from intentbus.bus import Topology
from intentbus.executor.base import (
    BaseExecutor,
    OrderNotFound,
    VenueContext,
    VenueEvent,
    VenueFill,
    VenueOrder,
)
from intentbus.executor.ids import client_order_id
from intentbus.executor.prepare import prepare
from intentbus.schemas import (
    ActionType,
    Direction,
    ExecutionIntent,
    ExecutionPlan,
    OrderState,
    OrderType,
    Position,
    Side,
    Skip,
    SkipReason,
    TimeInForce,
    build_intent,
)
from intentbus.testing.waiting import wait_for

Executors = Callable[[], BaseExecutor]


@dataclass
class VenueHarness:
    """How the contract tests drive one venue.

    ``depth`` is the most one market update fills of a resting order (in tokens), so a
    resting order of ``3 * depth`` fills in three parts as three updates cross it.
    """

    new_executor: Executors
    set_price: Callable[[str, float], Awaitable[None]]
    drop_feed: Callable[[BaseExecutor], Awaitable[None]]
    restore_feed: Callable[[BaseExecutor], Awaitable[None]]
    depth: float
    lot: float
    symbol: str = "BTC"
    unpriced_symbol: str = "NOPRICE"
    price: float = 100.0
    book_id: str = "main"


@dataclass
class Recorder:
    """An event sink that keeps every venue event."""

    events: list[VenueEvent] = field(default_factory=list)

    async def __call__(self, event: VenueEvent) -> None:
        self.events.append(event)

    def fills(self, cloid: str) -> list[VenueFill]:
        """Return the fills of one order seen so far."""
        return [e for e in self.events if isinstance(e, VenueFill) and e.client_order_id == cloid]

    def states(self, cloid: str) -> list[OrderState]:
        """Return the order states of one order seen so far."""
        return [
            e.state for e in self.events if isinstance(e, VenueOrder) and e.client_order_id == cloid
        ]


class ExecutorContractSuite:
    """Tests every BaseExecutor passes; the subclass provides ``venue_harness``."""

    @pytest_asyncio.fixture
    async def venue(
        self, venue_harness: VenueHarness, nc: Client, js: JetStreamContext, topology: Topology
    ) -> AsyncIterator[tuple[BaseExecutor, Recorder]]:
        """Return a started executor of the harness venue and the recorder of its events."""
        async with started(venue_harness, nc, js, topology) as pair:
            yield pair

    # helpers -------------------------------------------------------------------------
    @staticmethod
    def position(
        h: VenueHarness,
        ex: BaseExecutor,
        *,
        size: float = 0.0,
        direction: Direction = Direction.LONG,
        allocation_usd: float = 10_000.0,
        symbol: str | None = None,
        position_id: str = "contract-pos",
    ) -> Position:
        """Return a position of the harness venue."""
        return Position(
            position_id=position_id,
            venue=ex.venue,
            book_id=h.book_id,
            token_contract=symbol or h.symbol,
            direction=direction,
            allocation_usd=allocation_usd,
            size=size,
        )

    @staticmethod
    def intent(
        h: VenueHarness, position: Position, action: ActionType, frac: float, **extra: Any
    ) -> ExecutionIntent:
        """Return an intent for ``position``."""
        return build_intent(
            action=action,
            size_frac=frac,
            position_id=position.position_id,
            token_contract=position.token_contract,
            token_chain=position.venue,
            book_id=h.book_id,
            **extra,
        )

    def prepared(
        self,
        h: VenueHarness,
        ex: BaseExecutor,
        position: Position,
        action: ActionType,
        frac: float,
        net: float | None = None,
        **extra: Any,
    ) -> ExecutionPlan | Skip:
        """Prepare an intent; the venue net defaults to the position's signed size."""
        if net is None:
            net = position.size if position.direction is Direction.LONG else -position.size
        return prepare(ex, self.intent(h, position, action, frac, **extra), position, net)

    def plan(self, *args: Any, **kwargs: Any) -> ExecutionPlan:
        """Prepare and insist on a plan."""
        found = self.prepared(*args, **kwargs)
        assert isinstance(found, ExecutionPlan), found
        return found

    def skip(self, *args: Any, **kwargs: Any) -> Skip:
        """Prepare and insist on a skip."""
        found = self.prepared(*args, **kwargs)
        assert isinstance(found, Skip), found
        return found

    @staticmethod
    async def state(ex: BaseExecutor, plan: ExecutionPlan, *wanted: OrderState) -> VenueOrder:
        """Wait until the venue reports the order in one of ``wanted`` states."""

        async def status() -> VenueOrder:
            return await ex.order_status(plan.account, plan.symbol, plan.client_order_id)

        return await wait_for(status, until=lambda o: o.state in wanted, what=f"{wanted}")

    # prepare -------------------------------------------------------------------------
    async def test_add_on_long_buys_allocation_share(
        self, venue_harness: VenueHarness, venue: tuple[BaseExecutor, Recorder]
    ) -> None:
        h, (ex, _) = venue_harness, venue
        plan = self.plan(h, ex, self.position(h, ex), ActionType.ADD, 0.5)
        assert plan.side is Side.BUY
        assert not plan.reduce_only
        assert 10_000.0 * 0.5 / h.price * 0.99 <= plan.size <= 10_000.0 * 0.5 / h.price
        assert plan.client_order_id == client_order_id(plan.intent_id)
        assert (plan.venue, plan.symbol, plan.account) == (
            ex.venue,
            h.symbol,
            ex.account_for(h.book_id),
        )

    async def test_exit_closes_exactly_the_account_net(
        self, venue_harness: VenueHarness, venue: tuple[BaseExecutor, Recorder]
    ) -> None:
        h, (ex, _) = venue_harness, venue
        short = self.position(h, ex, size=3.0, direction=Direction.SHORT)
        for action in (ActionType.EXIT, ActionType.EMERGENCY_EXIT):
            plan = self.plan(h, ex, short, action, 0.1, net=-3.0)
            assert (plan.side, plan.reduce_only, plan.size) == (Side.BUY, True, 3.0)
        skip = self.skip(h, ex, short, ActionType.EXIT, 1.0, net=0.0)
        assert skip.reason == SkipReason.NOTHING_TO_CLOSE

    async def test_reduce_only_add_and_unpriced_symbol_are_skipped(
        self, venue_harness: VenueHarness, venue: tuple[BaseExecutor, Recorder]
    ) -> None:
        h, (ex, _) = venue_harness, venue
        pos = self.position(h, ex)
        skip = self.skip(h, ex, pos, ActionType.ADD, 0.5, reduce_only=True)
        assert skip.reason == SkipReason.REDUCE_ONLY
        unpriced = self.position(h, ex, symbol=h.unpriced_symbol)
        found = self.skip(h, ex, unpriced, ActionType.ADD, 0.5)
        assert found.reason in (SkipReason.NO_MARK, SkipReason.UNKNOWN_SYMBOL)

    async def test_order_styles(
        self, venue_harness: VenueHarness, venue: tuple[BaseExecutor, Recorder]
    ) -> None:
        h, (ex, _) = venue_harness, venue
        pos = self.position(h, ex)
        ioc = self.plan(h, ex, pos, ActionType.ADD, 0.5, urgency="critical", max_slippage_bps=30)
        assert (ioc.order_type, ioc.time_in_force) == (OrderType.MARKET, TimeInForce.IOC)
        assert ioc.price is not None
        assert h.price <= ioc.price <= h.price * 1.003 + 1e-9
        gtc = self.plan(h, ex, pos, ActionType.ADD, 0.5, urgency="low")
        assert (gtc.order_type, gtc.time_in_force) == (OrderType.LIMIT, TimeInForce.GTC)
        assert gtc.price is not None
        assert gtc.price < h.price
        maker = self.plan(h, ex, pos, ActionType.ADD, 0.5, post_only=True)
        assert maker.time_in_force is TimeInForce.POST_ONLY

    # orders at the venue -------------------------------------------------------------
    async def test_a_limit_rests_then_fills_in_parts_at_its_price_or_better(
        self, venue_harness: VenueHarness, venue: tuple[BaseExecutor, Recorder]
    ) -> None:
        h, (ex, seen) = venue_harness, venue
        pos = self.position(h, ex, allocation_usd=3 * h.depth * h.price / 0.5 * 1.0001)
        plan = self.plan(h, ex, pos, ActionType.ADD, 0.5, urgency="low")
        assert plan.price is not None
        assert plan.size >= 3 * h.depth - h.lot
        placed = await ex.place(plan)
        assert placed.state is OrderState.WORKING
        assert (
            await ex.order_status(plan.account, h.symbol, plan.client_order_id)
        ).filled_size == 0
        below = plan.price * 0.999
        for part in (1, 2, 3):
            await h.set_price(h.symbol, below)
            await _wait_fills(ex, plan, part)
            await h.set_price(h.symbol, plan.price * 1.01)  # back above: nothing crosses
        done = await self.state(ex, plan, OrderState.FILLED)
        fills = await _fills(ex, plan)
        assert len(fills) == 3
        assert abs(sum(f.size for f in fills) - plan.size) < 1e-9
        assert abs(done.filled_size - plan.size) < 1e-9
        assert all(f.price <= plan.price + 1e-9 for f in fills)  # never worse than the limit
        assert await ex.net_position(plan.account, h.symbol) == done.filled_size
        await wait_for(
            lambda: _async(seen.fills(plan.client_order_id)),
            until=lambda got: len(got) == 3,
            what="three live fill events",
        )
        assert OrderState.FILLED in seen.states(plan.client_order_id)

    async def test_a_buy_limit_below_the_market_never_fills_above_it(
        self, venue_harness: VenueHarness, venue: tuple[BaseExecutor, Recorder]
    ) -> None:
        h, (ex, _) = venue_harness, venue
        plan = self.plan(h, ex, self.position(h, ex), ActionType.ADD, 0.1, urgency="low")
        await ex.place(plan)
        await h.set_price(h.symbol, h.price * 1.1)  # the market runs away: still resting
        order = await ex.order_status(plan.account, h.symbol, plan.client_order_id)
        assert (order.state, order.filled_size) == (OrderState.WORKING, 0.0)

    async def test_cancel_and_unknown_orders(
        self, venue_harness: VenueHarness, venue: tuple[BaseExecutor, Recorder]
    ) -> None:
        h, (ex, _) = venue_harness, venue
        plan = self.plan(h, ex, self.position(h, ex), ActionType.ADD, 0.1, urgency="low")
        await ex.place(plan)
        cancelled = await ex.cancel(plan.account, h.symbol, plan.client_order_id)
        if cancelled.state.is_live:
            cancelled = await self.state(ex, plan, OrderState.CANCELLED)
        assert cancelled.state is OrderState.CANCELLED
        await h.set_price(h.symbol, h.price * 0.9)  # would have crossed
        assert (
            await ex.order_status(plan.account, h.symbol, plan.client_order_id)
        ).filled_size == 0
        try:
            await ex.order_status(plan.account, h.symbol, "0x" + "0" * 32)
        except OrderNotFound:
            pass
        else:
            raise AssertionError("an order never placed was found")

    async def test_one_client_order_id_trades_once(
        self, venue_harness: VenueHarness, venue: tuple[BaseExecutor, Recorder]
    ) -> None:
        h, (ex, _) = venue_harness, venue
        plan = self.plan(h, ex, self.position(h, ex), ActionType.ADD, 0.2, urgency="critical")
        first = await ex.place(plan)
        second = await ex.place(plan)
        assert second.venue_order_id == first.venue_order_id
        filled = await self.state(ex, plan, OrderState.FILLED)
        assert await ex.net_position(plan.account, h.symbol) == filled.filled_size

    async def test_ioc_beyond_protection_and_crossing_post_only_do_not_trade(
        self, venue_harness: VenueHarness, venue: tuple[BaseExecutor, Recorder]
    ) -> None:
        h, (ex, _) = venue_harness, venue
        pos = self.position(h, ex)
        ioc = self.plan(h, ex, pos, ActionType.ADD, 0.2, urgency="critical", max_slippage_bps=0)
        order = await ex.place(ioc)
        if order.state.is_live:
            order = await self.state(ex, ioc, OrderState.CANCELLED, OrderState.FILLED)
        assert order.state is OrderState.CANCELLED
        assert order.filled_size == 0
        maker = self.plan(h, ex, pos, ActionType.ADD, 0.2, post_only=True)
        crossing = ExecutionPlan(**{**_fields(maker), "price": h.price * 1.05})
        refused = await ex.place(crossing)
        assert refused.state is OrderState.REJECTED
        assert await ex.net_position(maker.account, h.symbol) == 0

    async def test_reduce_only_never_flips_the_account(
        self, venue_harness: VenueHarness, venue: tuple[BaseExecutor, Recorder]
    ) -> None:
        h, (ex, _) = venue_harness, venue
        pos = self.position(h, ex)
        bought = await ex.place(self.plan(h, ex, pos, ActionType.ADD, 0.2, urgency="critical"))
        net = await wait_for(
            lambda: ex.net_position(bought.account, h.symbol), until=lambda n: n > 0, what="net"
        )
        held = self.position(h, ex, size=net * 2)  # the ledger thinks there is more
        close = self.plan(h, ex, held, ActionType.EXIT, 1.0, urgency="critical", net=net * 2)
        closed = await ex.place(close)
        if closed.state.is_live:
            closed = await self.state(ex, close, *_FINAL)
        assert abs(closed.filled_size - net) < 1e-9
        assert await ex.net_position(close.account, h.symbol) == 0

    async def test_fenced_ids_never_trade_and_a_filled_one_is_reported(
        self, venue_harness: VenueHarness, venue: tuple[BaseExecutor, Recorder]
    ) -> None:
        h, (ex, _) = venue_harness, venue
        pos = self.position(h, ex)
        plan = self.plan(h, ex, pos, ActionType.ADD, 0.2, urgency="critical")
        assert await ex.fence(plan.account, h.symbol, plan.client_order_id) is None
        late = await ex.place(plan)
        assert late.filled_size == 0
        assert await ex.net_position(plan.account, h.symbol) == 0
        other = self.plan(h, ex, pos, ActionType.ADD, 0.3, urgency="critical")
        await ex.place(other)
        filled = await self.state(ex, other, OrderState.FILLED)
        fenced = await ex.fence(other.account, h.symbol, other.client_order_id)
        assert fenced is not None
        assert fenced.filled_size == filled.filled_size

    async def test_fills_missed_while_the_feed_was_down_are_found(
        self, venue_harness: VenueHarness, venue: tuple[BaseExecutor, Recorder]
    ) -> None:
        h, (ex, seen) = venue_harness, venue
        plan = self.plan(h, ex, self.position(h, ex), ActionType.ADD, 0.1, urgency="low")
        placed = await ex.place(plan)
        assert plan.price is not None
        await h.drop_feed(ex)
        await h.set_price(h.symbol, plan.price * 0.99)
        await self.state(ex, plan, OrderState.FILLED, OrderState.PARTIALLY_FILLED)
        assert seen.fills(plan.client_order_id) == []  # the feed was down
        await h.restore_feed(ex)
        assert placed.updated_at is not None
        found = [
            f
            for f in await ex.fills_since(plan.account, placed.updated_at)
            if f.client_order_id == plan.client_order_id
        ]
        assert found
        assert len({f.venue_fill_id for f in found}) == len(found)


_FINAL = tuple(s for s in OrderState if s.is_final)


def _fields(plan: ExecutionPlan) -> dict[str, Any]:
    return {name: getattr(plan, name) for name in plan.__struct_fields__}


async def _async(value: Any) -> Any:
    return value


async def _wait_fills(ex: BaseExecutor, plan: ExecutionPlan, count: int) -> None:
    fills = await wait_for(
        lambda: _fills(ex, plan), until=lambda found: len(found) >= count, what=f"fill {count}"
    )
    assert len(fills) >= count


async def _fills(ex: BaseExecutor, plan: ExecutionPlan) -> list[VenueFill]:
    since = plan.valid_until
    assert since is not None
    from datetime import timedelta

    return [
        f
        for f in await ex.fills_since(plan.account, since - timedelta(hours=1))
        if f.client_order_id == plan.client_order_id
    ]


@asynccontextmanager
async def started(
    h: VenueHarness, nc: Client, js: JetStreamContext, topology: Topology
) -> AsyncIterator[tuple[BaseExecutor, Recorder]]:
    """Start a fresh executor of the harness venue with a recording event sink."""
    ex = h.new_executor()
    recorder = Recorder()
    ex.set_event_sink(recorder)
    await ex.start(VenueContext(nc=nc, js=js, topology=topology))
    try:
        yield ex, recorder
    finally:
        await ex.stop()
