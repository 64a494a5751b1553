"""SQLite implementation of :class:`~intentbus.ledger.storage.LedgerStore`.

WAL journal with ``synchronous=FULL``: a transaction is on disk when ``COMMIT``
returns, and the consumers acknowledge messages only after that. Each transaction is
``BEGIN IMMEDIATE`` so it holds the write lock from its first read. Decimals are stored
as TEXT (``str(Decimal)``), so they come back exactly. The schema is in
:mod:`intentbus.ledger.sqlite_schema`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from intentbus.ledger.accounting import ZERO, PositionState
from intentbus.ledger.sqlite_rows import (
    FILL_COLUMNS,
    POSITION_COLUMNS,
    RESULT_COLUMNS,
    SEQ_KEYS,
    WORKING_COLUMNS,
    fill_record,
    marks,
    position,
    position_row,
    summary_record,
    upsert,
    working_record,
)
from intentbus.ledger.sqlite_schema import prepare
from intentbus.ledger.storage import FillRecord, ResultSummary, StreamKind, WorkingOrder


class SqliteTransaction:
    """Run the reads and writes of one transaction on a connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def _one(self, sql: str, *args: Any) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self._db.execute(sql, args).fetchone()
        return row

    def applied_seq(self, stream: StreamKind) -> int:
        """Return the last handled sequence of ``stream``."""
        row = self._one("SELECT value FROM meta WHERE key = ?", SEQ_KEYS[stream])
        return 0 if row is None else int(row[0])

    def advance_seq(self, stream: StreamKind, seq: int) -> None:
        """Raise the last handled sequence to ``seq``, never lowering it."""
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET "
            "value = CAST(MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER)) AS TEXT)",
            (SEQ_KEYS[stream], str(seq)),
        )

    def load(self, position_id: str) -> PositionState | None:
        """Return a position."""
        row = self._one(
            f"SELECT {POSITION_COLUMNS} FROM positions WHERE position_id = ?", position_id
        )
        return None if row is None else position(row)

    def save(self, state: PositionState) -> None:
        """Insert or update a position; another open one on its symbol makes this fail."""
        self._db.execute(upsert("positions", POSITION_COLUMNS, "position_id"), position_row(state))

    def open_on(self, venue: str, book_id: str, token_contract: str) -> PositionState | None:
        """Return the open position on this venue, book and symbol."""
        row = self._one(
            f"SELECT {POSITION_COLUMNS} FROM positions WHERE venue = ? AND book_id = ? "
            "AND token_contract = ? AND closed = 0",
            venue,
            book_id,
            token_contract,
        )
        return None if row is None else position(row)

    def fill(self, fill_id: str) -> FillRecord | None:
        """Return an applied fill."""
        row = self._one(f"SELECT {FILL_COLUMNS} FROM applied_fills WHERE fill_id = ?", fill_id)
        return None if row is None else fill_record(row)

    def record_fill(self, f: FillRecord) -> None:
        """Store an applied fill; a second insert of one fill id fails."""
        self._db.execute(
            f"INSERT INTO applied_fills ({FILL_COLUMNS}) VALUES ({marks(FILL_COLUMNS)})",
            (
                f.fill_id, f.fills_seq, f.position_id, f.intent_id, f.side.value, str(f.size),
                str(f.price), str(f.fee_usd), str(f.realized_pnl_usd), str(f.size_after),
                f.direction_after.value, f.applied_at.isoformat(), json.dumps(list(f.notes)),
                f.fill_json,
            ),
        )  # fmt: skip

    def fills_of_intent(self, intent_id: str) -> list[FillRecord]:
        """Return an intent's applied fills in stream order."""
        rows = self._db.execute(
            f"SELECT {FILL_COLUMNS} FROM applied_fills WHERE intent_id = ? ORDER BY fills_seq",
            (intent_id,),
        ).fetchall()
        return [fill_record(row) for row in rows]

    def size_as_of(self, position_id: str, fills_seq: int) -> Decimal:
        """Return the size after the position's last fill at or before ``fills_seq``."""
        row = self._one(
            "SELECT size_after FROM applied_fills WHERE position_id = ? AND fills_seq <= ? "
            "ORDER BY fills_seq DESC LIMIT 1",
            position_id,
            fills_seq,
        )
        return ZERO if row is None else Decimal(row[0])

    def summary(self, result_id: str) -> ResultSummary | None:
        """Return a stored final result."""
        row = self._one(f"SELECT {RESULT_COLUMNS} FROM results WHERE result_id = ?", result_id)
        return None if row is None else summary_record(row)

    def record_summary(self, s: ResultSummary) -> None:
        """Store a final result; a second insert of one result id fails."""
        self._db.execute(
            f"INSERT INTO results ({RESULT_COLUMNS}) VALUES ({marks(RESULT_COLUMNS)})",
            (
                s.result_id, s.results_seq, s.position_id, s.intent_id, s.action, s.status,
                s.last_fill_seq, s.fill_count, str(s.filled_size), str(s.fees_usd),
                int(s.mismatch), int(s.closes), s.applied_at.isoformat(),
                json.dumps(list(s.notes)), s.result_json,
            ),
        )  # fmt: skip

    def flag_mismatch(self, result_id: str, problem: str) -> None:
        """Mark a stored result as a mismatch and add ``problem`` to its notes."""
        found = self.summary(result_id)
        if found is None:
            return
        self._db.execute(
            "UPDATE results SET mismatch = 1, notes = ? WHERE result_id = ?",
            (json.dumps([*found.notes, problem]), result_id),
        )

    def working(self, intent_id: str) -> WorkingOrder | None:
        """Return an intent's working order."""
        row = self._one(
            f"SELECT {WORKING_COLUMNS} FROM working_orders WHERE intent_id = ?", intent_id
        )
        return None if row is None else working_record(row)

    def save_working(self, o: WorkingOrder) -> None:
        """Insert or replace an intent's working order."""
        self._db.execute(
            upsert("working_orders", WORKING_COLUMNS, "intent_id"),
            (
                o.intent_id, o.position_id, o.update_id, o.side.value, str(o.size),
                None if o.price is None else str(o.price), str(o.filled), o.order_state,
                o.client_order_id, o.results_seq, o.created_at.isoformat(),
            ),
        )  # fmt: skip

    def remove_working(self, intent_id: str) -> None:
        """Forget an intent's working order."""
        self._db.execute("DELETE FROM working_orders WHERE intent_id = ?", (intent_id,))

    def working_of(self, position_id: str | None) -> list[WorkingOrder]:
        """Return the working orders of a position (``None``: all), by position and intent."""
        rows = self._db.execute(
            f"SELECT {WORKING_COLUMNS} FROM working_orders "
            "WHERE ?1 IS NULL OR position_id = ?1 ORDER BY position_id, intent_id",
            (position_id,),
        ).fetchall()
        return [working_record(row) for row in rows]


