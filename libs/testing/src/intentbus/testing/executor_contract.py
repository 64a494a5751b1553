"""The one contract test suite every venue executor passes.

A venue's test module subclasses :class:`ExecutorContractSuite` (as ``Test...``) and
defines a ``venue_harness`` fixture yielding a :class:`VenueHarness`: a *started*
executor with a fresh account, a way to set the market price of a symbol (effective when
it returns), a priced symbol and a symbol that has no price. The tests use only the
:class:`~intentbus.executor.base.BaseExecutor` protocol.

Requires ``intentbus-executor`` (imported here, not by the pytest plugin).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from intentbus.executor.base import BaseExecutor, OrderOutcome, client_order_id
from intentbus.schemas import (
    ActionType,
    Direction,
    ExecutionIntent,
    ExecutionPlan,
    ExecutionStatus,
    Position,
    Side,
    Skip,
    SkipReason,
    build_intent,
)


@dataclass
class VenueHarness:
    """A started executor and the knobs the contract tests need."""

    executor: BaseExecutor
    set_price: Callable[[str, float], Awaitable[None]]
    symbol: str = "BTC"
    unpriced_symbol: str = "NOPRICE"
    price: float = 100.0
    book_id: str = "main"


class ExecutorContractSuite:
    """Tests every BaseExecutor passes; the subclass provides ``venue_harness``."""

    # helpers -------------------------------------------------------------------------
    @staticmethod
    def position(
        h: VenueHarness,
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
            venue=h.executor.venue,
            book_id=h.book_id,
            token_contract=symbol or h.symbol,
            direction=direction,
            allocation_usd=allocation_usd,
            size=size,
        )

    @staticmethod
    def intent(
        h: VenueHarness, position: Position, action: ActionType, size_frac: float, **extra: Any
    ) -> ExecutionIntent:
        """Return an intent for ``position``."""
        return build_intent(
            action=action,
            size_frac=size_frac,
            position_id=position.position_id,
            token_contract=position.token_contract,
            token_chain=h.executor.venue,
            book_id=h.book_id,
            **extra,
        )

    async def plan(
        self, h: VenueHarness, position: Position, action: ActionType, frac: float, **extra: Any
    ) -> ExecutionPlan:
        """Prepare an intent and insist on a plan."""
        intent = self.intent(h, position, action, frac, **extra)
        prepared = await h.executor.prepare(intent, position)
        assert isinstance(prepared, ExecutionPlan), prepared
        return prepared

    async def skip(
        self, h: VenueHarness, position: Position, action: ActionType, frac: float, **extra: Any
    ) -> Skip:
        """Prepare an intent and insist on a skip."""
        intent = self.intent(h, position, action, frac, **extra)
        prepared = await h.executor.prepare(intent, position)
        assert isinstance(prepared, Skip), prepared
        return prepared

    async def fill(self, h: VenueHarness, plan: ExecutionPlan, position: Position) -> OrderOutcome:
        """Execute a plan and insist on a fill."""
        outcome = await h.executor.execute(plan, position)
        assert outcome.status is ExecutionStatus.SUCCESS, outcome
        assert outcome.filled_size > 0
        return outcome

    # prepare -------------------------------------------------------------------------
    async def test_add_on_long_buys_allocation_share(self, venue_harness: VenueHarness) -> None:
        h = venue_harness
        pos = self.position(h)
        plan = await self.plan(h, pos, ActionType.ADD, 0.5)
        assert plan.side is Side.BUY
        assert not plan.reduce_only
        assert 0 < plan.size <= 10_000.0 * 0.5 / h.price
        assert plan.size >= 10_000.0 * 0.5 / h.price * 0.99
        assert plan.client_order_id == client_order_id(plan.intent_id)
        assert plan.venue == h.executor.venue
        assert plan.symbol == h.symbol

    async def test_reclaim_on_long_buys(self, venue_harness: VenueHarness) -> None:
        plan = await self.plan(venue_harness, self.position(venue_harness), ActionType.RECLAIM, 0.2)
        assert plan.side is Side.BUY

    async def test_add_on_short_sells(self, venue_harness: VenueHarness) -> None:
        h = venue_harness
        plan = await self.plan(h, self.position(h, direction=Direction.SHORT), ActionType.ADD, 0.2)
        assert plan.side is Side.SELL

    async def test_trim_sells_a_share_of_a_long(self, venue_harness: VenueHarness) -> None:
        h = venue_harness
        plan = await self.plan(h, self.position(h, size=10.0), ActionType.TRIM, 0.5)
        assert plan.side is Side.SELL
        assert plan.reduce_only
        assert 4.9 <= plan.size <= 5.0

    async def test_exit_closes_the_whole_short_reduce_only(
        self, venue_harness: VenueHarness
    ) -> None:
        h = venue_harness
        pos = self.position(h, size=3.0, direction=Direction.SHORT)
        for action in (ActionType.EXIT, ActionType.EMERGENCY_EXIT):
            plan = await self.plan(h, pos, action, 0.1)
            assert plan.side is Side.BUY
            assert plan.reduce_only
            assert plan.size >= 3.0

    async def test_reduce_only_add_is_skipped(self, venue_harness: VenueHarness) -> None:
        h = venue_harness
        for action in (ActionType.ADD, ActionType.RECLAIM):
            skip = await self.skip(h, self.position(h), action, 0.5, reduce_only=True)
            assert skip.reason == SkipReason.REDUCE_ONLY

    async def test_reducing_a_flat_position_is_skipped(self, venue_harness: VenueHarness) -> None:
        h = venue_harness
        for action in (ActionType.TRIM, ActionType.EXIT, ActionType.EMERGENCY_EXIT):
            skip = await self.skip(h, self.position(h, size=0.0), action, 0.5)
            assert skip.reason == SkipReason.NO_POSITION

    async def test_tiny_add_is_skipped(self, venue_harness: VenueHarness) -> None:
        h = venue_harness
        skip = await self.skip(h, self.position(h, allocation_usd=100.0), ActionType.ADD, 0.0001)
        assert skip.reason in (SkipReason.BELOW_MIN_NOTIONAL, SkipReason.ZERO_SIZE)

    async def test_unpriced_symbol_is_skipped(self, venue_harness: VenueHarness) -> None:
        h = venue_harness
        pos = self.position(h, symbol=h.unpriced_symbol)
        skip = await self.skip(h, pos, ActionType.ADD, 0.5)
        assert skip.reason in (SkipReason.NO_MARK, SkipReason.UNKNOWN_SYMBOL)

    async def test_critical_is_a_marketable_ioc_within_slippage(
        self, venue_harness: VenueHarness
    ) -> None:
        h = venue_harness
        buy = await self.plan(
            h, self.position(h), ActionType.ADD, 0.5, urgency="critical", max_slippage_bps=30
        )
        assert buy.order_type == "market"
        assert buy.price is not None
        assert h.price <= buy.price <= h.price * 1.003 + 1e-9
        sell = await self.plan(
            h, self.position(h, size=5.0), ActionType.EXIT, 1.0, urgency="critical"
        )
        assert sell.price is not None
        assert sell.price <= h.price

    async def test_limit_orders_carry_a_price(self, venue_harness: VenueHarness) -> None:
        h = venue_harness
        plan = await self.plan(h, self.position(h), ActionType.ADD, 0.5, urgency="low")
        assert plan.order_type == "limit"
        assert plan.price is not None
        assert plan.price > 0
        maker = await self.plan(h, self.position(h), ActionType.ADD, 0.5, post_only=True)
        assert maker.post_only

    async def test_leverage_is_positive_and_capped(self, venue_harness: VenueHarness) -> None:
        h = venue_harness
        free = await self.plan(h, self.position(h), ActionType.ADD, 0.5)
        assert free.leverage > 0
        capped = await self.plan(h, self.position(h), ActionType.ADD, 0.5, max_leverage=0.5)
        assert 0 < capped.leverage <= 0.5

    # execute and lookup --------------------------------------------------------------
    async def test_execute_fills_and_lookup_finds_it(self, venue_harness: VenueHarness) -> None:
        h = venue_harness
        pos = self.position(h)
        plan = await self.plan(h, pos, ActionType.ADD, 0.5, urgency="critical")
        assert await h.executor.lookup(plan) is None
        outcome = await self.fill(h, plan, pos)
        assert outcome.avg_price is not None
        assert outcome.avg_price > 0
        assert outcome.venue_order_id
        found = await h.executor.lookup(plan)
        assert found is not None
        assert found.venue_order_id == outcome.venue_order_id
        assert found.filled_size == outcome.filled_size

    async def test_same_client_order_id_never_fills_twice(
        self, venue_harness: VenueHarness
    ) -> None:
        h = venue_harness
        pos = self.position(h)
        plan = await self.plan(h, pos, ActionType.ADD, 0.5, urgency="critical")
        first = await self.fill(h, plan, pos)
        second = await h.executor.execute(plan, pos)
        assert second.venue_order_id == first.venue_order_id
        assert second.filled_size == first.filled_size
        # Only one fill happened: closing the first fill's size leaves nothing to reduce.
        held = self.position(h, size=first.filled_size)
        close = await self.plan(h, held, ActionType.EXIT, 1.0, urgency="critical")
        closed = await self.fill(h, close, held)
        assert abs(closed.filled_size - first.filled_size) < 1e-9
        again = await self.plan(h, held, ActionType.EXIT, 1.0, urgency="critical")
        assert (await h.executor.execute(again, held)).filled_size == 0

    async def test_a_fenced_client_order_id_never_fills(self, venue_harness: VenueHarness) -> None:
        h = venue_harness
        pos = self.position(h)
        plan = await self.plan(h, pos, ActionType.ADD, 0.5, urgency="critical")
        assert await h.executor.fence(plan) is None
        late = await h.executor.execute(plan, pos)
        assert late.filled_size == 0
        assert await h.executor.lookup(plan) is None

    async def test_fencing_a_filled_order_reports_the_fill(
        self, venue_harness: VenueHarness
    ) -> None:
        h = venue_harness
        pos = self.position(h)
        plan = await self.plan(h, pos, ActionType.ADD, 0.5, urgency="critical")
        filled = await self.fill(h, plan, pos)
        fenced = await h.executor.fence(plan)
        assert fenced is not None
        assert fenced.venue_order_id == filled.venue_order_id
        assert fenced.filled_size == filled.filled_size

    async def test_fill_follows_the_market_price(self, venue_harness: VenueHarness) -> None:
        h = venue_harness
        await h.set_price(h.symbol, h.price * 2)
        pos = self.position(h)
        plan = await self.plan(h, pos, ActionType.ADD, 0.5, urgency="critical")
        assert plan.reference_price == h.price * 2
        outcome = await self.fill(h, plan, pos)
        assert outcome.avg_price is not None
        assert abs(outcome.avg_price / (h.price * 2) - 1) < 0.01
