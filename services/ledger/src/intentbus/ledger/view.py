"""Answer position reads from memory: each position as last committed, with its orders.

The ledger is the single writer of its store (it claims the store at start:
:mod:`intentbus.ledger.writer_claim`), and every change it makes goes through
:meth:`PositionView.transaction`, which records the positions and working orders the
transaction saves and, once it has committed, sets them in memory (nothing is set when
it fails). A read is served from memory; a position not held yet is loaded from the
store once. A load that overlapped a transaction touching the same position is returned
but not kept, so memory never holds a state older than the store's: reads stay
read-your-writes (the appliers advance their progress only after the commit).

Transactions run one at a time, so a transaction also loads a position it has not
saved itself from memory (as committed), and the stream sequences it handles are
written once, before its ``COMMIT``, at the highest it handled: fewer statements per
message, the same stored state.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal

from intentbus.ledger.accounting import PositionState
from intentbus.ledger.storage import (
    AppliedFill,
    FillRecord,
    LedgerStore,
    LedgerTransaction,
    ResultSummary,
    StreamKind,
    WorkingOrder,
)


class _Held:
    """One position in memory: its state and its working orders by intent id."""

    __slots__ = ("orders", "state")

    def __init__(self, state: PositionState, orders: dict[str, WorkingOrder]) -> None:
        self.state = state
        self.orders = orders


class PositionView:
    """Serve positions from memory, kept equal to what the store has committed."""

    def __init__(self, store: LedgerStore) -> None:
        self._store = store
        self._held: dict[str, _Held] = {}
        self._order_position: dict[str, str] = {}  # intent id -> position id, orders held
        self._changes: dict[str, int] = {}  # position id -> transactions that touched it
        self._loading: dict[str, int] = {}  # position id -> loads under way
        self._seqs: dict[StreamKind, int] = {}  # the stream sequences as committed, once known
        self.hits = 0
        self.loads = 0

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[LedgerTransaction]:
        """Run one store transaction; once it has committed, hold what it saved."""
        recording: _Recording | None = None
        try:
            async with self._store.transaction() as tx:
                recording = _Recording(tx, self)
                yield recording
                await recording.write_seqs()
        except BaseException:
            if recording is not None:
                for position_id in recording.touched:
                    self._forget(position_id)
            raise
        assert recording is not None
        self._commit(recording)

    async def get(self, position_id: str) -> tuple[PositionState, list[WorkingOrder]] | None:
        """Return a position as committed and its working orders (by intent id), or None."""
        held = self._held.get(position_id)
        if held is None:
            held = await self._load(position_id)
            if held is None:
                return None
        else:
            self.hits += 1
        return held.state, [held.orders[key] for key in sorted(held.orders)]

    def held_state(self, position_id: str) -> PositionState | None:
        """Return a position as committed when memory holds it (None: not held)."""
        held = self._held.get(position_id)
        return None if held is None else held.state

    async def committed_seq(self, stream: StreamKind, tx: LedgerTransaction) -> int:
        """Return the stream's sequence as committed, read through ``tx`` the first time.

        Only before ``tx`` wrote any sequence (its writes wait until just before
        ``COMMIT``), so what it reads is the committed value.
        """
        committed = self._seqs.get(stream)
        if committed is None:
            committed = await tx.applied_seq(stream)
            self._seqs.setdefault(stream, committed)
        return committed

    def has_no_order(self, position_id: str, intent_id: str) -> bool:
        """Say whether memory knows, as committed, that the intent has no working order.

        Only a held position's orders are known, and all of them are (loaded with it,
        then kept by every commit); ``position_id`` is the intent's position ("": unknown).
        """
        held = self._held.get(position_id) if position_id else None
        return held is not None and intent_id not in held.orders

    def position_of(self, intent_id: str) -> str | None:
        """Return the position of a working order held in memory."""
        return self._order_position.get(intent_id)

    def loading(self) -> bool:
        """Say whether a load from the store is under way."""
        return bool(self._loading)

    async def _load(self, position_id: str) -> _Held | None:
        self.loads += 1
        before = self._changes.get(position_id, 0)
        self._loading[position_id] = self._loading.get(position_id, 0) + 1
        try:
            state = await self._store.get(position_id)
            orders = await self._store.working_orders(position_id) if state else []
        finally:
            left = self._loading[position_id] - 1
            if left:
                self._loading[position_id] = left
            else:
                del self._loading[position_id]
        if state is None:
            return None
        held = _Held(state, {order.intent_id: order for order in orders})
        if self._changes.get(position_id, 0) == before and position_id not in self._held:
            self._held[position_id] = held
            for intent_id in held.orders:
                self._order_position[intent_id] = position_id
        return held

    def _touch(self, position_id: str) -> None:
        self._changes[position_id] = self._changes.get(position_id, 0) + 1

    def _forget(self, position_id: str) -> None:
        self._touch(position_id)
        held = self._held.pop(position_id, None)
        for intent_id in held.orders if held else ():
            self._order_position.pop(intent_id, None)

    def _commit(self, recording: _Recording) -> None:
        self._seqs.update(recording.seqs)
        for position_id in recording.touched:
            self._touch(position_id)
        for state in recording.states.values():
            held = self._held.get(state.position_id)
            if held is None:
                # New to memory: complete only when the store had no order of it either.
                if state.position_id in recording.created:
                    self._held[state.position_id] = _Held(state, {})
                continue
            held.state = state
        for intent_id, (position_id, order) in recording.orders.items():
            held = self._held.get(position_id)
            if held is None:
                continue
            if order is None:
                held.orders.pop(intent_id, None)
                self._order_position.pop(intent_id, None)
            else:
                held.orders[intent_id] = order
                self._order_position[intent_id] = position_id


class _Recording:
    """A store transaction that notes the positions and working orders it changes."""

    def __init__(self, tx: LedgerTransaction, view: PositionView) -> None:
        self._tx = tx
        self._view = view
        self.states: dict[str, PositionState] = {}
        self.created: set[str] = set()  # positions this transaction inserted
        # intent id -> (position id, the order, or None: removed), in the order written
        self.orders: dict[str, tuple[str, WorkingOrder | None]] = {}
        self.touched: set[str] = set()
        self._absent: set[str] = set()  # positions this transaction loaded and did not find
        self.seqs: dict[StreamKind, int] = {}  # the highest sequence handled, per stream

    async def applied_seq(self, stream: StreamKind) -> int:
        return max(await self._view.committed_seq(stream, self._tx), self.seqs.get(stream, 0))

    async def advance_seq(self, stream: StreamKind, seq: int) -> None:
        self.seqs[stream] = max(seq, self.seqs.get(stream, 0))

    async def write_seqs(self) -> None:
        """Write the highest sequence handled of each stream (once, before ``COMMIT``)."""
        for stream, seq in list(self.seqs.items()):
            committed = await self._view.committed_seq(stream, self._tx)
            if seq > committed:
                await self._tx.advance_seq(stream, seq)
            self.seqs[stream] = max(seq, committed)  # what the store holds after COMMIT

    async def load(self, position_id: str) -> PositionState | None:
        saved = self.states.get(position_id)
        if saved is not None:
            return saved
        held = self._view.held_state(position_id)
        if held is not None:
            return held
        state = await self._tx.load(position_id)
        if state is None:
            self._absent.add(position_id)
        return state

    async def save(self, state: PositionState) -> None:
        await self._tx.save(state)
        self.touched.add(state.position_id)
        if state.position_id in self._absent:
            self.created.add(state.position_id)
        self.states[state.position_id] = state

    async def open_on(self, venue: str, book_id: str, token_contract: str) -> PositionState | None:
        return await self._tx.open_on(venue, book_id, token_contract)

    async def fill(self, fill_id: str) -> FillRecord | None:
        return await self._tx.fill(fill_id)

    async def record_fill(self, record: FillRecord) -> None:
        await self._tx.record_fill(record)

    async def fills_of_intent(self, intent_id: str) -> list[AppliedFill]:
        return await self._tx.fills_of_intent(intent_id)

    async def size_as_of(self, position_id: str, fills_seq: int) -> Decimal:
        return await self._tx.size_as_of(position_id, fills_seq)

    async def summary(self, result_id: str) -> ResultSummary | None:
        return await self._tx.summary(result_id)

    async def record_summary(self, summary: ResultSummary) -> None:
        await self._tx.record_summary(summary)

    async def flag_mismatch(self, result_id: str, problem: str) -> None:
        await self._tx.flag_mismatch(result_id, problem)

    def _known(self, intent_id: str, position_id: str) -> tuple[bool, WorkingOrder | None]:
        """Return (True, the intent's working order or None) when no read is needed.

        Known when this transaction wrote or removed it, or when memory holds the
        intent's position without it.
        """
        written = self.orders.get(intent_id)
        if written is not None:
            return True, written[1]
        return self._view.has_no_order(position_id, intent_id), None

    async def working(self, intent_id: str, position_id: str = "") -> WorkingOrder | None:
        known, order = self._known(intent_id, position_id)
        return order if known else await self._tx.working(intent_id)

    async def save_working(self, order: WorkingOrder) -> None:
        await self._tx.save_working(order)
        self.touched.add(order.position_id)
        self.orders.pop(order.intent_id, None)  # keep the order of writes
        self.orders[order.intent_id] = (order.position_id, order)

    async def remove_working(self, intent_id: str, position_id: str = "") -> None:
        known, order = self._known(intent_id, position_id)
        if known and order is None:
            return  # nothing to delete: the statement is spared
        of = self._position_of(intent_id)
        if of is None and self._view.loading():
            # An order of a position being loaded right now: find it, or that load could
            # keep the order this transaction removes.
            found = await self._tx.working(intent_id)
            of = found.position_id if found else None
        await self._tx.remove_working(intent_id)
        if of is not None:
            self.touched.add(of)
            self.orders.pop(intent_id, None)
            self.orders[intent_id] = (of, None)

    def _position_of(self, intent_id: str) -> str | None:
        written = self.orders.get(intent_id)
        return written[0] if written else self._view.position_of(intent_id)

    async def working_of(self, position_id: str) -> list[WorkingOrder]:
        return await self._tx.working_of(position_id)
