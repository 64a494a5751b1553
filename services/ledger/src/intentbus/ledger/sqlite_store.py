"""SQLite implementation of :class:`~intentbus.ledger.storage.LedgerStore`.

WAL journal with ``synchronous=FULL``: a transaction is on disk when ``COMMIT``
returns, and the consumers acknowledge messages only after that. Each transaction is
``BEGIN IMMEDIATE`` so it holds the write lock from its first read. Decimals are stored
as TEXT (``str(Decimal)``), so they come back exactly. The schema is in
:mod:`intentbus.ledger.sqlite_schema`; the statements in :mod:`intentbus.ledger.sql`.

The interface is asynchronous, but SQLite's calls are quick and run inline, except the
``COMMIT``, which waits for the disk: it runs in a worker thread, so the service goes on
fetching and decoding meanwhile. One transaction at a time holds the connection (a
lock); a read during a ``COMMIT`` waits for it on SQLite's own connection mutex.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from intentbus.ledger.accounting import PositionState
from intentbus.ledger.reads import StoreReads
from intentbus.ledger.rebuild import move_aside
from intentbus.ledger.rows import Row, as_text
from intentbus.ledger.sql import Dialect, SqlTransaction, statements
from intentbus.ledger.sqlite_schema import prepare, read_registrations
from intentbus.ledger.writer_claim import FileClaim

SQLITE = Dialect(mark="?", greatest="MAX", lock="", encode=as_text)
_SQL = statements(SQLITE)


class SqliteRunner:
    """Run statements on a sqlite3 connection, inline."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    async def one(self, sql: str, args: Sequence[Any]) -> Row | None:
        """Return the first row of a query."""
        row: Row | None = self._db.execute(sql, args).fetchone()
        return row

    async def all(self, sql: str, args: Sequence[Any]) -> list[Row]:
        """Return every row of a query."""
        return self._db.execute(sql, args).fetchall()

    async def run(self, sql: str, args: Sequence[Any]) -> None:
        """Run a statement."""
        self._db.execute(sql, args)


class SqliteStore(StoreReads):
    """Keep the ledger in one SQLite file."""

    def __init__(self, path: Path | str, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._db: sqlite3.Connection | None = None
        self._writing = asyncio.Lock()
        self._claim = FileClaim(self.path)

    @property
    def label(self) -> str:
        """Name the store: its file."""
        return str(self.path)

    async def open(self) -> None:
        """Open the file, switch to WAL and create the tables (or refuse another version)."""
        if self.read_only:
            db = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
            )
        else:
            if self.path.parent != Path():
                self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA busy_timeout=5000")
        try:
            prepare(db, self.path, create=not self.read_only)
        except BaseException:
            db.close()
            raise
        self._db = db

    async def claim_writer(self, wait_s: float) -> None:
        """Lock ``<db>.writer`` for this process (see :mod:`intentbus.ledger.writer_claim`)."""
        await self._claim.take(wait_s)

    async def close(self) -> None:
        """Close the file, then let the writer claim go."""
        if self._db is not None:
            self._db.close()
            self._db = None
        self._claim.release()

    async def set_aside(self) -> str | None:
        """Rename the file (and its companions) to ``<db>.pre-rebuild-<UTC time>``."""
        backup = move_aside(self.path)
        return None if backup is None else str(backup)

    async def registrations(self, aside: str) -> list[PositionState]:
        """Return the opened positions' terms of the file at ``aside`` (schema 1 or 2)."""
        return read_registrations(Path(aside))

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError(f"ledger store {self.path} is not open")
        return self._db

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlTransaction]:
        """Run one ``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back on any exception)."""
        async with self._writing:
            db = self._conn
            db.execute("BEGIN IMMEDIATE")
            try:
                yield SqlTransaction(SqliteRunner(db), SQLITE, _SQL, locking=True)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            await asyncio.to_thread(db.execute, "COMMIT")  # the fsync: off the event loop

    def _reader(self) -> SqlTransaction:
        return SqlTransaction(SqliteRunner(self._conn), SQLITE, _SQL, locking=False)
