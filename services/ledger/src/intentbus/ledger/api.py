"""Answers of the position request/reply API: ``get``, ``list`` and ``open``.

Every answer is a :class:`PositionReply` carrying the ``RESULTS`` and ``FILLS``
sequences the ledger had applied; a bad request or a failure becomes
``PositionReply(error=...)``, never an exception escaping to the subscription.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

import msgspec

from intentbus.ledger.accounting import ZERO, PositionState
from intentbus.ledger.opening import OpenConflict, open_position
from intentbus.ledger.storage import LedgerStore, WorkingOrder
from intentbus.ledger.view import PositionView
from intentbus.schemas import (
    ListPositions,
    OpenPosition,
    Position,
    PositionQuery,
    PositionReply,
    PositionsQuery,
    decoder,
)

log = logging.getLogger(__name__)

MAX_WAIT_MS = 30_000


class AppliedProgress:
    """Track the last handled sequence of one stream and wake those waiting for one."""

    def __init__(self, seq: int = 0) -> None:
        self._seq = seq
        self._changed = asyncio.Condition()

    @property
    def seq(self) -> int:
        """Return the last handled sequence."""
        return self._seq

    def start_at(self, seq: int) -> None:
        """Set the sequence the store had handled at start (before anyone waits)."""
        self._seq = seq

    async def advance(self, seq: int) -> None:
        """Record that everything up to ``seq`` is handled and wake the waiters."""
        async with self._changed:
            if seq > self._seq:
                self._seq = seq
                self._changed.notify_all()

    async def reached(self, wanted: int, timeout_s: float) -> bool:
        """Wait until the sequence is at least ``wanted``; return False after ``timeout_s``."""
        if self._seq >= wanted:
            return True
        try:
            async with asyncio.timeout(max(timeout_s, 0.0)), self._changed:
                await self._changed.wait_for(lambda: self._seq >= wanted)
        except TimeoutError:
            return self._seq >= wanted
        return True


def to_position(
    state: PositionState, working: Iterable[WorkingOrder], results_seq: int, fills_seq: int
) -> Position:
    """Return the contract view (floats) of a position and its working orders."""
    orders = list(working)
    return Position(
        position_id=state.position_id,
        venue=state.venue,
        book_id=state.book_id,
        token_contract=state.token_contract,
        direction=state.direction,
        allocation_usd=float(state.allocation_usd),
        size=float(state.size),
        avg_entry_price=float(state.avg_entry_price),
        realized_pnl_usd=float(state.realized_pnl_usd),
        fees_usd=float(state.fees_usd),
        results_applied=state.results_applied,
        results_seq=results_seq,
        updated_at=state.updated_at,
        fills_applied=state.fills_applied,
        fills_seq=fills_seq,
        working_size=float(sum((order.open_size for order in orders), ZERO)),
        working_orders=len(orders),
        closed=state.closed,
    )


class PositionApi:
    """Answer position requests: one position from memory (``view``), lists from the store."""

    def __init__(
        self,
        store: LedgerStore,
        results: AppliedProgress,
        fills: AppliedProgress,
        view: PositionView | None = None,
    ) -> None:
        self._store = store
        self._view = view or PositionView(store)
        self._results = results
        self._fills = fills
        self._query = decoder(PositionQuery)
        self._many = decoder(PositionsQuery)
        self._list = decoder(ListPositions)
        self._open = decoder(OpenPosition)

    async def answer(self, operation: str, data: bytes) -> PositionReply:
        """Answer one request; turn every failure into an error reply."""
        try:
            if operation == "get":
                return await self.get(self._query.decode(data))
            if operation == "get_many":
                return await self.get_many(self._many.decode(data))
            if operation == "list":
                return await self.list(self._list.decode(data))
            if operation == "open":
                return await self.open(self._open.decode(data))
            return self._error(f"unknown operation {operation!r}")
        except msgspec.MsgspecError as exc:
            return self._error(f"malformed {operation} request: {exc}")
        except Exception as exc:
            log.exception("ledger %s request failed", operation)
            return self._error(f"ledger failed to answer {operation}: {exc!r}")

    async def get(self, query: PositionQuery) -> PositionReply:
        """Return one position once ``RESULTS`` and ``FILLS`` are applied up to the query's seqs."""
        return await self._positions(
            (query.position_id,), query.min_results_seq, query.min_fills_seq, query.wait_ms
        )

    async def get_many(self, query: PositionsQuery) -> PositionReply:
        """Return the known positions of several ids, as :meth:`get` returns one."""
        return await self._positions(
            query.position_ids, query.min_results_seq, query.min_fills_seq, query.wait_ms
        )

    async def _positions(
        self, ids: Iterable[str], min_results_seq: int, min_fills_seq: int, wait_ms: int
    ) -> PositionReply:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(max(wait_ms, 0), MAX_WAIT_MS) / 1000.0
        for name, progress, wanted in (
            ("results", self._results, min_results_seq),
            ("fills", self._fills, min_fills_seq),
        ):
            if not await progress.reached(wanted, deadline - loop.time()):
                return self._error(
                    f"ledger behind: {name} applied {progress.seq} < wanted {wanted}"
                )
        results_seq, fills_seq = self._results.seq, self._fills.seq
        positions: list[Position] = []
        for position_id in dict.fromkeys(ids):  # each once, in the order asked
            found = await self._view.get(position_id)
            if found is not None:
                state, working = found
                positions.append(to_position(state, working, results_seq, fills_seq))
        return PositionReply(
            positions=tuple(positions), results_seq=results_seq, fills_seq=fills_seq
        )

    async def list(self, query: ListPositions) -> PositionReply:
        """Return every position of the venue and/or book asked for."""
        results_seq, fills_seq = self._results.seq, self._fills.seq
        states = await self._store.list(query.venue, query.book_id)
        working: dict[str, list[WorkingOrder]] = {}
        for order in await self._store.working_orders():
            working.setdefault(order.position_id, []).append(order)
        return PositionReply(
            positions=tuple(
                to_position(s, working.get(s.position_id, ()), results_seq, fills_seq)
                for s in states
            ),
            results_seq=results_seq,
            fills_seq=fills_seq,
        )

    async def open(self, request: OpenPosition) -> PositionReply:
        """Open a position, or return it when it is already open with the same terms."""
        try:
            opened = await open_position(self._view, request)
        except OpenConflict as exc:
            return self._error(str(exc))
        results_seq, fills_seq = self._results.seq, self._fills.seq
        state, working = await self._view.get(opened.position_id) or (opened, [])
        return PositionReply(
            positions=(to_position(state, working, results_seq, fills_seq),),
            results_seq=results_seq,
            fills_seq=fills_seq,
        )

    def _error(self, message: str) -> PositionReply:
        return PositionReply(
            error=message, results_seq=self._results.seq, fills_seq=self._fills.seq
        )
