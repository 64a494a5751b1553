"""Orders that live, end to end: ledger, paper venue and executor as processes.

Each case of the issue's "Done when": a resting ADD filling in three parts with the
ledger following each fill; a deadline passing while an order rests; an EXIT that
cancels a resting ADD; an executor SIGKILLed while its order rests and fills.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from nats.aio.client import Client

from intentbus.bus import LedgerError, LedgerUnavailable, PositionClient, Publisher
from intentbus.schemas import (
    ActionType,
    ExecutionResult,
    ExecutionStatus,
    Mark,
    OpenPosition,
    OrderState,
    OrderUpdate,
    Position,
    build_intent,
    results_stream_decoder,
)
from intentbus.testing import wait_for
from intentbus.testing.system import ProcessSystem
from tests.e2e.system_checks import books, fills, stream_messages, wait_for_ledger

pytestmark = pytest.mark.timeout(120)

DEPTH = "BTC:0.05"  # 0.05 BTC per mark update: an order of 0.15 fills in three parts


async def start(system: ProcessSystem, nc: Client, *positions: str) -> PositionClient:
    """Start the three services and open BTC positions worth 0.15 BTC at 0.5 x allocation."""
    system.start_ledger()
    system.start_paper_venue("paper-venue", "BTC:65000", f"depths={DEPTH}", "slippage_bps=0")
    system.start_paper_executor()
    client = PositionClient(nc, system.topology, timeout_s=1.0)
    await wait_for_ledger(client, timeout_s=30)
    for n, pid in enumerate(positions):
        await client.open(
            OpenPosition(
                position_id=pid,
                venue="paper",
                book_id=f"book-{n}",
                token_contract="BTC",
                allocation_usd=19_500.0,  # ADD 0.5 at the 65,000 mark: 0.15 BTC
            )
        )
    return client


async def publish(
    nc: Client, system: ProcessSystem, pid: str, book: str, action: ActionType, **kw: object
) -> str:
    one = build_intent(
        action=action,
        size_frac=0.5 if action is ActionType.ADD else 1.0,
        position_id=pid,
        token_contract="BTC",
        token_chain="paper",
        book_id=book,
        **kw,  # type: ignore[arg-type]
    )
    await Publisher(nc.jetstream(), system.topology).intent(one)
    return one.intent_id


async def messages(nc: Client, system: ProcessSystem) -> list[ExecutionResult | OrderUpdate]:
    topology = system.topology
    raw = await stream_messages(nc.jetstream(), topology.results_stream, topology.results_filter())
    return [results_stream_decoder().decode(m) for m in raw]


async def resting(nc: Client, system: ProcessSystem, intent_id: str) -> float:
    """Wait until the intent's order rests; return its limit price."""

    async def update() -> OrderUpdate | None:
        found = [m for m in await messages(nc, system) if isinstance(m, OrderUpdate)]
        return next((u for u in found if u.intent_id == intent_id), None)

    found = await wait_for(update, until=lambda u: u is not None, what="the resting order")
    assert found is not None
    assert found.order_state is OrderState.WORKING
    assert found.price is not None
    return found.price


async def result(nc: Client, system: ProcessSystem, intent_id: str) -> ExecutionResult:
    async def final() -> ExecutionResult | None:
        found = [m for m in await messages(nc, system) if isinstance(m, ExecutionResult)]
        return next((r for r in found if r.intent_id == intent_id), None)

    found = await wait_for(final, until=lambda r: r is not None, timeout_s=40, what="the result")
    assert found is not None
    return found


async def mark(nc: Client, system: ProcessSystem, price: float) -> None:
    await Publisher(nc.jetstream(), system.topology).mark(
        Mark(venue="paper", symbol="BTC", price=price, at=datetime.now(UTC))
    )


async def position(
    client: PositionClient, pid: str, until: Callable[[Position | None], bool] | None = None
) -> Position:
    async def read() -> Position | None:
        try:
            return await client.get(pid)
        except (LedgerUnavailable, LedgerError):
            return None

    found = await wait_for(read, until=until or (lambda p: p is not None), what=f"position {pid}")
    assert found is not None
    return found


def fills_at_least(count: int) -> Callable[[Position | None], bool]:
    """Return a check that a position has had at least ``count`` fills applied."""
    return lambda p: p is not None and p.fills_applied >= count