class SqliteStore:
    """Keep the ledger in one SQLite file."""

    def __init__(self, path: Path | str, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._db: sqlite3.Connection | None = None

    def open(self) -> None:
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

    @property
    def _reader(self) -> SqliteTransaction:
        return SqliteTransaction(self._conn)

    def applied_seq(self, stream: StreamKind) -> int:
        """Return the last handled sequence of ``stream``."""
        return self._reader.applied_seq(stream)

    def get(self, position_id: str) -> PositionState | None:
        """Return one position."""
        return self._reader.load(position_id)

    def working_orders(self, position_id: str | None = None) -> list[WorkingOrder]:
        """Return the working orders of one position, or all."""
        return self._reader.working_of(position_id)

    def summary(self, result_id: str) -> ResultSummary | None:
        """Return a stored final result."""
        return self._reader.summary(result_id)

    def summaries(self, *, mismatch_only: bool = False) -> list[ResultSummary]:
        """Return the stored final results in stream order."""
        rows = self._conn.execute(
            f"SELECT {RESULT_COLUMNS} FROM results WHERE ?1 = 0 OR mismatch = 1 "
            "ORDER BY results_seq",
            (int(mismatch_only),),
        ).fetchall()
        return [summary_record(row) for row in rows]

    def fill(self, fill_id: str) -> FillRecord | None:
        """Return an applied fill."""
        return self._reader.fill(fill_id)

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

    def list(self, venue: str | None = None, book_id: str | None = None) -> list[PositionState]:
        """Return the positions of a venue and/or book (all by default), by id."""
        rows = self._conn.execute(
            f"SELECT {POSITION_COLUMNS} FROM positions "
            "WHERE (?1 IS NULL OR venue = ?1) AND (?2 IS NULL OR book_id = ?2) "
            "ORDER BY position_id",
            (venue, book_id),
        ).fetchall()
        return [position(row) for row in rows]
