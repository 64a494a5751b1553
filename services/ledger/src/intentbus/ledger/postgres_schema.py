"""The PostgreSQL schema of the ledger and its migrations, applied in order at start.

The ledger's tables live in the database schema :data:`LEDGER_SCHEMA`. Its
``schema_versions`` table lists each migration applied; at start, under an advisory
lock (two ledgers starting at once migrate once), the missing ones are applied in
order, all in one transaction with their rows. A database of a newer version is
refused. Amounts are NUMERIC (exact ``Decimal``), times TIMESTAMPTZ; fill and result
ids are primary keys, so each is stored once, in the transaction that moves the
position. Version 1 is the fill-driven ledger (SQLite's schema 2).
"""

from __future__ import annotations

import re
from typing import Any

from psycopg import AsyncConnection, sql

from intentbus.ledger.sqlite_schema import SCHEMA as SQLITE_SCHEMA_2
from intentbus.ledger.storage import StoreVersionError

LEDGER_SCHEMA = "intentbus_ledger"
MIGRATION_LOCK = 0x1B_1ED6E5  # pg_advisory_xact_lock key of the ledger's migrations

AMOUNTS = frozenset({
    "allocation_usd", "size", "avg_entry_price", "realized_pnl_usd", "fees_usd", "price",
    "fee_usd", "size_after", "filled_size", "filled",
})  # fmt: skip
TIMES = frozenset({"closed_at", "updated_at", "opened_at", "applied_at", "created_at"})
FLAGS = frozenset({"closed", "mismatch", "closes"})
_COLUMN = re.compile(r"^(\s+)(\w+) (TEXT|INTEGER)\b", re.M)


def _postgres_type(match: re.Match[str]) -> str:
    indent, name, kind = match.groups()
    if name in AMOUNTS:
        kind = "NUMERIC"
    elif name in TIMES:
        kind = "TIMESTAMPTZ"
    elif name in FLAGS:
        kind = "BOOLEAN"
    elif kind == "INTEGER":
        kind = "BIGINT"
    return f"{indent}{name} {kind}"


def in_postgres_types(sqlite_schema: str) -> str:
    """Return SQLite's DDL with PostgreSQL's exact types (NUMERIC, TIMESTAMPTZ, BOOLEAN)."""
    return _COLUMN.sub(_postgres_type, sqlite_schema).replace(
        "WHERE closed = 0", "WHERE NOT closed"
    )


# Each entry migrates from the version before it; never change one that was released.
MIGRATIONS: tuple[str, ...] = (
    in_postgres_types(SQLITE_SCHEMA_2),  # 1: the fill-driven ledger, SQLite's schema 2
)
SCHEMA_VERSION = len(MIGRATIONS)

Connection = AsyncConnection[tuple[Any, ...]]


async def schema_version(conn: Connection, schema: str = LEDGER_SCHEMA) -> int | None:
    """Return the version of the ledger in ``schema`` (``None``: there is none)."""
    cur = await conn.execute("SELECT to_regclass(%s)", (f"{schema}.schema_versions",))
    found = await cur.fetchone()
    if found is None or found[0] is None:
        return None
    query = sql.SQL("SELECT coalesce(max(version), 0) FROM {}.schema_versions").format(
        sql.Identifier(schema)
    )
    row = await (await conn.execute(query)).fetchone()
    return 0 if row is None else int(row[0])


def refuse_newer(label: str, version: int) -> None:
    """Raise :class:`StoreVersionError` when ``version`` is newer than this ledger's."""
    if version > SCHEMA_VERSION:
        raise StoreVersionError(
            f"{label} holds a ledger of schema {version}, newer than this ledger's "
            f"{SCHEMA_VERSION}: run a newer intentbus-ledger"
        )


async def migrate(conn: Connection, label: str, *, create: bool = True) -> int:
    """Apply the missing migrations in one transaction; return how many were applied.

    With ``create`` false nothing is changed: a database without a ledger, or with an
    older one, is refused.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        found = await schema_version(conn)
        refuse_newer(label, found or 0)
        if not create:
            if found is None:
                raise StoreVersionError(f"{label} holds no ledger")
            if found < SCHEMA_VERSION:
                raise StoreVersionError(
                    f"{label} holds a ledger of schema {found}: start `intentbus ledger` "
                    f"once to migrate it to schema {SCHEMA_VERSION}"
                )
            return 0
        if found is None:
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {LEDGER_SCHEMA}")
        await conn.execute(f"SET LOCAL search_path TO {LEDGER_SCHEMA}")
        if found is None:
            await conn.execute(
                f"CREATE TABLE {LEDGER_SCHEMA}.schema_versions (version INTEGER PRIMARY KEY, "
                "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            found = 0
        for version in range(found + 1, SCHEMA_VERSION + 1):
            await conn.execute(MIGRATIONS[version - 1])
            await conn.execute(
                f"INSERT INTO {LEDGER_SCHEMA}.schema_versions (version) VALUES (%s)", (version,)
            )
        return SCHEMA_VERSION - found