async def test_a_resting_add_fills_in_three_parts_and_the_ledger_follows_each(
    system: ProcessSystem, nc: Client
) -> None:
    client = await start(system, nc, "pos-a")
    add = await publish(nc, system, "pos-a", "book-0", ActionType.ADD, urgency="low")
    limit = await resting(nc, system, add)
    working = await position(client, "pos-a", lambda p: p is not None and p.working_orders == 1)
    assert working.size == 0.0
    assert working.working_size == pytest.approx(0.15)
    sizes = []
    for part in (1, 2, 3):
        await mark(nc, system, limit - part)  # each update crosses it: depth fills a part
        seen = await position(client, "pos-a", fills_at_least(part))
        sizes.append(seen.size)
    final = await result(nc, system, add)
    assert sizes == pytest.approx([0.05, 0.10, 0.15])
    assert (final.status, final.order_state, final.fill_count) == (
        ExecutionStatus.SUCCESS,
        OrderState.FILLED,
        3,
    )
    assert final.avg_price == pytest.approx(limit)  # resting fills happen at the limit
    done = await position(client, "pos-a", lambda p: p is not None and p.working_orders == 0)
    assert done.size == pytest.approx(0.15)
    assert done.avg_entry_price == pytest.approx(limit)


async def test_an_order_resting_past_its_deadline_is_cancelled_at_the_venue(
    system: ProcessSystem, nc: Client
) -> None:
    client = await start(system, nc, "pos-d")
    add = await publish(
        nc, system, "pos-d", "book-0", ActionType.ADD, urgency="low", ttl=timedelta(seconds=5)
    )
    limit = await resting(nc, system, add)
    await mark(nc, system, limit - 1)  # one part of three fills
    await position(client, "pos-d", lambda p: p is not None and p.fills_applied == 1)
    final = await result(nc, system, add)
    assert final.status is ExecutionStatus.PARTIAL
    assert final.order_state in (OrderState.CANCELLED, OrderState.EXPIRED)
    await mark(nc, system, limit - 2)  # nothing rests any more: nothing fills
    state = await books(nc, system.topology, ("BTC",))
    assert state.venue[("book-0", "BTC")] == pytest.approx(0.05) == final.filled_size
    assert state.ledger == state.venue


async def test_an_exit_cancels_a_resting_add_and_leaves_the_venue_flat(
    system: ProcessSystem, nc: Client
) -> None:
    client = await start(system, nc, "pos-x")
    add = await publish(nc, system, "pos-x", "book-0", ActionType.ADD, urgency="low")
    limit = await resting(nc, system, add)
    await mark(nc, system, limit - 1)
    await position(client, "pos-x", lambda p: p is not None and p.fills_applied == 1)
    exit_ = await publish(nc, system, "pos-x", "book-0", ActionType.EXIT, urgency="critical")
    cancelled, exited = await result(nc, system, add), await result(nc, system, exit_)
    assert cancelled.status is ExecutionStatus.PARTIAL
    assert exited.filled_size == pytest.approx(cancelled.filled_size)
    state = await books(nc, system.topology, ("BTC",))
    assert state.venue[("book-0", "BTC")] == 0
    closed = await position(client, "pos-x", lambda p: p is not None and p.closed)
    assert closed.size == 0


async def test_fills_while_the_executor_is_killed_reach_the_ledger_once(
    system: ProcessSystem, nc: Client
) -> None:
    client = await start(system, nc, "pos-k")
    add = await publish(nc, system, "pos-k", "book-0", ActionType.ADD, urgency="low")
    limit = await resting(nc, system, add)
    system.processes.kill("executor")  # SIGKILL while the order rests
    for part in (1, 2, 3):  # it fills completely while no executor runs
        await mark(nc, system, limit - part)
    system.start_paper_executor()
    final = await result(nc, system, add)
    stored = [f for f in await fills(nc.jetstream(), system.topology) if f.intent_id == add]
    assert len(stored) == len({f.venue_fill_id for f in stored}) == 3
    assert final.order_state is OrderState.FILLED
    done = await position(client, "pos-k", lambda p: p is not None and p.fills_applied == 3)
    assert done.size == pytest.approx(0.15)
    state = await books(nc, system.topology, ("BTC",))
    assert state.ledger == state.venue
