"""The ledger's storage interface; SQLite implements it, PostgreSQL can later.

Every change goes through :meth:`LedgerStore.transaction`: what a transaction does is
committed all together when its block ends normally, or not at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from intentbus.ledger.accounting import ORIGIN_OPENED, PositionState


@dataclass(frozen=True, kw_only=True)
class AuditRecord:
    """Record one result the ledger has taken into account."""

    result_id: str
    results_seq: int
    position_id: str
    intent_id: str
    status: str
    applied_at: datetime
    notes: tuple[str, ...]
    result_json: str


class LedgerTransaction(Protocol):
    """Read and change the ledger inside one atomic transaction."""

    def is_applied(self, result_id: str) -> bool:
        """Say whether ``result_id`` was already applied."""

    def load(self, position_id: str) -> PositionState | None:
        """Return a position (locked for this transaction where the store can lock)."""

    def save(self, state: PositionState) -> None:
        """Insert or replace a position."""

    def record(self, audit: AuditRecord) -> None:
        """Store an applied result's id and audit row."""

    def advance_seq(self, seq: int) -> None:
        """Raise the last handled ``RESULTS`` sequence to ``seq`` (never lower it)."""


class LedgerStore(Protocol):
    """Keep positions, applied result ids and the last handled stream sequence."""

    def open(self) -> None:
        """Open (and create or migrate) the store."""

    def close(self) -> None:
        """Release the store."""

    def transaction(self) -> AbstractContextManager[LedgerTransaction]:
        """Return a context running one atomic read-write transaction."""

    def applied_seq(self) -> int:
        """Return the last handled ``RESULTS`` stream sequence (0: none)."""

    def get(self, position_id: str) -> PositionState | None:
        """Return one position."""

    def list(self, venue: str | None = None, book_id: str | None = None) -> list[PositionState]:
        """Return the positions, optionally of one venue and/or book, by id."""

    def audit(self, result_id: str) -> AuditRecord | None:
        """Return the audit row of an applied result."""

    def meta(self, key: str) -> str | None:
        """Return a metadata value."""

    def set_meta(self, key: str, value: str) -> None:
        """Store a metadata value."""


def opened_positions(store: LedgerStore) -> Iterator[PositionState]:
    """Yield the positions that were opened explicitly (not created by a result)."""
    for state in store.list():
        if state.origin == ORIGIN_OPENED:
            yield state
