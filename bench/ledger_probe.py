"""Observe "ledger committed" without touching the ledger: read its SQLite read-only.

The ledger stores each applied result in the transaction that updates the position
(``applied_results``: the result or intent id and when it was applied). The probe
counts those rows while a run drains and, once it is done, reads every row's time.
Column names are looked up, not assumed, so a renamed column fails with a clear error.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

TABLE_HINTS = ("applied_results", "applied")
ID_COLUMNS = ("intent_id", "result_id", "id")
TIME_COLUMNS = ("applied_at_ns", "applied_at", "committed_at", "at")
RESULT_PREFIX = "res-"


class ProbeError(RuntimeError):
    """Raise when the ledger's database does not have the table the probe reads."""


def to_ns(value: object) -> int:
    """Turn a stored time (ISO text, epoch s/ms/us/ns number) into epoch nanoseconds."""
    if isinstance(value, str):
        try:
            return to_ns(float(value))
        except ValueError:
            return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1e9)
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
    """Read applied results from the ledger database, read-only."""

    def __init__(self, db_path: Path) -> None:
        self._path = db_path
        self._conn: sqlite3.Connection | None = None
        self._query = ""

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            if not self._path.exists():
                raise ProbeError(f"the ledger database {self._path} does not exist yet")
            conn = sqlite3.connect(
                f"file:{self._path}?mode=ro", uri=True, timeout=1.0, check_same_thread=False
            )
            self._query = _find_query(conn)
            self._conn = conn
        return self._conn

    def count(self) -> int:
        """Return how many results the ledger has committed."""
        conn = self._connect()
        row = conn.execute(f"SELECT count(*) FROM ({self._query})").fetchone()
        return int(row[0])

    def committed(self) -> dict[str, int]:
        """Return intent id -> commit time (epoch ns) of every applied result."""
        rows = self._connect().execute(self._query).fetchall()
        return {intent_id_of(str(stored)): to_ns(at) for stored, at in rows}

    def close(self) -> None:
        """Close the read-only connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _find_query(conn: sqlite3.Connection) -> str:
    tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    for hint in TABLE_HINTS:
        for table in tables:
            if hint in table.lower():
                columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
                id_col = next((c for c in ID_COLUMNS if c in columns), None)
                at_col = next((c for c in TIME_COLUMNS if c in columns), None)
                if id_col and at_col:
                    return f"SELECT {id_col}, {at_col} FROM {table}"
    raise ProbeError(
        f"no applied-results table with an id and a time column in the ledger db: {tables}"
    )
