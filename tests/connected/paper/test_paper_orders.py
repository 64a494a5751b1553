"""Paper venue orders: resting limits, depth, takers, post-only, cancel, expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from intentbus.executor.base import OrderNotFound
from intentbus.schemas import Liquidity, OrderState, OrderType, Side, TimeInForce
from intentbus.testing import wait_for
from tests.connected.paper.paper_support import StartPaper, market, plan


async def test_a_buy_limit_rests_then_fills_in_three_parts_at_its_limit(
    start_paper: StartPaper,
) -> None:
    paper = await start_paper(prices={"BTC": 110.0}, depths={"BTC": 0.5}, lot_size=0.01)
    order = plan(size=1.5, price=100.0)
    placed = await paper.executor.place(order)
    assert (placed.state, placed.filled_size) == (OrderState.WORKING, 0.0)
    for part, mark in ((1, 99.0), (2, 98.0), (3, 95.0)):
        await paper.set_mark("BTC", mark)
        status = await paper.status(order)
        assert status.filled_size == pytest.approx(0.5 * part)
        await paper.set_mark("BTC", 105.0)  # back above the limit: nothing more fills
        assert (await paper.status(order)).filled_size == pytest.approx(0.5 * part)
    done = await paper.status(order)
    assert (done.state, done.filled_size, done.avg_price) == (OrderState.FILLED, 1.5, 100.0)
    fills = await paper.executor.fills_since("main", placed.updated_at or datetime.now(UTC))
    assert [(f.size, f.price, f.liquidity) for f in fills] == [(0.5, 100.0, Liquidity.MAKER)] * 3
    assert len({f.venue_fill_id for f in fills}) == 3
    assert await paper.executor.net_position("main", "BTC") == 1.5
    seen = await paper.wait_events(order.client_order_id, fills=3)
    assert [o.state for o in paper.seen.orders(order.client_order_id)][-1] is OrderState.FILLED
    assert seen == 3


async def test_regression_a_buy_limit_below_the_mark_rests(start_paper: StartPaper) -> None:
    paper = await start_paper(prices={"BTC": 110.0})
    order = plan(side=Side.BUY, size=1.0, price=100.0)
    placed = await paper.executor.place(order)
    assert (placed.state, placed.filled_size) == (OrderState.WORKING, 0.0)
    await paper.set_mark("BTC", 101.0)  # closer, still above the limit
    status = await paper.status(order)
    assert (status.state, status.filled_size) == (OrderState.WORKING, 0.0)
    assert await paper.executor.net_position("main", "BTC") == 0.0


async def test_regression_a_sell_limit_above_the_mark_rests(start_paper: StartPaper) -> None:
    paper = await start_paper(prices={"BTC": 80.0})
    order = plan(side=Side.SELL, size=1.0, price=100.0)
    placed = await paper.executor.place(order)
    assert (placed.state, placed.filled_size) == (OrderState.WORKING, 0.0)
    await paper.set_mark("BTC", 99.0)
    assert (await paper.status(order)).filled_size == 0.0
    await paper.set_mark("BTC", 100.5)  # reaches it: fills at its limit, not at the mark
    done = await paper.status(order)
    assert (done.state, done.avg_price) == (OrderState.FILLED, 100.0)
    assert await paper.executor.net_position("main", "BTC") == -1.0


async def test_a_crossing_limit_takes_at_the_market_better_than_its_limit(
    start_paper: StartPaper,
) -> None:
    paper = await start_paper(prices={"BTC": 100.0}, taker_fee_bps=5.0, maker_fee_bps=1.0)
    buy = await paper.executor.place(plan(side=Side.BUY, size=1.0, price=105.0))
    sell = await paper.executor.place(plan(side=Side.SELL, size=1.0, price=95.0))
    assert (buy.state, buy.avg_price, buy.fees_usd) == (OrderState.FILLED, 100.0, 0.05)
    assert (sell.state, sell.avg_price) == (OrderState.FILLED, 100.0)
    fills = await paper.executor.fills_since("main", datetime.now(UTC) - timedelta(minutes=1))
    assert {f.liquidity for f in fills} == {Liquidity.TAKER}


async def test_a_crossing_limit_pays_the_slippage_but_never_beyond_its_limit(
    start_paper: StartPaper,
) -> None:
    paper = await start_paper(prices={"BTC": 100.0}, slippage_bps=10.0)
    wide = await paper.executor.place(plan(side=Side.BUY, size=1.0, price=101.0))
    assert wide.state is OrderState.FILLED
    assert wide.avg_price == pytest.approx(100.1)
    tight = await paper.executor.place(plan(side=Side.BUY, size=1.0, price=100.05))
    assert (tight.state, tight.avg_price) == (OrderState.FILLED, 100.05)
    at_mark = await paper.executor.place(plan(side=Side.SELL, size=1.0, price=100.0))
    assert (at_mark.state, at_mark.avg_price) == (OrderState.FILLED, 100.0)
    elsewhere = await paper.executor.place(market(Side.BUY, 1.0, 101.0, venue="other"))
    assert elsewhere.state is OrderState.REJECTED


async def test_market_orders_fill_within_their_protection_only(start_paper: StartPaper) -> None:
    paper = await start_paper(prices={"BTC": 100.0}, slippage_bps=10.0, taker_depths={"BTC": 1.0})
    within = await paper.executor.place(market(Side.BUY, 1.0, 100.5))
    assert (within.state, within.filled_size) == (OrderState.FILLED, 1.0)
    assert within.avg_price == pytest.approx(100.1)  # the mark moved against the taker
    beyond = await paper.executor.place(market(Side.BUY, 1.0, 100.05))
    assert (beyond.state, beyond.filled_size) == (OrderState.CANCELLED, 0.0)
    assert "IOC" in beyond.reason
    partial = await paper.executor.place(market(Side.SELL, 2.5, 99.0))
    assert (partial.state, partial.filled_size) == (OrderState.CANCELLED, 1.0)
    assert partial.avg_price == pytest.approx(99.9)
    limit_ioc = plan(side=Side.BUY, size=1.0, price=99.0, tif=TimeInForce.IOC)
    missed = await paper.executor.place(limit_ioc)
    assert (missed.state, missed.filled_size) == (OrderState.CANCELLED, 0.0)
    await paper.set_mark("BTC", 98.0)  # an IOC never rests
    assert (await paper.status(limit_ioc)).filled_size == 0.0
    assert await paper.executor.net_position("main", "BTC") == 0.0


async def test_post_only_that_would_cross_is_rejected(start_paper: StartPaper) -> None:
    paper = await start_paper(prices={"BTC": 100.0}, maker_fee_bps=-1.0)
    crossing = plan(size=1.0, price=100.0, tif=TimeInForce.POST_ONLY)
    refused = await paper.executor.place(crossing)
    assert (refused.state, refused.filled_size) == (OrderState.REJECTED, 0.0)
    assert "post-only" in refused.reason
    maker = plan(size=1.0, price=99.0, tif=TimeInForce.POST_ONLY)
    assert (await paper.executor.place(maker)).state is OrderState.WORKING
    await paper.set_mark("BTC", 98.5)
    done = await paper.status(maker)
    assert (done.state, done.avg_price) == (OrderState.FILLED, 99.0)
    assert done.fees_usd == pytest.approx(-99.0 * 1 / 10_000)  # a rebate
    market_post_only = plan(order_type=OrderType.MARKET, tif=TimeInForce.POST_ONLY)
    assert (await paper.executor.place(market_post_only)).state is OrderState.REJECTED


async def test_cancel(start_paper: StartPaper) -> None:
    paper = await start_paper(prices={"BTC": 110.0})
    order = plan(size=1.0, price=100.0)
    await paper.executor.place(order)
    cancelled = await paper.executor.cancel("main", "BTC", order.client_order_id)
    assert cancelled.state is OrderState.CANCELLED
    await paper.set_mark("BTC", 90.0)  # would have filled
    assert (await paper.status(order)).filled_size == 0.0
    again = await paper.executor.cancel("main", "BTC", order.client_order_id)
    assert again.state is OrderState.CANCELLED
    with pytest.raises(OrderNotFound):
        await paper.executor.cancel("main", "BTC", "0x" + "f" * 32)
    with pytest.raises(OrderNotFound):
        await paper.executor.order_status("main", "BTC", "0x" + "f" * 32)
    await paper.wait_events(order.client_order_id, orders=2)


async def test_the_venue_expires_orders_at_valid_until(start_paper: StartPaper) -> None:
    paper = await start_paper(prices={"BTC": 110.0})
    soon = plan(size=1.0, price=100.0, valid_until=datetime.now(UTC) + timedelta(seconds=0.3))
    assert (await paper.executor.place(soon)).state is OrderState.WORKING
    expired = await paper.wait_order(soon, lambda o: o.state.is_final, "expiry")
    assert (expired.state, expired.filled_size) == (OrderState.EXPIRED, 0.0)
    assert expired.updated_at is not None
    assert soon.valid_until is not None
    assert expired.updated_at >= soon.valid_until
    await paper.set_mark("BTC", 90.0)
    assert (await paper.status(soon)).filled_size == 0.0
    late = plan(size=1.0, price=95.0, valid_until=datetime.now(UTC) - timedelta(seconds=1))
    arrived_late = await paper.executor.place(late)
    assert (arrived_late.state, arrived_late.filled_size) == (OrderState.EXPIRED, 0.0)
    await paper.wait_events(soon.client_order_id, orders=2)  # working, expired


async def test_one_client_order_id_trades_once(start_paper: StartPaper) -> None:
    paper = await start_paper(prices={"BTC": 100.0})
    order = market(Side.BUY, 1.0, 101.0)
    first = await paper.executor.place(order)
    second = await paper.executor.place(order)
    bigger = await paper.executor.place(market(Side.BUY, 5.0, 101.0, cloid=order.client_order_id))
    assert first == second == bigger
    assert first.venue_order_id is not None
    assert await paper.executor.net_position("main", "BTC") == 1.0
    since = datetime.now(UTC) - timedelta(minutes=1)
    assert len(await paper.executor.fills_since("main", since)) == 1


async def test_fenced_ids_are_never_placed(start_paper: StartPaper) -> None:
    paper = await start_paper(prices={"BTC": 100.0})
    order = market(Side.BUY, 1.0, 101.0)
    assert await paper.executor.fence("main", "BTC", order.client_order_id) is None
    late = await paper.executor.place(order)
    assert (late.state, late.filled_size) == (OrderState.REJECTED, 0.0)
    with pytest.raises(OrderNotFound):
        await paper.status(order)
    assert await paper.executor.fence("main", "BTC", order.client_order_id) is None
    placed = market(Side.BUY, 1.0, 101.0)
    filled = await paper.executor.place(placed)
    assert await paper.executor.fence("main", "BTC", placed.client_order_id) == filled
    assert await paper.executor.net_position("main", "BTC") == 1.0


async def test_many_orders_fill_and_expire_in_bounded_steps(start_paper: StartPaper) -> None:
    paper = await start_paper(prices={"BTC": 110.0}, lot_size=1.0, min_notional_usd=0.0)
    resting = [plan(size=1.0, price=100.0) for _ in range(250)]
    for order in resting:
        await paper.executor.place(order)
    await paper.set_mark("BTC", 99.0)  # crosses 250: 200 fill now (one journal entry)
    assert await paper.executor.net_position("main", "BTC") == 200.0
    await paper.set_mark("BTC", 98.0)
    assert await paper.executor.net_position("main", "BTC") == 250.0
    soon = datetime.now(UTC) + timedelta(seconds=1)
    expiring = [plan(size=1.0, price=90.0, valid_until=soon) for _ in range(250)]
    for order in expiring:
        await paper.executor.place(order)

    async def expired() -> int:
        orders = await paper.executor.client.orders(live_only=True)
        return len(orders)

    await wait_for(expired, until=lambda live: live == 0, what="250 expiries")
    states = {(await paper.status(order)).state for order in expiring}
    assert states == {OrderState.EXPIRED}
