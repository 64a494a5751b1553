"""PostgreSQL implementation of :class:`~intentbus.ledger.storage.LedgerStore` (psycopg 3).

Two connections: one runs the write transactions, one after another (an asyncio lock
keeps the FILLS and RESULTS appliers from interleaving on it, and ``SELECT ... FOR
UPDATE`` locks a position against another process); the other, in autocommit, answers
reads with what is committed. A third holds the writer claim
(:mod:`intentbus.ledger.writer_claim`). ``COMMIT`` returns once the server has the transaction
durably (its ``synchronous_commit``), and the consumers acknowledge only after that.
Amounts are NUMERIC, so they come back as the exact ``Decimal`` stored. The schema and
its migrations are in :mod:`intentbus.ledger.postgres_schema`; the statements are the
SQLite store's (:mod:`intentbus.ledger.sql`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.conninfo import conninfo_to_dict

from intentbus.ledger.accounting import PositionState
from intentbus.ledger.postgres_schema import (
    LEDGER_SCHEMA,
    Connection,
    migrate,
    refuse_newer,
    schema_version,
)
from intentbus.ledger.reads import StoreReads
from intentbus.ledger.rebuild import aside_stamp
from intentbus.ledger.rows import REGISTRATION_COLUMNS, Row, registration
from intentbus.ledger.sql import Dialect, SqlTransaction, statements
from intentbus.ledger.writer_claim import claim
from intentbus.telemetry import add_secret, scrub

POSTGRES = Dialect(mark="%s", greatest="GREATEST", lock=" FOR UPDATE", encode=lambda row: row)
_SQL = statements(POSTGRES)
SCHEMES = ("postgresql://", "postgres://")
CONNECT_TIMEOUT_S = 10
WRITER_LOCK = 0x1B_1ED6E6  # pg_advisory_lock key of the one ledger writing a database


def is_postgres_url(db: str) -> bool:
    """Say whether ``--db`` names a PostgreSQL database rather than a SQLite file."""
    return db.startswith(SCHEMES)


class PostgresRunner:
    """Run statements on a psycopg connection."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def one(self, sql: str, args: Sequence[Any]) -> Row | None:
        """Return the first row of a query."""
        return await (await self._conn.execute(sql, args)).fetchone()

    async def all(self, sql: str, args: Sequence[Any]) -> list[Row]:
        """Return every row of a query."""
        return await (await self._conn.execute(sql, args)).fetchall()

    async def run(self, sql: str, args: Sequence[Any]) -> None:
        """Run a statement."""
        await self._conn.execute(sql, args)


class PostgresStore(StoreReads):
    """Keep the ledger in a PostgreSQL database (schema :data:`LEDGER_SCHEMA`)."""

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        self.url = url
        self.read_only = read_only
        password = conninfo_to_dict(url).get("password")
        add_secret(str(password) if password else None)  # never logged, whatever the form
        self._label = scrub(url)
        self._writer: Connection | None = None
        self._reading: Connection | None = None
        self._holder: Connection | None = None  # holds the writer claim (a session lock)
        self._lock = asyncio.Lock()

    @property
    def label(self) -> str:
        """Name the store: its URL without credentials."""
        return self._label

    async def _connect(self) -> Connection:
        # client_encoding: on a SQL_ASCII database (a server initialised without a
        # UTF-8 locale) psycopg would otherwise return every text column as bytes.
        conn = await AsyncConnection.connect(
            self.url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_S,
            client_encoding="utf8",
        )
        await conn.execute("SET TIME ZONE 'UTC'")
        await conn.execute(f"SET search_path TO {LEDGER_SCHEMA}")
        return conn

    async def open(self) -> None:
        """Connect, and migrate the schema (or refuse a newer one)."""
        writer = await self._connect()
        try:
            await migrate(writer, self._label, create=not self.read_only)
            self._reading = await self._connect()
        except BaseException:
            await writer.close()
            raise
        self._writer = writer

    async def claim_writer(self, wait_s: float) -> None:
        """Take the database's ledger writer lock, a session lock of a connection of its own.

        See :mod:`intentbus.ledger.writer_claim`.
        """
        if self._holder is not None:
            return
        conn = await self._connect()

        async def try_once() -> bool:
            query = await conn.execute("SELECT pg_try_advisory_lock(%s)", (WRITER_LOCK,))
            row = await query.fetchone()
            return bool(row and row[0])

        refusal = (
            f"another ledger writes {self._label}: it holds the database's ledger writer "
            f"lock (pg_advisory_lock {WRITER_LOCK:#x}). One ledger writes a store; stop it "
            "first, or give this one its own --db (partition by book)"
        )
        try:
            await claim(try_once, wait_s, refusal)
        except BaseException:
            await conn.close()
            raise
        self._holder = conn

    async def close(self) -> None:
        """Close the connections; the writer claim goes last."""
        for conn in (self._writer, self._reading, self._holder):
            if conn is not None:
                await conn.close()
        self._writer = self._reading = self._holder = None

    async def set_aside(self) -> str | None:
        """Rename the ledger's schema to ``<schema>_pre_rebuild_<UTC time>``."""
        conn = await self._connect()
        try:
            if await schema_version(conn) is None:
                return None
            aside = f"{LEDGER_SCHEMA}_pre_rebuild_{aside_stamp().lower()}"
            await conn.execute(
                sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
                    sql.Identifier(LEDGER_SCHEMA), sql.Identifier(aside)
                )
            )
            return aside
        finally:
            await conn.close()

    async def registrations(self, aside: str) -> list[PositionState]:
        """Return the opened positions' terms of the schema ``aside`` of this database."""
        conn = self._open(self._reading)
        version = await schema_version(conn, aside)
        if version is None:
            return []
        refuse_newer(f"{self._label} schema {aside}", version)
        query = sql.SQL("SELECT {} FROM {}.positions ORDER BY opened_at, position_id").format(
            sql.SQL(REGISTRATION_COLUMNS), sql.Identifier(aside)
        )
        rows = await (await conn.execute(query)).fetchall()
        return [registration(row) for row in rows]

    def _open(self, conn: Connection | None) -> Connection:
        if conn is None:
            raise RuntimeError(f"ledger store {self._label} is not open")
        return conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlTransaction]:
        """Run one ``BEGIN`` ... ``COMMIT`` (rolled back on any exception), one at a time."""
        async with self._lock:
            conn = self._open(self._writer)
            async with conn.transaction():
                yield SqlTransaction(PostgresRunner(conn), POSTGRES, _SQL, locking=True)

    def _reader(self) -> SqlTransaction:
        return SqlTransaction(
            PostgresRunner(self._open(self._reading)), POSTGRES, _SQL, locking=False
        )
