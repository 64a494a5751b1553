"""The SQLite schema of the ledger, its version, and reading an older file's registrations.

Schema 2 (fill-driven): amounts are exact decimals stored as TEXT; ``applied_fills``
holds each applied fill (its id is the once-only key) with the position's size after
it; ``results`` holds each final result as its intent's summary, checked against the
fills; ``working_orders`` holds the orders live at the venue. A partial unique index
keeps one open (not closed) position per venue, book and symbol.

Schema 1 (result-driven, amounts as REAL, no ``schema_version``) cannot be migrated
into fill-driven state: opening one is refused with a message telling to ``--rebuild``,
which carries its opened positions' terms over (:func:`read_registrations`).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from intentbus.ledger.accounting import PositionState
from intentbus.ledger.rows import REGISTRATION_COLUMNS, registration
from intentbus.ledger.storage import StoreVersionError

__all__ = ["SCHEMA", "SCHEMA_VERSION", "StoreVersionError", "prepare", "read_registrations"]

SCHEMA_VERSION = 2
VERSION_KEY = "schema_version"

SCHEMA = """
CREATE TABLE IF NOT EXISTS positions (
    position_id TEXT PRIMARY KEY,
    venue TEXT NOT NULL,
    book_id TEXT NOT NULL,
    token_contract TEXT NOT NULL,
    direction TEXT NOT NULL,
    opened_direction TEXT NOT NULL,
    allocation_usd TEXT NOT NULL,
    size TEXT NOT NULL,
    avg_entry_price TEXT NOT NULL,
    realized_pnl_usd TEXT NOT NULL,
    fees_usd TEXT NOT NULL,
    fills_applied INTEGER NOT NULL,
    results_applied INTEGER NOT NULL,
    results_fill_seq INTEGER NOT NULL,
    closed INTEGER NOT NULL,
    closed_at TEXT,
    closed_fills_seq INTEGER NOT NULL,
    updated_at TEXT,
    opened_at TEXT
);
CREATE INDEX IF NOT EXISTS positions_by_book ON positions (venue, book_id);
CREATE UNIQUE INDEX IF NOT EXISTS one_open_position_per_symbol
    ON positions (venue, book_id, token_contract) WHERE closed = 0;
CREATE TABLE IF NOT EXISTS applied_fills (
    fill_id TEXT PRIMARY KEY,
    fills_seq INTEGER NOT NULL,
    position_id TEXT NOT NULL,
    intent_id TEXT NOT NULL,
    side TEXT NOT NULL,
    size TEXT NOT NULL,
    price TEXT NOT NULL,
    fee_usd TEXT NOT NULL,
    realized_pnl_usd TEXT NOT NULL,
    size_after TEXT NOT NULL,
    direction_after TEXT NOT NULL,
    applied_at TEXT NOT NULL,
    notes TEXT NOT NULL,
    fill_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS fills_by_intent ON applied_fills (intent_id, fills_seq);
CREATE INDEX IF NOT EXISTS fills_by_position ON applied_fills (position_id, fills_seq);
CREATE TABLE IF NOT EXISTS results (
    result_id TEXT PRIMARY KEY,
    results_seq INTEGER NOT NULL,
    position_id TEXT NOT NULL,
    intent_id TEXT NOT NULL,
    action TEXT NOT NULL,
    status TEXT NOT NULL,
    last_fill_seq INTEGER NOT NULL,
    fill_count INTEGER NOT NULL,
    filled_size TEXT NOT NULL,
    fees_usd TEXT NOT NULL,
    mismatch INTEGER NOT NULL,
    closes INTEGER NOT NULL,
    applied_at TEXT NOT NULL,
    notes TEXT NOT NULL,
    result_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS results_by_seq ON results (results_seq);
CREATE TABLE IF NOT EXISTS working_orders (
    intent_id TEXT PRIMARY KEY,
    position_id TEXT NOT NULL,
    update_id TEXT NOT NULL,
    side TEXT NOT NULL,
    size TEXT NOT NULL,
    price TEXT,
    filled TEXT NOT NULL,
    order_state TEXT NOT NULL,
    client_order_id TEXT NOT NULL,
    results_seq INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS working_by_position ON working_orders (position_id);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


def schema_version(db: sqlite3.Connection) -> int:
    """Return the schema version of an open database (0: empty, 1: before versions)."""
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "positions" not in tables:
        return 0
    if "meta" in tables:
        row = db.execute("SELECT value FROM meta WHERE key = ?", (VERSION_KEY,)).fetchone()
        if row is not None:
            return int(row[0])
    return 1


def prepare(db: sqlite3.Connection, path: Path, *, create: bool = True) -> None:
    """Create the schema in an empty database, or refuse one of another version."""
    version = schema_version(db)
    if version == SCHEMA_VERSION:
        return
    if version == 0 and not create:
        raise StoreVersionError(f"{path} holds no ledger")
    if version == 0:
        db.executescript(SCHEMA)
        db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            (VERSION_KEY, str(SCHEMA_VERSION)),
        )
        return
    if version < SCHEMA_VERSION:
        raise StoreVersionError(
            f"{path} holds a ledger of schema {version} (positions moved by results, amounts "
            f"as floats); this ledger (schema {SCHEMA_VERSION}) is driven by fills in exact "
            "decimals and cannot migrate it in place. Run `intentbus ledger --rebuild` (same "
            "--db): the old file is kept aside, its opened positions are carried over, and "
            "the ledger is rebuilt from the FILLS and RESULTS streams."
        )
    raise StoreVersionError(
        f"{path} holds a ledger of schema {version}, newer than this ledger's "
        f"{SCHEMA_VERSION}: run a newer intentbus-ledger"
    )


def read_registrations(path: Path) -> list[PositionState]:
    """Return the terms of every opened position of the database at ``path``, by open time.

    Schema 1 keeps its explicitly opened positions (not those a result created); schema
    2 keeps every position with its ``closed`` state, since closing happened on stream
    messages that may have aged out.
    """
    db = sqlite3.connect(path)
    try:
        version = schema_version(db)
        if version == 0:
            return []
        if version == 1:
            rows = db.execute(
                "SELECT position_id, venue, book_id, token_contract, direction, allocation_usd, "
                "direction, 0, NULL, 0, opened_at FROM positions WHERE origin = 'opened' "
                "ORDER BY opened_at, position_id"
            ).fetchall()
        elif version == SCHEMA_VERSION:
            rows = db.execute(
                f"SELECT {REGISTRATION_COLUMNS} FROM positions ORDER BY opened_at, position_id"
            ).fetchall()
        else:
            prepare(db, path)  # raises: newer than this ledger
            return []
    finally:
        db.close()
    return [registration(row) for row in rows]
