"""The ledger's reads and writes in SQL, once for both stores.

A store gives a :class:`Runner` (how to run a statement on its connection) and a
:class:`Dialect` (its parameter mark, how to keep the highest sequence, how to lock a
row it will change, and how its columns keep values); :class:`SqlTransaction` is the
same code on SQLite and PostgreSQL. The statements are written with ``?`` marks and
only portable SQL (``ON CONFLICT`` upserts, ``NOT closed``, ``CAST(? AS TEXT) IS NULL``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from intentbus.ledger.accounting import ZERO, PositionState
from intentbus.ledger.rows import (
    FILL_COLUMNS,
    POSITION_COLUMNS,
    RESULT_COLUMNS,
    SEQ_KEYS,
    WORKING_COLUMNS,
    Row,
    fill_record,
    fill_row,
    marks,
    position,
    position_row,
    summary_record,
    summary_row,
    upsert,
    working_record,
    working_row,
)
from intentbus.ledger.storage import (
    AppliedFill,
    FillRecord,
    ResultSummary,
    StreamKind,
    WorkingOrder,
)


class Runner(Protocol):
    """Run statements on one connection (inside a transaction, or not)."""

    async def one(self, sql: str, args: Sequence[Any]) -> Row | None:
        """Return the first row of a query."""

    async def all(self, sql: str, args: Sequence[Any]) -> list[Row]:
        """Return every row of a query."""

    async def run(self, sql: str, args: Sequence[Any]) -> None:
        """Run a statement."""


@dataclass(frozen=True)
class Dialect:
    """What differs between the databases, and the statements made for one."""

    mark: str  # the parameter mark: "?" or "%s"
    greatest: str  # the two-argument maximum: MAX (SQLite) or GREATEST
    lock: str  # appended to a read of a row the transaction may change
    encode: Callable[[Row], Row]  # a row of Python values to the database's values

    def sql(self, text: str) -> str:
        """Return ``text`` with this dialect's parameter marks."""
        return text if self.mark == "?" else text.replace("?", self.mark)


@dataclass(frozen=True)
class Statements:
    """The ledger's statements in one dialect, made once."""

    seq: str
    advance: str
    load: str
    load_locked: str
    save: str
    open_on: str
    fill: str
    record_fill: str
    fills_of_intent: str
    size_as_of: str
    summary: str
    record_summary: str
    summaries: str
    mismatches: str
    flag: str
    working: str
    save_working: str
    remove_working: str
    working_of: str
    meta: str
    set_meta: str
    positions: str


def statements(d: Dialect) -> Statements:
    """Write the ledger's statements in dialect ``d``."""
    load = f"SELECT {POSITION_COLUMNS} FROM positions WHERE position_id = ?"
    results = f"SELECT {RESULT_COLUMNS} FROM results"
    return Statements(**{name: d.sql(text) for name, text in {
        "seq": "SELECT value FROM meta WHERE key = ?",
        "advance": "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET "
        f"value = CAST({d.greatest}(CAST(meta.value AS BIGINT), CAST(excluded.value AS BIGINT)) "
        "AS TEXT)",
        "load": load,
        "load_locked": load + d.lock,
        "save": upsert("positions", POSITION_COLUMNS, "position_id"),
        "open_on": f"SELECT {POSITION_COLUMNS} FROM positions WHERE venue = ? AND book_id = ? "
        "AND token_contract = ? AND NOT closed",
        "fill": f"SELECT {FILL_COLUMNS} FROM applied_fills WHERE fill_id = ?",
        "record_fill": f"INSERT INTO applied_fills ({FILL_COLUMNS}) VALUES ({marks(FILL_COLUMNS)})",
        "fills_of_intent": "SELECT fill_id, fills_seq, size, fee_usd FROM applied_fills "
        "WHERE intent_id = ? "
        "ORDER BY fills_seq",
        "size_as_of": "SELECT size_after FROM applied_fills WHERE position_id = ? "
        "AND fills_seq <= ? ORDER BY fills_seq DESC LIMIT 1",
        "summary": f"{results} WHERE result_id = ?",
        "record_summary": f"INSERT INTO results ({RESULT_COLUMNS}) VALUES "
        f"({marks(RESULT_COLUMNS)})",
        "summaries": f"{results} ORDER BY results_seq",
        "mismatches": f"{results} WHERE mismatch ORDER BY results_seq",
        "flag": "UPDATE results SET mismatch = ?, notes = ? WHERE result_id = ?",
        "working": f"SELECT {WORKING_COLUMNS} FROM working_orders WHERE intent_id = ?",
        "save_working": upsert("working_orders", WORKING_COLUMNS, "intent_id"),
        "remove_working": "DELETE FROM working_orders WHERE intent_id = ?",
        "working_of": f"SELECT {WORKING_COLUMNS} FROM working_orders WHERE "
        "CAST(? AS TEXT) IS NULL OR position_id = ? ORDER BY position_id, intent_id",
        "meta": "SELECT value FROM meta WHERE key = ?",
        "set_meta": "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        "positions": f"SELECT {POSITION_COLUMNS} FROM positions WHERE "
        "(CAST(? AS TEXT) IS NULL OR venue = ?) AND (CAST(? AS TEXT) IS NULL OR book_id = ?) "
        "ORDER BY position_id",
    }.items()})  # fmt: skip


