"""The ledger's in-memory position view equals what each store (SQLite, PostgreSQL) committed."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any, cast

import msgspec
import pytest

from intentbus.ledger.accounting import PositionState
from intentbus.ledger.applier import Applied, apply_message, apply_messages
from intentbus.ledger.fills import apply_fill_message
from intentbus.ledger.opening import open_position
from intentbus.ledger.results import apply_results_message
from intentbus.ledger.storage import LedgerStore, WorkingOrder
from intentbus.ledger.stores import store_for
from intentbus.ledger.view import PositionView
from intentbus.schemas import ActionType, OrderUpdate, Side, encode
from tests.ledger_messages import fill, open_request, result, working
from tests.ledger_sql import STORE_ERRORS, refuse_fill

POSITIONS = ("p1", "p2")
I1_DONE = result("i1", fill_count=2, filled_size=2.0, fees_usd=0.02, last_fill_seq=2)


@pytest.fixture
async def store(ledger_db: str) -> AsyncIterator[LedgerStore]:
    opened = store_for(ledger_db)
    await opened.open()
    yield opened
    await opened.close()


async def _committed(
    store: LedgerStore, position_id: str
) -> tuple[PositionState, list[WorkingOrder]] | None:
    state = await store.get(position_id)
    return None if state is None else (state, await store.working_orders(position_id))


async def _same_as_store(
    view: PositionView, store: LedgerStore, ids: tuple[str, ...] = POSITIONS
) -> None:
    for position_id in ids:
        assert await view.get(position_id) == await _committed(store, position_id)


def _eth(update: OrderUpdate) -> OrderUpdate:
    return msgspec.structs.replace(update, token_contract="ETH")


def _exit_result(intent: str, *, filled: float, last_fill_seq: int) -> msgspec.Struct:
    return result(
        intent,
        action=ActionType.EXIT,
        side=Side.SELL,
        fill_count=1,
        filled_size=filled,
        last_fill_seq=last_fill_seq,
    )


async def test_the_view_answers_what_the_store_has_committed(store: LedgerStore) -> None:
    view = PositionView(store)
    await _same_as_store(view, store, (*POSITIONS, "never-opened"))  # none opened: none held
    await open_position(view, open_request())  # p1 on BTC
    await open_position(view, open_request("p2", symbol="ETH"))
    await _same_as_store(view, store)
    steps: list[tuple[Any, msgspec.Struct, int]] = [
        (apply_results_message, working("i1", size=2.0), 1),
        (apply_fill_message, fill(1, intent="i1", size=0.5), 1),
        (apply_results_message, _eth(working("i2", position="p2", side=Side.SELL)), 2),
        (apply_fill_message, fill(2, intent="i1", size=1.5, price=101.0, fee=0.02), 2),
        (apply_results_message, I1_DONE, 3),
        (apply_fill_message, fill(3, Side.SELL, intent="i2", position="p2", symbol="ETH"), 3),
        (apply_fill_message, fill(4, Side.SELL, 2.0, 105.0, intent="i3"), 4),
        (apply_results_message, _exit_result("i3", filled=2.0, last_fill_seq=4), 4),
    ]
    for apply, message, seq in steps:
        assert isinstance(await apply_message(view, apply, encode(message), seq), Applied)
        await _same_as_store(view, store)
    found = await view.get("p1")
    assert found is not None
    assert found[0].closed  # exited flat
    assert view.loads == 3  # the three misses before the opens; then all from memory
    assert view.hits > 10


async def test_a_failed_batch_leaves_memory_as_the_store_has_it(
    store: LedgerStore, ledger_db: str
) -> None:
    view = PositionView(store)
    await open_position(view, open_request())
    await apply_message(view, apply_fill_message, encode(fill(1)), 1)
    held = await view.get("p1")
    refuse_fill(ledger_db, fill(3).fill_id)
    batch = [(encode(fill(n)), n) for n in (2, 3, 4)]
    with pytest.raises(STORE_ERRORS, match="disk says no"):
        await apply_messages(view, apply_fill_message, batch)
    assert await view.get("p1") == held == await _committed(store, "p1")


class _HeldReads:
    """Delegate to a store; a held read returns what it read only once released."""

    def __init__(self, store: LedgerStore) -> None:
        self._store = store
        self.read = asyncio.Event()
        self.release = asyncio.Event()
        self.hold = False

    async def get(self, position_id: str) -> PositionState | None:
        state = await self._store.get(position_id)
        if self.hold:
            self.read.set()
            await self.release.wait()
        return state

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


async def test_a_read_that_overlaps_a_commit_is_not_kept(store: LedgerStore) -> None:
    held_reads = _HeldReads(store)
    view = PositionView(cast(LedgerStore, held_reads))
    await open_position(store, open_request())  # opened behind the view: not held yet
    held_reads.hold = True
    slow = asyncio.create_task(view.get("p1"))
    await held_reads.read.wait()  # it read size 0 ...
    await apply_message(view, apply_fill_message, encode(fill(1, size=0.5)), 1)  # ... then this
    held_reads.hold = False
    held_reads.release.set()
    stale = await slow
    assert stale is not None
    assert stale[0].size == 0  # what it read, returned as it was
    fresh = await view.get("p1")
    assert fresh == await _committed(store, "p1")
    assert fresh is not None
    assert fresh[0].size == Decimal("0.5")


class _CountingStore:
    """Delegate to a store; count the calls its transactions receive, by name."""

    def __init__(self, store: LedgerStore) -> None:
        self._store = store
        self.calls: Counter[str] = Counter()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        async with self._store.transaction() as tx:
            yield _CountingTransaction(tx, self.calls)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class _CountingTransaction:
    def __init__(self, tx: Any, calls: Counter[str]) -> None:
        self._tx = tx
        self._calls = calls

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._tx, name)

        async def counted(*args: Any) -> Any:
            self._calls[name] += 1
            return await method(*args)

        return counted


async def test_a_batch_loads_held_positions_from_memory_and_writes_its_sequence_once(
    store: LedgerStore, ledger_db: str
) -> None:
    counting = _CountingStore(store)
    view = PositionView(cast(LedgerStore, counting))
    await open_position(view, open_request())  # created by the view: held from here on
    counting.calls.clear()
    batch = [(encode(fill(n, size=float(n))), n) for n in (1, 2, 3)]
    outcomes = await apply_messages(view, apply_fill_message, batch)
    assert all(isinstance(outcome, Applied) for outcome in outcomes)
    assert counting.calls["load"] == 0
    assert counting.calls["advance_seq"] == 1  # at 3, once, before COMMIT
    assert await store.applied_seq("fills") == 3
    await _same_as_store(view, store, ("p1",))
    # A failed batch writes no sequence and leaves the view's as committed.
    refuse_fill(ledger_db, fill(5).fill_id)
    with pytest.raises(STORE_ERRORS, match="disk says no"):
        await apply_messages(view, apply_fill_message, [(encode(fill(n)), n) for n in (4, 5)])
    assert await store.applied_seq("fills") == 3
    async with view.transaction() as tx:
        assert await tx.applied_seq("fills") == 3
        await tx.advance_seq("fills", 4)
        assert await tx.applied_seq("fills") == 4  # what it handled, before it is written
        await tx.advance_seq("fills", 2)  # never lowered
    assert await store.applied_seq("fills") == 4
    await _same_as_store(view, store, ("p1",))


async def test_a_held_position_spares_the_working_order_statements_only_when_it_has_none(
    store: LedgerStore,
) -> None:
    counting = _CountingStore(store)
    view = PositionView(cast(LedgerStore, counting))
    await open_position(view, open_request())  # held from here on, with no working order
    counting.calls.clear()
    # i1 never rested: its fill and result need no working-order statement at all.
    await apply_messages(view, apply_fill_message, [(encode(fill(1)), 1)])
    done = result("i1", fill_count=1, filled_size=1.0, last_fill_seq=1)
    await apply_messages(view, apply_results_message, [(encode(done), 1)])
    assert counting.calls["working"] == 0
    assert counting.calls["remove_working"] == 0
    # i2 rests: its fill updates the order and its result removes it, as before.
    await apply_messages(view, apply_results_message, [(encode(working("i2")), 2)])
    await apply_messages(view, apply_fill_message, [(encode(fill(2, intent="i2")), 2)])
    held = await view.get("p1")
    assert held is not None
    assert [(o.intent_id, o.filled) for o in held[1]] == [("i2", Decimal(1))]
    i2_done = result("i2", fill_count=1, filled_size=1.0, last_fill_seq=2)
    await apply_messages(view, apply_results_message, [(encode(i2_done), 3)])
    assert counting.calls["remove_working"] == 1
    assert await store.working_orders("p1") == []
    await _same_as_store(view, store, ("p1",))


async def test_a_position_not_held_reads_its_working_order_from_the_store(
    store: LedgerStore,
) -> None:
    await open_position(PositionView(store), open_request())
    await apply_messages(PositionView(store), apply_results_message, [(encode(working()), 1)])
    view = PositionView(store)  # a fresh view (a restart): p1 is not held
    await apply_messages(view, apply_fill_message, [(encode(fill(1)), 1)])
    assert [o.filled for o in await store.working_orders("p1")] == [Decimal(1)]
    done = result("i1", fill_count=1, filled_size=1.0, last_fill_seq=1)
    outcomes = await apply_messages(view, apply_results_message, [(encode(done), 2)])
    assert isinstance(outcomes[0], Applied)
    assert await store.working_orders("p1") == []
