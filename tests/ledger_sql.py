"""Raw SQL on a ledger's database, SQLite file or PostgreSQL URL, beside the ledger's store."""

from __future__ import annotations

import sqlite3
from typing import Any

import psycopg

from intentbus.ledger.postgres_schema import LEDGER_SCHEMA
from intentbus.ledger.postgres_store import is_postgres_url

STORE_ERRORS = (sqlite3.Error, psycopg.Error)


def execute(db: str, statement: str) -> list[tuple[Any, ...]]:
    """Run ``statement`` (several, for SQLite) on the ledger database ``db``; return rows."""
    if is_postgres_url(db):
        with psycopg.connect(db, autocommit=True) as server:
            server.execute(f"SET search_path TO {LEDGER_SCHEMA}")
            cur = server.execute(statement)
            return cur.fetchall() if cur.description else []
    file = sqlite3.connect(db)
    try:
        if ";" in statement:
            file.executescript(statement)
            return []
        rows = file.execute(statement).fetchall()
        file.commit()
        return rows
    finally:
        file.close()


def refuse_fill(db: str, fill_id: str) -> None:
    """Make the database itself fail when ``fill_id`` is stored ("disk says no")."""
    if is_postgres_url(db):
        execute(
            db,
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF NEW.fill_id = '{fill_id}' THEN RAISE EXCEPTION 'disk says no'; END IF; "
            "RETURN NEW; END $$; CREATE TRIGGER refuse BEFORE INSERT ON applied_fills "
            "FOR EACH ROW EXECUTE FUNCTION refuse()",
        )
        return
    execute(
        db,
        f"CREATE TRIGGER refuse BEFORE INSERT ON applied_fills WHEN NEW.fill_id = '{fill_id}' "
        "BEGIN SELECT RAISE(ABORT, 'disk says no'); END;",
    )


def allow_fills(db: str) -> None:
    """Remove what :func:`refuse_fill` added."""
    execute(
        db, "DROP TRIGGER refuse ON applied_fills" if is_postgres_url(db) else "DROP TRIGGER refuse"
    )


def size_column(db: str) -> tuple[str, str]:
    """Return the stored type and text of p1's size, as the database keeps it."""
    if is_postgres_url(db):
        [(kind, text)] = execute(db, "SELECT pg_typeof(size)::text, size::text FROM positions")
    else:
        [(kind, text)] = execute(db, "SELECT typeof(size), size FROM positions")
    return str(kind), str(text)
