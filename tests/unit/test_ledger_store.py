"""Both stores (SQLite, PostgreSQL) and the one-transaction apply of fills, updates and results."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from decimal import Decimal

import msgspec
import pytest

from intentbus.ledger.applier import (
    Applied,
    ApplyOne,
    Duplicate,
    Outcome,
    Rejected,
    Waiting,
    apply_message,
    apply_messages,
)
from intentbus.ledger.fills import apply_fill_message
from intentbus.ledger.opening import OpenConflict, SymbolTaken, open_position
from intentbus.ledger.results import apply_results_message
from intentbus.ledger.storage import LedgerStore, LedgerTransaction
from intentbus.ledger.stores import store_for
from intentbus.schemas import ActionType, Direction, ExecutionStatus, Side, encode
from tests.ledger_messages import fill, open_request, result, working
from tests.ledger_sql import STORE_ERRORS, refuse_fill, size_column

D = Decimal


@pytest.fixture
async def store(ledger_db: str) -> AsyncIterator[LedgerStore]:
    opened = store_for(ledger_db)
    await opened.open()
    await open_position(opened, open_request())
    yield opened
    await opened.close()


async def _fill(s: LedgerStore, message: msgspec.Struct, seq: int) -> Outcome:
    return await apply_message(s, apply_fill_message, encode(message), seq)


async def _results(s: LedgerStore, message: msgspec.Struct, seq: int) -> Outcome:
    return await apply_message(s, apply_results_message, encode(message), seq)


async def _position(s: LedgerStore, position_id: str = "p1") -> tuple[Decimal, Decimal, Direction]:
    state = await s.get(position_id)
    assert state is not None
    return state.size, state.avg_entry_price, state.direction


async def test_a_fill_is_applied_once_and_stored_exactly(
    store: LedgerStore, ledger_db: str
) -> None:
    first = fill(1, size=0.1, price=30_000.5, fee=0.01)
    assert isinstance(await _fill(store, first, 1), Applied)
    assert await _fill(store, first, 2) == Duplicate(first.fill_id)
    state = await store.get("p1")
    assert state is not None
    assert (state.size, state.avg_entry_price, state.fees_usd) == (
        D("0.1"),
        D("30000.5"),
        D("0.01"),
    )
    assert state.fills_applied == 1
    assert await store.applied_seq("fills") == 2
    record = await store.fill(first.fill_id)
    assert record is not None
    assert (record.fills_seq, record.size_after) == (1, D("0.1"))
    assert size_column(ledger_db) in {("text", "0.1"), ("numeric", "0.1")}  # exact, not REAL


async def test_a_venue_closed_pnl_that_differs_from_the_ledgers_is_noted(
    store: LedgerStore,
) -> None:
    await _fill(store, fill(1, size=2.0, price=100.0), 1)
    agreeing = await _fill(store, fill(2, Side.SELL, 1.0, 110.0, closed_pnl=10.0), 2)
    assert agreeing == Applied(fill(2).fill_id, ())
    differing = await _fill(store, fill(3, Side.SELL, 1.0, 110.0, closed_pnl=9.5), 3)
    assert differing == Applied(fill(3).fill_id, ("venue closed_pnl 9.5, ledger realized 10.00",))
    state = await store.get("p1")
    assert state is not None
    assert state.realized_pnl_usd == D(20)


async def test_a_fill_for_an_unknown_position_or_currency_is_refused(store: LedgerStore) -> None:
    outcome = await _fill(store, fill(1, position="ghost"), 1)
    assert isinstance(outcome, Rejected)
    assert (
        "position ghost (venue paper, book main, symbol BTC), which the ledger does not know"
        in (outcome.error)
    )
    assert "intentbus ledger --rebuild" in outcome.error
    assert await store.get("ghost") is None
    foreign = await _fill(store, fill(2, fee=1.0, fee_currency="HYPE"), 2)
    assert isinstance(foreign, Rejected)
    assert "fee currency 'HYPE' is not USD or USDC" in foreign.error
    other = await _fill(store, fill(3, symbol="ETH"), 3)
    assert isinstance(other, Rejected)
    assert "symbol 'ETH' but position p1 has 'BTC'" in other.error
    assert await store.applied_seq("fills") == 3
    assert await store.fill(fill(2).fill_id) is None  # a corrected copy is applied later
    assert await _position(store) == (D(0), D(0), Direction.LONG)


async def test_a_result_waits_for_its_fills_and_then_is_checked(store: LedgerStore) -> None:
    summary = result(fill_count=2, filled_size=3.0, fees_usd=0.3, last_fill_seq=2)
    assert await _results(store, summary, 1) == Waiting(summary.result_id, 2, 0)
    assert await store.applied_seq("results") == 0
    assert await store.summary(summary.result_id) is None
    await _fill(store, fill(1, size=1.0, fee=0.1), 1)
    await _fill(store, fill(2, size=2.0, price=130.0, fee=0.2), 2)
    assert isinstance(await _results(store, summary, 1), Applied)
    assert await _results(store, summary, 2) == Duplicate(summary.result_id)
    stored = await store.summary(summary.result_id)
    assert stored is not None
    assert (stored.fill_count, stored.filled_size, stored.fees_usd) == (2, D(3), D("0.3"))
    assert not stored.mismatch
    assert await _position(store) == (D(3), D(120), Direction.LONG)
    state = await store.get("p1")
    assert state is not None
    assert state.results_applied == 1


async def test_a_result_disagreeing_with_the_fills_is_flagged_and_a_late_fill_too(
    store: LedgerStore,
) -> None:
    await _fill(store, fill(1, size=1.0), 1)
    summary = result(fill_count=2, filled_size=2.0, last_fill_seq=1)
    outcome = await _results(store, summary, 1)
    assert isinstance(outcome, Applied)
    stored = await store.summary(summary.result_id)
    assert stored is not None
    assert stored.mismatch
    assert stored.notes == (
        "fill_count: result says 2, ledger applied 1",
        "filled_size: result says 2.0, ledger applied 1.0",
    )
    clean = result("i2", fill_count=0, last_fill_seq=0)
    await _results(store, clean, 2)
    assert [s.result_id for s in await store.summaries(mismatch_only=True)] == [summary.result_id]
    await _fill(store, fill(2, intent="i2", size=0.5), 2)  # after i2's summary said "no fills"
    late = await store.summary(clean.result_id)
    assert late is not None
    assert late.mismatch
    assert late.notes[-1] == f"fill {fill(2).fill_id} at FILLS seq 2 is after last_fill_seq 0"


async def test_working_orders_show_open_size_until_the_final_result(store: LedgerStore) -> None:
    await _fill(store, fill(1, intent="i1", size=0.5), 1)  # a fill may come before its update
    assert isinstance(await _results(store, working("i1", size=2.0), 1), Applied)
    assert await _results(store, working("i1", size=2.0), 2) == Duplicate(working("i1").update_id)
    [order] = await store.working_orders("p1")
    assert (order.size, order.filled, order.open_size) == (D(2), D("0.5"), D("1.5"))
    await _fill(store, fill(2, intent="i1", size=1.0), 2)
    [order] = await store.working_orders()
    assert order.open_size == D("0.5")
    await _results(store, result("i1", fill_count=2, filled_size=1.5, last_fill_seq=2), 3)
    assert await store.working_orders() == []
    late_update = await _results(store, working("i1"), 4)
    assert isinstance(late_update, Applied)
    assert await store.working_orders() == []
    ghost = await _results(store, working("i9", position="ghost"), 5)
    assert isinstance(ghost, Rejected)
    assert "position ghost, which the ledger does not know" in ghost.error


async def test_an_exit_of_a_flat_position_closes_it_and_frees_the_symbol(
    store: LedgerStore,
) -> None:
    await _fill(store, fill(1, size=1.0), 1)
    await _results(store, result("i1", fill_count=1, filled_size=1.0, last_fill_seq=1), 1)
    with pytest.raises(SymbolTaken) as taken:
        await open_position(store, open_request("p2"))
    assert str(taken.value) == (
        "cannot open position p2: position p1 is already open on venue paper, book main, "
        "symbol BTC (one open position per venue, book and symbol; exit p1 first)"
    )
    await _results(store, working("i2", Side.SELL, 1.0), 2)
    await _fill(store, fill(2, Side.SELL, 1.0, 110.0, intent="i2"), 2)
    exit_result = result(
        "i2", action=ActionType.EXIT, side=Side.SELL, fill_count=1, filled_size=1.0,
        last_fill_seq=2,
    )  # fmt: skip
    await _results(store, exit_result, 3)
    state = await store.get("p1")
    assert state is not None
    assert state.closed
    assert state.realized_pnl_usd == D(10)
    stored = await store.summary(exit_result.result_id)
    assert stored is not None
    assert stored.closes
    second = await open_position(store, open_request("p2"))
    assert not second.closed
    assert await open_position(store, open_request("p1")) == state  # same terms: a no-op
    with pytest.raises(OpenConflict, match=r"allocation_usd is 1000\.0, requested 5\.0"):
        await open_position(store, open_request("p1", allocation=5.0))


async def test_a_flat_position_never_exited_still_holds_its_symbol(store: LedgerStore) -> None:
    await _fill(store, fill(1, size=1.0), 1)
    await _fill(store, fill(2, Side.SELL, size=1.0, intent="i2"), 2)
    await _results(store, result("i2", action=ActionType.TRIM, fill_count=1, filled_size=1.0,
                           last_fill_seq=2), 1)  # fmt: skip
    assert (await _position(store))[0] == 0
    with pytest.raises(SymbolTaken):
        await open_position(store, open_request("p2"))
    skipped = result("i3", action=ActionType.EXIT, status=ExecutionStatus.SKIPPED, side=None)
    await _results(store, skipped, 2)  # nothing to close: flat as of the last result's fills
    state = await store.get("p1")
    assert state is not None
    assert state.closed


async def test_an_exit_with_a_working_order_or_not_flat_does_not_close(store: LedgerStore) -> None:
    await _fill(store, fill(1, size=2.0), 1)
    await _results(store, result("i1", fill_count=1, filled_size=2.0, last_fill_seq=1), 1)
    cancelled = result("i2", action=ActionType.EXIT, status=ExecutionStatus.CANCELLED)
    await _results(store, cancelled, 2)
    state = await store.get("p1")
    assert state is not None
    assert not state.closed  # still 2 as of the last result's fills
    await _fill(store, fill(2, Side.SELL, 2.0, intent="i3"), 2)
    await _results(store, working("i4", size=1.0), 3)
    exit_result = result("i3", action=ActionType.EXIT, fill_count=1, filled_size=2.0,
                         last_fill_seq=2)  # fmt: skip
    await _results(store, exit_result, 4)
    state = await store.get("p1")
    assert state is not None
    assert not state.closed  # i4 is still working


async def _run(s: LedgerStore, steps: list[tuple[ApplyOne, msgspec.Struct, int]]) -> None:
    for apply, message, seq in steps:
        outcome = await apply_message(s, apply, encode(message), seq)
        assert not isinstance(outcome, Waiting | Rejected), outcome


async def test_closing_is_judged_at_the_results_fills_not_at_how_far_fills_got(
    ledger_db: str,
) -> None:
    exit_result = result("i1", action=ActionType.EXIT, side=Side.SELL, fill_count=1,
                         filled_size=1.0, last_fill_seq=2)  # fmt: skip
    fills: list[tuple[ApplyOne, msgspec.Struct, int]] = [
        (apply_fill_message, fill(1, size=1.0, intent="i0"), 1),
        (apply_fill_message, fill(2, Side.SELL, 1.0, intent="i1"), 2),
        (apply_fill_message, fill(3, size=1.0, intent="stray"), 3),
    ]
    results: list[tuple[ApplyOne, msgspec.Struct, int]] = [(apply_results_message, exit_result, 1)]
    views = []
    for n, order in enumerate((fills[:2] + results + fills[2:], fills + results)):
        s = store_for(ledger_db)
        if n:  # the second order in a new ledger, the first kept aside
            assert await s.set_aside() is not None
        await s.open()
        await open_position(s, open_request())
        await _run(s, order)
        [position] = await s.list()
        [summary] = await s.summaries()
        views.append((replace(position, opened_at=None, updated_at=None), summary.closes))
        await s.close()
    live, rebuilt = views
    assert live == rebuilt
    assert live[0].closed
    assert live[0].size == 1  # the stray fill after the close: applied and noted
    assert live[1]


async def test_a_batch_applies_in_order_and_stops_at_a_waiting_result(
    store: LedgerStore,
) -> None:
    await _fill(store, fill(1, size=1.0), 1)
    messages = [
        (encode(working("i1")), 1),
        (encode(working("i1")), 2),
        (b'{"schema": "intentbus.result.v2", "result_id": 5}', 3),
        (encode(result("i1", fill_count=1, filled_size=1.0, last_fill_seq=1)), 4),
        (encode(result("i2", fill_count=1, filled_size=1.0, last_fill_seq=7)), 5),
        (encode(result("i3")), 6),
    ]
    outcomes = await apply_messages(store, apply_results_message, messages)
    assert [type(o) for o in outcomes] == [Applied, Duplicate, Rejected, Applied, Waiting]
    assert await store.applied_seq("results") == 4
    assert await store.summary(result("i3").result_id) is None


async def test_a_store_failure_in_a_batch_applies_nothing_of_it(
    store: LedgerStore, ledger_db: str
) -> None:
    await _fill(store, fill(1), 1)
    refuse_fill(ledger_db, fill(3).fill_id)
    batch = [(encode(fill(n)), n) for n in (2, 3, 4)]
    with pytest.raises(STORE_ERRORS, match="disk says no"):
        await apply_messages(store, apply_fill_message, batch)
    assert await store.fill(fill(2).fill_id) is None
    assert await store.applied_seq("fills") == 1
    assert (await _position(store))[0] == 1


async def test_the_database_keeps_each_fill_and_result_id_once(store: LedgerStore) -> None:
    await _fill(store, fill(1, size=1.0), 1)
    await _results(store, result("i1", fill_count=1, filled_size=1.0, last_fill_seq=1), 1)
    applied = await store.fill(fill(1).fill_id)
    stored = await store.summary(result("i1").result_id)
    assert applied is not None
    assert stored is not None
    with pytest.raises(STORE_ERRORS, match=r"UNIQUE constraint|duplicate key"):
        await _move_and_record(store, lambda tx: tx.record_fill(replace(applied, fills_seq=2)))
    with pytest.raises(STORE_ERRORS, match=r"UNIQUE constraint|duplicate key"):
        await _move_and_record(store, lambda tx: tx.record_summary(replace(stored, results_seq=2)))
    assert (await store.applied_seq("fills"), await store.applied_seq("results")) == (1, 1)
    assert (await _position(store))[0] == 1  # rolled back with the repeated id


async def _move_and_record(
    store: LedgerStore, record: Callable[[LedgerTransaction], Awaitable[None]]
) -> None:
    """In one transaction: advance both sequences, move p1, then ``record`` an id."""
    async with store.transaction() as tx:
        await tx.advance_seq("fills", 2)
        await tx.advance_seq("results", 2)
        state = await tx.load("p1")
        assert state is not None
        await tx.save(replace(state, size=D(5)))
        await record(tx)
