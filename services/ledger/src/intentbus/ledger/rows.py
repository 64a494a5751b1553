"""Rows of the ledger's tables: column lists, and records to and from rows.

Records become rows of Python values (``Decimal``, ``bool``, ``datetime``); each store
turns them into what its database keeps (:func:`as_text` for SQLite's TEXT columns,
unchanged for PostgreSQL's NUMERIC, BOOLEAN and TIMESTAMPTZ). Reading accepts either.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from intentbus.ledger.accounting import PositionState, dec
from intentbus.ledger.storage import FillRecord, ResultSummary, StreamKind, WorkingOrder
from intentbus.schemas import Direction, Side

Row = tuple[Any, ...]

SEQ_KEYS: dict[StreamKind, str] = {"results": "results_seq", "fills": "fills_seq"}

POSITION_COLUMNS = (
    "position_id, venue, book_id, token_contract, direction, opened_direction, "
    "allocation_usd, size, avg_entry_price, realized_pnl_usd, fees_usd, fills_applied, "
    "results_applied, results_fill_seq, closed, closed_at, closed_fills_seq, updated_at, "
    "opened_at"
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
# The terms of an opened position, as a rebuild carries them over.
REGISTRATION_COLUMNS = (
    "position_id, venue, book_id, token_contract, opened_direction, allocation_usd, "
    "opened_direction, closed, closed_at, closed_fills_seq, opened_at"
)


def marks(columns: str) -> str:
    return ", ".join("?" for _ in columns.split(","))


def upsert(table: str, columns: str, key: str) -> str:
    names = [name.strip() for name in columns.split(",")]
    updates = ", ".join(f"{name} = excluded.{name}" for name in names if name != key)
    return (
        f"INSERT INTO {table} ({columns}) VALUES ({marks(columns)}) "
        f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
    )


def as_text(row: Row) -> Row:
    """Return ``row`` with decimals and times as text and booleans as 0/1 (SQLite)."""
    return tuple(
        str(v) if isinstance(v, Decimal)
        else int(v) if isinstance(v, bool)
        else v.isoformat() if isinstance(v, datetime)
        else v
        for v in row
    )  # fmt: skip


def parse_time(value: datetime | str | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def _time(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def position_row(s: PositionState) -> Row:
    return (
        s.position_id, s.venue, s.book_id, s.token_contract, s.direction.value,
        s.opened_direction.value, s.allocation_usd, s.size, s.avg_entry_price,
        s.realized_pnl_usd, s.fees_usd, s.fills_applied, s.results_applied,
        s.results_fill_seq, s.closed, s.closed_at, s.closed_fills_seq, s.updated_at,
        s.opened_at,
    )  # fmt: skip


def position(r: Row) -> PositionState:
    return PositionState(
        position_id=r[0], venue=r[1], book_id=r[2], token_contract=r[3],
        direction=Direction(r[4]), opened_direction=Direction(r[5]),
        allocation_usd=Decimal(r[6]), size=Decimal(r[7]), avg_entry_price=Decimal(r[8]),
        realized_pnl_usd=Decimal(r[9]), fees_usd=Decimal(r[10]), fills_applied=r[11],
        results_applied=r[12], results_fill_seq=r[13], closed=bool(r[14]),
        closed_at=parse_time(r[15]), closed_fills_seq=r[16], updated_at=parse_time(r[17]),
        opened_at=parse_time(r[18]),
    )  # fmt: skip


def fill_row(f: FillRecord) -> Row:
    return (
        f.fill_id, f.fills_seq, f.position_id, f.intent_id, f.side.value, f.size, f.price,
        f.fee_usd, f.realized_pnl_usd, f.size_after, f.direction_after.value, f.applied_at,
        json.dumps(list(f.notes)), f.fill_json,
    )  # fmt: skip


def fill_record(r: Row) -> FillRecord:
    return FillRecord(
        fill_id=r[0], fills_seq=r[1], position_id=r[2], intent_id=r[3], side=Side(r[4]),
        size=Decimal(r[5]), price=Decimal(r[6]), fee_usd=Decimal(r[7]),
        realized_pnl_usd=Decimal(r[8]), size_after=Decimal(r[9]),
        direction_after=Direction(r[10]), applied_at=_time(r[11]),
        notes=tuple(json.loads(r[12])), fill_json=r[13],
    )  # fmt: skip


def summary_row(s: ResultSummary) -> Row:
    return (
        s.result_id, s.results_seq, s.position_id, s.intent_id, s.action, s.status,
        s.last_fill_seq, s.fill_count, s.filled_size, s.fees_usd, s.mismatch, s.closes,
        s.applied_at, json.dumps(list(s.notes)), s.result_json,
    )  # fmt: skip


def summary_record(r: Row) -> ResultSummary:
    return ResultSummary(
        result_id=r[0], results_seq=r[1], position_id=r[2], intent_id=r[3], action=r[4],
        status=r[5], last_fill_seq=r[6], fill_count=r[7], filled_size=Decimal(r[8]),
        fees_usd=Decimal(r[9]), mismatch=bool(r[10]), closes=bool(r[11]),
        applied_at=_time(r[12]), notes=tuple(json.loads(r[13])), result_json=r[14],
    )  # fmt: skip


def working_row(o: WorkingOrder) -> Row:
    return (
        o.intent_id, o.position_id, o.update_id, o.side.value, o.size, o.price, o.filled,
        o.order_state, o.client_order_id, o.results_seq, o.created_at,
    )  # fmt: skip


def working_record(r: Row) -> WorkingOrder:
    return WorkingOrder(
        intent_id=r[0], position_id=r[1], update_id=r[2], side=Side(r[3]), size=Decimal(r[4]),
        price=None if r[5] is None else Decimal(r[5]), filled=Decimal(r[6]),
        order_state=r[7], client_order_id=r[8], results_seq=r[9], created_at=_time(r[10]),
    )  # fmt: skip


def registration(r: Row) -> PositionState:
    """Return an opened position's terms from a row of :data:`REGISTRATION_COLUMNS`."""
    return PositionState(
        position_id=r[0], venue=r[1], book_id=r[2], token_contract=r[3],
        direction=Direction(r[4]), opened_direction=Direction(r[6]),
        allocation_usd=dec(r[5]),
        closed=bool(r[7]), closed_at=parse_time(r[8]), closed_fills_seq=r[9],
        updated_at=parse_time(r[10]), opened_at=parse_time(r[10]),
    )  # fmt: skip
