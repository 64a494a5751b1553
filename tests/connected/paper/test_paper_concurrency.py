"""Paper venue under concurrent requests: group commits keep arrival order and idempotency."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

from intentbus.executor.base import VenueOrder
from intentbus.schemas import OrderState, Side
from tests.connected.paper.paper_support import StartPaper, market, plan

EPOCH = datetime.fromtimestamp(0, UTC)


async def test_one_client_order_id_sent_many_times_at_once_trades_once(
    start_paper: StartPaper,
) -> None:
    paper = await start_paper(prices={"BTC": 100.0})
    order = market(Side.BUY, 1.0, 101.0)
    answers = await asyncio.gather(*(paper.executor.place(order) for _ in range(50)))
    assert len({a.venue_order_id for a in answers}) == 1
    assert {a.state for a in answers} == {OrderState.FILLED}
    assert await paper.executor.net_position("main", "BTC") == 1.0
    assert len(await paper.executor.fills_since("main", EPOCH)) == 1


async def test_a_request_sees_every_change_that_arrived_before_it(
    start_paper: StartPaper,
) -> None:
    paper = await start_paper(prices={"BTC": 100.0}, lot_size=1.0, min_notional_usd=0.0)
    ex = paper.executor
    orders = [market(Side.BUY, 1.0, 101.0) for _ in range(100)]
    calls: list[Coroutine[Any, Any, object]] = []
    for order in orders:  # sent back to back, each place followed by reads of it
        calls.append(ex.place(order))
        calls.append(ex.order_status("main", "BTC", order.client_order_id))
        calls.append(ex.fills_since("main", EPOCH))
        calls.append(ex.net_position("main", "BTC"))
    answers = await asyncio.gather(*calls)
    for index in range(100):
        placed, status, fills, net = answers[4 * index : 4 * index + 4]
        assert isinstance(placed, VenueOrder)
        assert status == placed
        assert isinstance(fills, list)
        assert len(fills) == index + 1
        assert isinstance(net, float)
        assert net == index + 1
    assert paper.server.state.journal_seq < 100  # places shared journal entries


async def test_cancels_and_places_keep_their_order(start_paper: StartPaper) -> None:
    paper = await start_paper(prices={"BTC": 110.0})
    ex = paper.executor
    resting = [plan(size=1.0, price=100.0) for _ in range(30)]
    calls = []
    for order in resting:
        calls.append(ex.place(order))
        calls.append(ex.cancel("main", "BTC", order.client_order_id))
    answers = await asyncio.gather(*calls)
    assert [a.state for a in answers] == [OrderState.WORKING, OrderState.CANCELLED] * 30
    await paper.set_mark("BTC", 90.0)
    assert await ex.net_position("main", "BTC") == 0.0
