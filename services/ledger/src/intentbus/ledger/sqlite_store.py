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
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from intentbus.ledger.accounting import ZERO, PositionState
from intentbus.ledger.sqlite_schema import prepare
from intentbus.ledger.storage import (
    FillRecord,
    ResultSummary,
    StreamKind,
    WorkingOrder,
)
from intentbus.schemas import Direction, Side

SEQ_KEYS: dict[StreamKind, str] = {"results": "results_seq", "fills": "fills_seq"}

POSITION_COLUMNS = (
    "position_id, venue, book_id, token_contract, direction, opened_direction, "
    "allocation_usd, size, avg_entry_price, realized_pnl_usd, fees_usd, fills_applied, "
    "results_applied, results_fill_seq, closed, closed_at, updated_at, opened_at"
)
FILL_COLUMNS = (
    "fill_id, fills_seq, position_id, intent_id, side, size, price, fee_usd, "
    "realized_pnl_usd, size_after, direction_after, applied_at, notes, fill_json"
)
RESULT_COLUMNS = (
    "result_id, results_seq, position_id, intent_id, action, status, last_fill_seq, "
    "fill_count, filled_size, fees_usd, mismatch, closes, applied_at, notes, result_json"
)
WORKING_COLUMNS = (
    "intent_id, position_id, update_id, side, size, price, filled, order_state, "
    "client_order_id, results_seq, created_at"
)


def _marks(columns: str) -> str:
    return ", ".join("?" for _ in columns.split(","))


def _upsert(table: str, columns: str, key: str) -> str:
    names = [name.strip() for name in columns.split(",")]
    updates = ", ".join(f"{name} = excluded.{name}" for name in names if name != key)
    return (
        f"INSERT INTO {table} ({columns}) VALUES ({_marks(columns)}) "
        f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
    )


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _position_row(s: PositionState) -> tuple[Any, ...]:
    return (
        s.position_id, s.venue, s.book_id, s.token_contract, s.direction.value,
        s.opened_direction.value, str(s.allocation_usd), str(s.size), str(s.avg_entry_price),
        str(s.realized_pnl_usd), str(s.fees_usd), s.fills_applied, s.results_applied,
        s.results_fill_seq, int(s.closed), _time(s.closed_at), _time(s.updated_at),
        _time(s.opened_at),
    )  # fmt: skip


def _position(r: tuple[Any, ...]) -> PositionState:
    return PositionState(
        position_id=r[0], venue=r[1], book_id=r[2], token_contract=r[3],
        direction=Direction(r[4]), opened_direction=Direction(r[5]),
        allocation_usd=Decimal(r[6]), size=Decimal(r[7]), avg_entry_price=Decimal(r[8]),
        realized_pnl_usd=Decimal(r[9]), fees_usd=Decimal(r[10]), fills_applied=r[11],
        results_applied=r[12], results_fill_seq=r[13], closed=bool(r[14]),
        closed_at=_parse_time(r[15]), updated_at=_parse_time(r[16]),
        opened_at=_parse_time(r[17]),
    )  # fmt: skip


def _fill(r: tuple[Any, ...]) -> FillRecord:
    return FillRecord(
        fill_id=r[0], fills_seq=r[1], position_id=r[2], intent_id=r[3], side=Side(r[4]),
        size=Decimal(r[5]), price=Decimal(r[6]), fee_usd=Decimal(r[7]),
        realized_pnl_usd=Decimal(r[8]), size_after=Decimal(r[9]),
        direction_after=Direction(r[10]), applied_at=datetime.fromisoformat(r[11]),
        notes=tuple(json.loads(r[12])), fill_json=r[13],
    )  # fmt: skip


def _summary(r: tuple[Any, ...]) -> ResultSummary:
    return ResultSummary(
        result_id=r[0], results_seq=r[1], position_id=r[2], intent_id=r[3], action=r[4],
        status=r[5], last_fill_seq=r[6], fill_count=r[7], filled_size=Decimal(r[8]),
        fees_usd=Decimal(r[9]), mismatch=bool(r[10]), closes=bool(r[11]),
        applied_at=datetime.fromisoformat(r[12]), notes=tuple(json.loads(r[13])),
        result_json=r[14],
    )  # fmt: skip


def _working(r: tuple[Any, ...]) -> WorkingOrder:
    return WorkingOrder(
        intent_id=r[0], position_id=r[1], update_id=r[2], side=Side(r[3]), size=Decimal(r[4]),
        price=None if r[5] is None else Decimal(r[5]), filled=Decimal(r[6]),
        order_state=r[7], client_order_id=r[8], results_seq=r[9],
        created_at=datetime.fromisoformat(r[10]),
    )  # fmt: skip


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
        return None if row is None else _position(row)

    def save(self, state: PositionState) -> None:
        """Insert or update a position; another open one on its symbol makes this fail."""
        self._db.execute(
            _upsert("positions", POSITION_COLUMNS, "position_id"), _position_row(state)
        )

    def open_on(self, venue: str, book_id: str, token_contract: str) -> PositionState | None:
        """Return the open position on this venue, book and symbol."""
        row = self._one(
            f"SELECT {POSITION_COLUMNS} FROM positions WHERE venue = ? AND book_id = ? "
            "AND token_contract = ? AND closed = 0",
            venue,
            book_id,
            token_contract,
        )
        return None if row is None else _position(row)

    def fill(self, fill_id: str) -> FillRecord | None:
        """Return an applied fill."""
        row = self._one(f"SELECT {FILL_COLUMNS} FROM applied_fills WHERE fill_id = ?", fill_id)
        return None if row is None else _fill(row)

    def record_fill(self, f: FillRecord) -> None:
        """Store an applied fill; a second insert of one fill id fails."""
        self._db.execute(
            f"INSERT INTO applied_fills ({FILL_COLUMNS}) VALUES ({_marks(FILL_COLUMNS)})",
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
        return [_fill(row) for row in rows]

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
        return None if row is None else _summary(row)

    def record_summary(self, s: ResultSummary) -> None:
        """Store a final result; a second insert of one result id fails."""
        self._db.execute(
            f"INSERT INTO results ({RESULT_COLUMNS}) VALUES ({_marks(RESULT_COLUMNS)})",
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
        return None if row is None else _working(row)

    def save_working(self, o: WorkingOrder) -> None:
        """Insert or replace an intent's working order."""
        self._db.execute(
            _upsert("working_orders", WORKING_COLUMNS, "intent_id"),
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
        return [_working(row) for row in rows]


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
        return [_summary(row) for row in rows]

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
        return [_position(row) for row in rows]
