"""Rebuild support: keep the old database aside and carry its opened positions over.

``intentbus ledger --rebuild`` never deletes anything: the old file (with its ``-wal``
and ``-shm`` companions) is renamed ``<db>.pre-rebuild-<UTC time>``, a new empty
database is created, the positions that were *opened* (their terms only: venue, book,
symbol, direction, allocation) are copied from the old file because opens are not in
the ``RESULTS`` stream, and the durable consumer is recreated from sequence 1, so
every result still in the stream is applied again in stream order.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from intentbus.ledger.accounting import PositionState
from intentbus.ledger.sqlite_store import SqliteStore
from intentbus.ledger.storage import LedgerStore, opened_positions

COMPANIONS = ("", "-wal", "-shm")


def move_aside(path: Path, now: datetime | None = None) -> Path | None:
    """Rename the database at ``path`` (and its companions); return the new name."""
    if not path.exists():
        return None
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")
    backup = path.with_name(f"{path.name}.pre-rebuild-{stamp}")
    for suffix in COMPANIONS:
        source = Path(f"{path}{suffix}")
        if source.exists():
            source.rename(Path(f"{backup}{suffix}"))
    return backup


def registration_of(state: PositionState) -> PositionState:
    """Return the position as it was just after it was opened, before any result."""
    return PositionState(
        position_id=state.position_id,
        venue=state.venue,
        book_id=state.book_id,
        token_contract=state.token_contract,
        direction=state.direction,
        allocation_usd=state.allocation_usd,
        updated_at=state.opened_at,
        origin=state.origin,
        opened_at=state.opened_at,
    )


def copy_registrations(source: Path, target: LedgerStore) -> int:
    """Copy every opened position's terms from the database at ``source``; return how many."""
    old = SqliteStore(source)
    old.open()
    try:
        registrations = [registration_of(state) for state in opened_positions(old)]
    finally:
        old.close()
    with target.transaction() as tx:
        for state in registrations:
            tx.save(state)
    return len(registrations)
