"""The reads of :class:`~intentbus.ledger.storage.LedgerStore`, once for both stores.

Each runs outside any write transaction, on what is committed, through the store's
:meth:`StoreReads._reader` (a transaction object that locks nothing).
"""

from __future__ import annotations

from intentbus.ledger.accounting import PositionState
from intentbus.ledger.sql import SqlTransaction
from intentbus.ledger.storage import FillRecord, ResultSummary, StreamKind, WorkingOrder


class StoreReads:
    """Read positions, fills, results, working orders and metadata of a store."""

    def _reader(self) -> SqlTransaction:
        raise NotImplementedError

    async def applied_seq(self, stream: StreamKind) -> int:
        """Return the last handled sequence of ``stream``."""
        return await self._reader().applied_seq(stream)

    async def get(self, position_id: str) -> PositionState | None:
        """Return one position."""
        return await self._reader().load(position_id)

    async def working_orders(self, position_id: str | None = None) -> list[WorkingOrder]:
        """Return the working orders of one position, or all."""
        return await self._reader().working_of(position_id)

    async def summary(self, result_id: str) -> ResultSummary | None:
        """Return a stored final result."""
        return await self._reader().summary(result_id)

    async def summaries(self, *, mismatch_only: bool = False) -> list[ResultSummary]:
        """Return the stored final results in stream order."""
        return await self._reader().summaries(mismatch_only=mismatch_only)

    async def fill(self, fill_id: str) -> FillRecord | None:
        """Return an applied fill."""
        return await self._reader().fill(fill_id)

    async def meta(self, key: str) -> str | None:
        """Return a metadata value."""
        return await self._reader().meta(key)

    async def set_meta(self, key: str, value: str) -> None:
        """Store a metadata value."""
        await self._reader().set_meta(key, value)

    async def list(
        self, venue: str | None = None, book_id: str | None = None
    ) -> list[PositionState]:
        """Return the positions of a venue and/or book (all by default), by id."""
        return await self._reader().positions(venue, book_id)
