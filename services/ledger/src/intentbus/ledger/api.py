"""Answers of the position request/reply API: ``get``, ``list`` and ``open``.

Every answer is a :class:`PositionReply`; a bad request or a failure becomes
``PositionReply(error=...)``, never an exception escaping to the subscription.
"""

from __future__ import annotations

import asyncio
import logging

import msgspec

from intentbus.ledger.applier import OpenConflict, open_position
from intentbus.ledger.storage import LedgerStore
from intentbus.schemas import ListPositions, OpenPosition, PositionQuery, PositionReply, decoder

log = logging.getLogger(__name__)

MAX_WAIT_MS = 30_000


class AppliedProgress:
    """Track the last handled ``RESULTS`` sequence and wake those waiting for one."""

    def __init__(self, seq: int = 0) -> None:
        self._seq = seq
        self._changed = asyncio.Condition()

    @property
    def seq(self) -> int:
        """Return the last handled sequence."""
        return self._seq

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


class PositionApi:
    """Answer position requests from the store."""

    def __init__(self, store: LedgerStore, progress: AppliedProgress) -> None:
        self._store = store
        self._progress = progress
        self._query = decoder(PositionQuery)
        self._list = decoder(ListPositions)
        self._open = decoder(OpenPosition)

    async def answer(self, operation: str, data: bytes) -> PositionReply:
        """Answer one request; turn every failure into an error reply."""
        try:
            if operation == "get":
                return await self.get(self._query.decode(data))
            if operation == "list":
                return self.list(self._list.decode(data))
            if operation == "open":
                return self.open(self._open.decode(data))
            return self._error(f"unknown operation {operation!r}")
        except msgspec.MsgspecError as exc:
            return self._error(f"malformed {operation} request: {exc}")
        except Exception as exc:
            log.exception("ledger %s request failed", operation)
            return self._error(f"ledger failed to answer {operation}: {exc!r}")

    async def get(self, query: PositionQuery) -> PositionReply:
        """Return one position once results up to ``min_results_seq`` are applied."""
        wait_s = min(max(query.wait_ms, 0), MAX_WAIT_MS) / 1000.0
        if not await self._progress.reached(query.min_results_seq, wait_s):
            return self._error(
                f"ledger behind: applied {self._progress.seq} < wanted {query.min_results_seq}"
            )
        seq = self._progress.seq
        state = self._store.get(query.position_id)
        positions = () if state is None else (state.to_position(seq),)
        return PositionReply(positions=positions, results_seq=seq)

    def list(self, query: ListPositions) -> PositionReply:
        """Return every position of the venue and/or book asked for."""
        seq = self._progress.seq
        states = self._store.list(query.venue, query.book_id)
        return PositionReply(positions=tuple(s.to_position(seq) for s in states), results_seq=seq)

    def open(self, request: OpenPosition) -> PositionReply:
        """Open a position, or return it when it is already open with the same terms."""
        try:
            state = open_position(self._store, request)
        except OpenConflict as exc:
            return self._error(str(exc))
        seq = self._progress.seq
        return PositionReply(positions=(state.to_position(seq),), results_seq=seq)

    def _error(self, message: str) -> PositionReply:
        return PositionReply(error=message, results_seq=self._progress.seq)
