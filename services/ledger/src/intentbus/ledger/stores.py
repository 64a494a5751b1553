"""Choose the store ``--db`` names: a ``postgresql://`` URL, or else a SQLite file."""

from __future__ import annotations

from pathlib import Path

from intentbus.ledger.postgres_store import PostgresStore, is_postgres_url
from intentbus.ledger.sqlite_store import SqliteStore
from intentbus.ledger.storage import LedgerStore


def store_for(db: str | Path, *, read_only: bool = False) -> LedgerStore:
    """Return the (unopened) store of ``db``: PostgreSQL for a URL, else a SQLite file."""
    text = str(db)
    if is_postgres_url(text):
        return PostgresStore(text, read_only=read_only)
    return SqliteStore(Path(text), read_only=read_only)
