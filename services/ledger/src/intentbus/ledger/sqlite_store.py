"""SQLite implementation of :class:`~intentbus.ledger.storage.LedgerStore`.

WAL journal with ``synchronous=FULL``: a transaction is on disk when ``COMMIT``
returns, and the consumer acknowledges a result only after that. Each transaction is
``BEGIN IMMEDIATE`` so it holds the write lock from its first read.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from intentbus.ledger.accounting import PositionState
from intentbus.ledger.storage import AuditRecord
from intentbus.schemas import Direction

SEQ_KEY = "results_seq"

SCHEMA = """
CREATE TABLE IF NOT EXISTS positions (
    position_id TEXT PRIMARY KEY,
    venue TEXT NOT NULL,
    book_id TEXT NOT NULL,
    token_contract TEXT NOT NULL,
    direction TEXT NOT NULL,
    allocation_usd REAL NOT NULL,
    size REAL NOT NULL,
    avg_entry_price REAL NOT NULL,
    realized_pnl_usd REAL NOT NULL,
    fees_usd REAL NOT NULL,
    results_applied INTEGER NOT NULL,
    updated_at TEXT,
    origin TEXT NOT NULL,
    opened_at TEXT
);
CREATE INDEX IF NOT EXISTS positions_by_book ON positions (venue, book_id);
CREATE TABLE IF NOT EXISTS applied_results (
    result_id TEXT PRIMARY KEY,
    results_seq INTEGER NOT NULL,
    position_id TEXT NOT NULL,
    intent_id TEXT NOT NULL,
    status TEXT NOT NULL,
    applied_at TEXT NOT NULL,
    notes TEXT NOT NULL,
    result_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

POSITION_COLUMNS = (
    "position_id, venue, book_id, token_contract, direction, allocation_usd, size, "
    "avg_entry_price, realized_pnl_usd, fees_usd, results_applied, updated_at, origin, opened_at"
)


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _state(row: tuple[Any, ...]) -> PositionState:
    return PositionState(
        position_id=row[0],
        venue=row[1],
        book_id=row[2],
        token_contract=row[3],
        direction=Direction(row[4]),
        allocation_usd=row[5],
        size=row[6],
        avg_entry_price=row[7],
        realized_pnl_usd=row[8],
        fees_usd=row[9],
        results_applied=row[10],
        updated_at=_parse_time(row[11]),
        origin=row[12],
        opened_at=_parse_time(row[13]),
    )


class SqliteTransaction:
    """Run the reads and writes of one transaction on a connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def is_applied(self, result_id: str) -> bool:
        """Say whether ``result_id`` was already applied."""
        row = self._db.execute(
            "SELECT 1 FROM applied_results WHERE result_id = ?", (result_id,)
        ).fetchone()
        return row is not None

    def load(self, position_id: str) -> PositionState | None:
        """Return a position."""
        row = self._db.execute(
            f"SELECT {POSITION_COLUMNS} FROM positions WHERE position_id = ?", (position_id,)
        ).fetchone()
        return None if row is None else _state(row)

    def save(self, state: PositionState) -> None:
        """Insert or replace a position."""
        self._db.execute(
            f"INSERT OR REPLACE INTO positions ({POSITION_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                state.position_id,
                state.venue,
                state.book_id,
                state.token_contract,
                state.direction.value,
                state.allocation_usd,
                state.size,
                state.avg_entry_price,
                state.realized_pnl_usd,
                state.fees_usd,
                state.results_applied,
                _time(state.updated_at),
                state.origin,
                _time(state.opened_at),
            ),
        )

    def record(self, audit: AuditRecord) -> None:
        """Store an applied result's id and audit row (a second insert of one id fails)."""
        self._db.execute(
            "INSERT INTO applied_results (result_id, results_seq, position_id, intent_id, "
            "status, applied_at, notes, result_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                audit.result_id,
                audit.results_seq,
                audit.position_id,
                audit.intent_id,
                audit.status,
                audit.applied_at.isoformat(),
                json.dumps(list(audit.notes)),
                audit.result_json,
            ),
        )

    def advance_seq(self, seq: int) -> None:
        """Raise the last handled sequence to ``seq``, never lowering it."""
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET "
            "value = CAST(MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER)) AS TEXT)",
            (SEQ_KEY, str(seq)),
        )


class SqliteStore:
    """Keep the ledger in one SQLite file."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None

    def open(self) -> None:
        """Open the file, switch to WAL and create the tables."""
        if self.path.parent != Path():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA busy_timeout=5000")
        db.executescript(SCHEMA)
        self._db = db

    def close(self) -> None:
        """Close the file."""
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError(f"ledger store {self.path} is not open")
        return self._db

    @contextmanager
    def transaction(self) -> Iterator[SqliteTransaction]:
        """Run one ``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back on any exception)."""
        db = self._conn
        db.execute("BEGIN IMMEDIATE")
        try:
            yield SqliteTransaction(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def applied_seq(self) -> int:
        """Return the last handled ``RESULTS`` stream sequence."""
        value = self.meta(SEQ_KEY)
        return 0 if value is None else int(value)

    def get(self, position_id: str) -> PositionState | None:
        """Return one position."""
        return SqliteTransaction(self._conn).load(position_id)

    def list(self, venue: str | None = None, book_id: str | None = None) -> list[PositionState]:
        """Return the positions of a venue and/or book (all by default), by id."""
        rows = self._conn.execute(
            f"SELECT {POSITION_COLUMNS} FROM positions "
            "WHERE (?1 IS NULL OR venue = ?1) AND (?2 IS NULL OR book_id = ?2) "
            "ORDER BY position_id",
            (venue, book_id),
        ).fetchall()
        return [_state(row) for row in rows]

    def audit(self, result_id: str) -> AuditRecord | None:
        """Return the audit row of an applied result."""
        row = self._conn.execute(
            "SELECT result_id, results_seq, position_id, intent_id, status, applied_at, notes, "
            "result_json FROM applied_results WHERE result_id = ?",
            (result_id,),
        ).fetchone()
        if row is None:
            return None
        return AuditRecord(
            result_id=row[0],
            results_seq=row[1],
            position_id=row[2],
            intent_id=row[3],
            status=row[4],
            applied_at=datetime.fromisoformat(row[5]),
            notes=tuple(json.loads(row[6])),
            result_json=row[7],
        )

    def meta(self, key: str) -> str | None:
        """Return a metadata value."""
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Store a metadata value."""
        self._conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )
