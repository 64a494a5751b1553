"""Observe the ledger's commits without touching the ledger: read its SQLite read-only.

The ledger (schema 2, fill-driven) stores, in the transaction that applies them:

- each final result as its intent's summary (``results``: ``result_id``, ``intent_id``,
  ``status``, ``applied_at``): the pipeline's end point, "ledger committed";
- each fill (``applied_fills``: ``fill_id``, ``intent_id``, ``applied_at`` and the fill
  message itself in ``fill_json``, whose ``created_at`` the executor stamped when it
  built the fill): the fill-to-ledger latency; its ``venue_time`` (the venue's clock
  when it matched the order; the paper venue matches a marketable order in the step
  that accepts it) gives tick to trade.

``applied_at`` is ``datetime.now(UTC)`` taken while the batch's transaction is open, just
before its ``COMMIT``. The probe counts result rows while a run drains and, once it is
done, reads every row's times. Column names are looked up, not assumed, so a renamed
column fails with a clear error.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

RESULT_TABLES = ("results", "applied_results")
FILL_TABLES = ("applied_fills",)
ID_COLUMNS = ("intent_id", "result_id", "id")
TIME_COLUMNS = ("applied_at_ns", "applied_at", "committed_at", "at")
FILL_JSON_COLUMN = "fill_json"
RESULT_PREFIX = "res-"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ProbeError(RuntimeError):
    """Raise when the ledger's database does not have the tables the probe reads."""


def to_ns(value: object) -> int:
    """Turn a stored time (ISO text, epoch s/ms/us/ns number) into epoch nanoseconds."""
    if isinstance(value, str):
        try:
            return to_ns(float(value))
        except ValueError:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return (moment - EPOCH) // timedelta(microseconds=1) * 1_000  # exact, no float
    if isinstance(value, int | float):
        magnitude = abs(float(value))
        for limit, scale in ((1e11, 1e9), (1e14, 1e6), (1e17, 1e3)):
            if magnitude < limit:
                return int(float(value) * scale)
        return int(value)
    raise ProbeError(f"cannot read a time from {value!r}")


def intent_id_of(stored_id: str) -> str:
    """Return the intent id of a stored result or intent id."""
    return stored_id.removeprefix(RESULT_PREFIX)


class LedgerProbe:
    """Read applied results and fills from the ledger database, read-only."""

    def __init__(self, db_path: Path) -> None:
        self._path = db_path
        self._conn: sqlite3.Connection | None = None
        self._results = ""
        self._statuses = ""
        self._fills = ""

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            if not self._path.exists():
                raise ProbeError(f"the ledger database {self._path} does not exist yet")
            conn = sqlite3.connect(
                f"file:{self._path}?mode=ro", uri=True, timeout=1.0, check_same_thread=False
            )
            try:
                self._results, self._statuses = _results_queries(conn)
                self._fills = _fills_query(conn)
            except ProbeError:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def count(self) -> int:
        """Return how many final results the ledger has committed."""
        conn = self._connect()
        row = conn.execute(f"SELECT count(*) FROM ({self._results})").fetchone()
        return int(row[0])

    def committed(self) -> dict[str, int]:
        """Return intent id -> commit time (epoch ns) of every applied final result."""
        rows = self._connect().execute(self._results).fetchall()
        return {intent_id_of(str(stored)): to_ns(at) for stored, at in rows}

    def statuses(self) -> dict[str, int]:
        """Return how many applied final results have each status (``filled``, ...)."""
        conn = self._connect()
        if not self._statuses:
            return {}
        return dict(Counter(str(row[0]) for row in conn.execute(self._statuses)))

    def fills(self) -> list[tuple[str, int, int]]:
        """Return (intent id, fill created_at, fill applied_at) of every applied fill, in ns."""
        rows = self._connect().execute(self._fills).fetchall()
        return [(str(row[0]), to_ns(row[1]), to_ns(row[2])) for row in rows]

    def trades(self) -> dict[str, int]:
        """Return intent id -> the venue time (ns) of the intent's first applied fill."""
        first: dict[str, int] = {}
        for row in self._connect().execute(self._fills).fetchall():
            intent, at = str(row[0]), to_ns(row[3])
            if intent not in first or at < first[intent]:
                first[intent] = at
        return first

    def close(self) -> None:
        """Close the read-only connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _tables(conn: sqlite3.Connection) -> list[str]:
    return [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def _results_queries(conn: sqlite3.Connection) -> tuple[str, str]:
    """Return the query of (id, applied time) per final result and the one of its status."""
    tables = _tables(conn)
    for table in (t for name in RESULT_TABLES for t in tables if t.lower() == name):
        columns = _columns(conn, table)
        id_col = next((c for c in ID_COLUMNS if c in columns), None)
        at_col = next((c for c in TIME_COLUMNS if c in columns), None)
        if id_col and at_col:
            status = f"SELECT status FROM {table}" if "status" in columns else ""
            return f"SELECT {id_col}, {at_col} FROM {table}", status
    raise ProbeError(
        f"no results table ({' or '.join(RESULT_TABLES)}) with an id and a time column "
        f"in the ledger db: {tables}"
    )


def _fills_query(conn: sqlite3.Connection) -> str:
    """Return the query of (intent id, created_at, applied time, venue_time) per fill."""
    tables = _tables(conn)
    for table in (t for name in FILL_TABLES for t in tables if t.lower() == name):
        columns = _columns(conn, table)
        at_col = next((c for c in TIME_COLUMNS if c in columns), None)
        if "intent_id" in columns and at_col and FILL_JSON_COLUMN in columns:
            created = f"json_extract({FILL_JSON_COLUMN}, '$.created_at')"
            venue = f"json_extract({FILL_JSON_COLUMN}, '$.venue_time')"
            return f"SELECT intent_id, {created}, {at_col}, {venue} FROM {table}"
    raise ProbeError(
        f"no fills table ({' or '.join(FILL_TABLES)}) with intent_id, an applied time and "
        f"{FILL_JSON_COLUMN} in the ledger db: {tables}"
    )