class SqlTransaction:
    """Read and change the ledger through a runner; ``locking`` reads lock what they load."""

    def __init__(self, runner: Runner, dialect: Dialect, sql: Statements, *, locking: bool):
        self._run = runner
        self._encode = dialect.encode
        self._sql = sql
        self._load = sql.load_locked if locking else sql.load

    async def applied_seq(self, stream: StreamKind) -> int:
        """Return the last handled sequence of ``stream``."""
        row = await self._run.one(self._sql.seq, (SEQ_KEYS[stream],))
        return 0 if row is None else int(row[0])

    async def advance_seq(self, stream: StreamKind, seq: int) -> None:
        """Raise the last handled sequence to ``seq``, never lowering it."""
        await self._run.run(self._sql.advance, (SEQ_KEYS[stream], str(seq)))

    async def load(self, position_id: str) -> PositionState | None:
        """Return a position."""
        row = await self._run.one(self._load, (position_id,))
        return None if row is None else position(row)

    async def save(self, state: PositionState) -> None:
        """Insert or update a position; another open one on its symbol makes this fail."""
        await self._run.run(self._sql.save, self._encode(position_row(state)))

    async def open_on(self, venue: str, book_id: str, token_contract: str) -> PositionState | None:
        """Return the open position on this venue, book and symbol."""
        row = await self._run.one(self._sql.open_on, (venue, book_id, token_contract))
        return None if row is None else position(row)

    async def fill(self, fill_id: str) -> FillRecord | None:
        """Return an applied fill."""
        row = await self._run.one(self._sql.fill, (fill_id,))
        return None if row is None else fill_record(row)

    async def record_fill(self, record: FillRecord) -> None:
        """Store an applied fill; a second insert of one fill id fails (primary key)."""
        await self._run.run(self._sql.record_fill, self._encode(fill_row(record)))

    async def fills_of_intent(self, intent_id: str) -> list[AppliedFill]:
        """Return what was applied of an intent's fills, in stream order."""
        return [
            AppliedFill(fill_id=r[0], fills_seq=r[1], size=Decimal(r[2]), fee_usd=Decimal(r[3]))
            for r in await self._run.all(self._sql.fills_of_intent, (intent_id,))
        ]

    async def size_as_of(self, position_id: str, fills_seq: int) -> Decimal:
        """Return the size after the position's last fill at or before ``fills_seq``."""
        row = await self._run.one(self._sql.size_as_of, (position_id, fills_seq))
        return ZERO if row is None else Decimal(row[0])

    async def summary(self, result_id: str) -> ResultSummary | None:
        """Return a stored final result."""
        row = await self._run.one(self._sql.summary, (result_id,))
        return None if row is None else summary_record(row)

    async def record_summary(self, summary: ResultSummary) -> None:
        """Store a final result; a second insert of one result id fails (primary key)."""
        await self._run.run(self._sql.record_summary, self._encode(summary_row(summary)))

    async def summaries(self, *, mismatch_only: bool = False) -> list[ResultSummary]:
        """Return the stored final results in stream order."""
        sql = self._sql.mismatches if mismatch_only else self._sql.summaries
        return [summary_record(row) for row in await self._run.all(sql, ())]

    async def flag_mismatch(self, result_id: str, problem: str) -> None:
        """Mark a stored result as a mismatch and add ``problem`` to its notes."""
        found = await self.summary(result_id)
        if found is None:
            return
        notes = json.dumps([*found.notes, problem])
        await self._run.run(self._sql.flag, self._encode((True, notes, result_id)))

    async def working(self, intent_id: str, position_id: str = "") -> WorkingOrder | None:
        """Return an intent's working order (``position_id`` is not needed here)."""
        row = await self._run.one(self._sql.working, (intent_id,))
        return None if row is None else working_record(row)

    async def save_working(self, order: WorkingOrder) -> None:
        """Insert or replace an intent's working order."""
        await self._run.run(self._sql.save_working, self._encode(working_row(order)))

    async def remove_working(self, intent_id: str, position_id: str = "") -> None:
        """Forget an intent's working order (``position_id`` is not needed here)."""
        await self._run.run(self._sql.remove_working, (intent_id,))

    async def working_of(self, position_id: str | None) -> list[WorkingOrder]:
        """Return the working orders of a position (``None``: all), by position and intent."""
        rows = await self._run.all(self._sql.working_of, (position_id, position_id))
        return [working_record(row) for row in rows]

    async def meta(self, key: str) -> str | None:
        """Return a metadata value."""
        row = await self._run.one(self._sql.meta, (key,))
        return None if row is None else str(row[0])

    async def set_meta(self, key: str, value: str) -> None:
        """Store a metadata value."""
        await self._run.run(self._sql.set_meta, (key, value))

    async def positions(self, venue: str | None, book_id: str | None) -> list[PositionState]:
        """Return the positions of a venue and/or book (all by default), by id."""
        rows = await self._run.all(self._sql.positions, (venue, venue, book_id, book_id))
        return [position(row) for row in rows]
