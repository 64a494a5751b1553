"""Rebuild support: keep the old ledger aside and carry its opened positions over.

``intentbus ledger --rebuild`` never deletes anything: the store sets the old ledger
aside (SQLite: the file, with its ``-wal`` and ``-shm`` companions, is renamed
``<db>.pre-rebuild-<UTC time>``; PostgreSQL: its schema is renamed likewise), a new
empty one is created, the positions that were *opened* are copied from the old ledger
(their terms, and whether they were closed: opens are not in any stream, and closing
results may have aged out), and both durables are recreated from sequence 1, so every
fill and result still in ``FILLS`` and ``RESULTS`` is applied again in stream order.
An old file of schema 1 (result-driven) is read the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from intentbus.ledger.storage import LedgerConfigError, LedgerStore

COMPANIONS = ("", "-wal", "-shm")


def aside_stamp(now: datetime | None = None) -> str:
    """Return the UTC time that names a ledger set aside now."""
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")


def move_aside(path: Path, now: datetime | None = None) -> Path | None:
    """Rename the database at ``path`` (and its companions); return the new name."""
    if not path.exists():
        return None
    stamp = aside_stamp(now)
    backup = path.with_name(f"{path.name}.pre-rebuild-{stamp}")
    for suffix in COMPANIONS:
        source = Path(f"{path}{suffix}")
        if source.exists():
            source.rename(Path(f"{backup}{suffix}"))
    return backup


async def copy_registrations(aside: str, target: LedgerStore) -> int:
    """Copy every opened position's terms from the ledger set ``aside``; return how many.

    Raise :class:`LedgerConfigError` when two of them are open on one venue, book and
    symbol (schema 1 allowed it; schema 2 keeps one open position per symbol and book).
    """
    registrations = await target.registrations(aside)
    async with target.transaction() as tx:
        for state in registrations:
            if not state.closed:
                first = await tx.open_on(state.venue, state.book_id, state.token_contract)
                if first is not None:
                    raise LedgerConfigError(
                        f"cannot rebuild from {aside}: positions {first.position_id} and "
                        f"{state.position_id} are both open on venue {state.venue}, book "
                        f"{state.book_id}, symbol {state.token_contract}; the ledger keeps one "
                        "open position per venue, book and symbol"
                    )
            await tx.save(state)
    return len(registrations)
