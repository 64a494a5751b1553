"""Paper venue specifics: fill prices, fees, reduce-only, IOC limits, marks, account state."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from nats.aio.client import Client
from nats.js import JetStreamContext

from intentbus.bus import Publisher, Topology
from intentbus.executor.base import VenueContext
from intentbus.schemas import (
    Direction,
    ExecutionPlan,
    ExecutionStatus,
    Mark,
    Position,
    Skip,
    SkipReason,
    build_intent,
)
from intentbus.testing import wait_for
from intentbus.venues.paper import PaperConfig, PaperExecutor

Start = Callable[..., Awaitable[PaperExecutor]]


@pytest_asyncio.fixture
async def start_paper(nc: Client, js: JetStreamContext, topology: Topology) -> AsyncIterator[Start]:
    started: list[PaperExecutor] = []

    async def start(**options: Any) -> PaperExecutor:
        paper = PaperExecutor(PaperConfig(**options))
        await paper.start(VenueContext(nc=nc, js=js, topology=topology))
        started.append(paper)
        return paper

    yield start
    for paper in started:
        await paper.stop()


def _position(size: float = 0.0, direction: Direction = Direction.LONG) -> Position:
    return Position(
        position_id="p1",
        venue="paper",
        book_id="main",
        token_contract="BTC",
        direction=direction,
        allocation_usd=10_000.0,
        size=size,
    )


async def _plan(
    paper: PaperExecutor, action: str, frac: float, position: Position, **extra: Any
) -> ExecutionPlan:
    intent = build_intent(
        action=action,
        size_frac=frac,
        position_id="p1",
        token_contract="BTC",
        token_chain="paper",
        book_id="main",
        **extra,
    )
    plan = await paper.prepare(intent, position)
    assert isinstance(plan, ExecutionPlan), plan
    return plan


async def test_market_orders_pay_slippage_and_taker_fees(start_paper: Start) -> None:
    paper = await start_paper(prices={"BTC": 100.0}, slippage_bps=10.0, taker_fee_bps=5.0)
    buy = await _plan(paper, "add", 0.5, _position(), urgency="critical")
    bought = await paper.execute(buy, _position())
    assert bought.avg_price == pytest.approx(100.1)
    assert bought.fees_usd == pytest.approx(50 * 100.1 * 5 / 10_000)
    held = _position(size=bought.filled_size)
    sell = await _plan(paper, "exit", 1.0, held, urgency="critical")
    sold = await paper.execute(sell, held)
    assert sold.avg_price == pytest.approx(99.9)
    book = await paper.account.book("BTC")
    assert book.size == 0.0
    assert book.fees_usd == pytest.approx(bought.fees_usd + sold.fees_usd)
    assert book.cash_usd == pytest.approx(50 * (99.9 - 100.1) - book.fees_usd)
    assert book.order_count == 2


async def test_post_only_pays_the_maker_fee_at_its_limit(start_paper: Start) -> None:
    paper = await start_paper(prices={"BTC": 100.0}, taker_fee_bps=5.0, maker_fee_bps=1.0)
    plan = await _plan(paper, "add", 0.5, _position(), post_only=True)
    outcome = await paper.execute(plan, _position())
    assert outcome.avg_price == 100.0
    assert outcome.fees_usd == pytest.approx(50 * 100 * 1 / 10_000)


async def test_ioc_beyond_max_slippage_is_cancelled_untraded(start_paper: Start) -> None:
    paper = await start_paper(prices={"BTC": 100.0}, slippage_bps=80.0)
    plan = await _plan(paper, "add", 0.5, _position(), urgency="critical", max_slippage_bps=20)
    outcome = await paper.execute(plan, _position())
    assert outcome.status is ExecutionStatus.ERROR
    assert outcome.filled_size == 0
    assert outcome.error is not None
    assert "IOC cancelled" in outcome.error
    assert (await paper.account.book("BTC")).size == 0.0


async def test_reduce_only_shrinks_to_the_venue_position_and_never_flips(
    start_paper: Start,
) -> None:
    paper = await start_paper(prices={"BTC": 100.0}, slippage_bps=0.0)
    buy = await _plan(paper, "add", 0.1, _position(), urgency="critical")
    await paper.execute(buy, _position())  # venue holds 10 BTC
    overstated = _position(size=25.0)  # the ledger claims more than the venue holds
    exit_plan = await _plan(paper, "exit", 1.0, overstated, urgency="critical")
    assert exit_plan.size == 25.0
    outcome = await paper.execute(exit_plan, overstated)
    assert outcome.status is ExecutionStatus.SUCCESS
    assert outcome.filled_size == 10.0
    assert (await paper.account.book("BTC")).size == 0.0
    again = await _plan(paper, "trim", 0.5, overstated, urgency="critical")
    nothing = await paper.execute(again, overstated)
    assert nothing.filled_size == 0.0
    assert (await paper.account.book("BTC")).size == 0.0


async def test_short_positions_sell_to_add_and_buy_to_close(start_paper: Start) -> None:
    paper = await start_paper(prices={"BTC": 100.0}, slippage_bps=0.0)
    short = _position(direction=Direction.SHORT)
    sell = await _plan(paper, "add", 0.2, short, urgency="critical")
    await paper.execute(sell, short)
    assert (await paper.account.book("BTC")).size == -20.0
    held = _position(size=20.0, direction=Direction.SHORT)
    cover = await _plan(paper, "exit", 1.0, held, urgency="critical")
    await paper.execute(cover, held)
    assert (await paper.account.book("BTC")).size == 0.0


async def test_marks_are_loaded_at_start_then_followed(
    js: JetStreamContext, topology: Topology, start_paper: Start
) -> None:
    publisher = Publisher(js, topology)
    now = datetime.now(UTC)
    await publisher.mark(Mark(venue="paper", symbol="ETH", price=3_000.0, at=now))
    await publisher.mark(Mark(venue="other", symbol="SOL", price=150.0, at=now))
    paper = await start_paper(prices={"BTC": 100.0})
    assert paper.marks.price("ETH") == 3_000.0  # loaded before start() returned
    assert paper.marks.price("SOL") is None  # another venue's mark
    assert paper.marks.price("BTC") == 100.0  # from the price table
    await publisher.mark(
        Mark(venue="paper", symbol="BTC", price=101.0, at=now + timedelta(seconds=1))
    )

    async def btc() -> float | None:
        return paper.marks.price("BTC")

    await wait_for(btc, until=lambda p: p == 101.0, what="the live BTC mark")


async def test_no_mark_is_a_skip(start_paper: Start) -> None:
    paper = await start_paper(prices={})
    intent = build_intent(
        action="add",
        size_frac=0.5,
        position_id="p1",
        token_contract="BTC",
        token_chain="paper",
        book_id="main",
    )
    skip = await paper.prepare(intent, _position())
    assert isinstance(skip, Skip)
    assert skip.reason == SkipReason.NO_MARK


async def test_two_executors_racing_on_one_client_order_id_fill_once(
    start_paper: Start,
) -> None:
    first = await start_paper(prices={"BTC": 100.0})
    second = await start_paper(prices={"BTC": 100.0})
    plan = await _plan(first, "add", 0.5, _position(), urgency="critical")
    a, b = await asyncio.gather(first.execute(plan, _position()), second.execute(plan, _position()))
    assert a.venue_order_id == b.venue_order_id
    book = await first.account.book("BTC")
    assert book.order_count == 1
    assert book.size == a.filled_size
    assert len(await first.account.orders()) == 1
