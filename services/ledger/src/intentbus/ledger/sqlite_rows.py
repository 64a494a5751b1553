"""Rows of the SQLite ledger: column lists, and records to and from rows (decimals as TEXT)."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from intentbus.ledger.accounting import PositionState
from intentbus.ledger.storage import FillRecord, ResultSummary, StreamKind, WorkingOrder
from intentbus.schemas import Direction, Side

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


def marks(columns: str) -> str:
    return ", ".join("?" for _ in columns.split(","))


def upsert(table: str, columns: str, key: str) -> str:
    names = [name.strip() for name in columns.split(",")]
    updates = ", ".join(f"{name} = excluded.{name}" for name in names if name != key)
    return (
        f"INSERT INTO {table} ({columns}) VALUES ({marks(columns)}) "
        f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
    )


def time_text(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def parse_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def position_row(s: PositionState) -> tuple[Any, ...]:
    return (
        s.position_id, s.venue, s.book_id, s.token_contract, s.direction.value,
        s.opened_direction.value, str(s.allocation_usd), str(s.size), str(s.avg_entry_price),
        str(s.realized_pnl_usd), str(s.fees_usd), s.fills_applied, s.results_applied,
        s.results_fill_seq, int(s.closed), time_text(s.closed_at), s.closed_fills_seq,
        time_text(s.updated_at),
        time_text(s.opened_at),
    )  # fmt: skip


def position(r: tuple[Any, ...]) -> PositionState:
    return PositionState(
        position_id=r[0], venue=r[1], book_id=r[2], token_contract=r[3],
        direction=Direction(r[4]), opened_direction=Direction(r[5]),
        allocation_usd=Decimal(r[6]), size=Decimal(r[7]), avg_entry_price=Decimal(r[8]),
        realized_pnl_usd=Decimal(r[9]), fees_usd=Decimal(r[10]), fills_applied=r[11],
        results_applied=r[12], results_fill_seq=r[13], closed=bool(r[14]),
        closed_at=parse_time(r[15]), closed_fills_seq=r[16], updated_at=parse_time(r[17]),
        opened_at=parse_time(r[18]),
    )  # fmt: skip


def fill_record(r: tuple[Any, ...]) -> FillRecord:
    return FillRecord(
        fill_id=r[0], fills_seq=r[1], position_id=r[2], intent_id=r[3], side=Side(r[4]),
        size=Decimal(r[5]), price=Decimal(r[6]), fee_usd=Decimal(r[7]),
        realized_pnl_usd=Decimal(r[8]), size_after=Decimal(r[9]),
        direction_after=Direction(r[10]), applied_at=datetime.fromisoformat(r[11]),
        notes=tuple(json.loads(r[12])), fill_json=r[13],
    )  # fmt: skip


def summary_record(r: tuple[Any, ...]) -> ResultSummary:
    return ResultSummary(
        result_id=r[0], results_seq=r[1], position_id=r[2], intent_id=r[3], action=r[4],
        status=r[5], last_fill_seq=r[6], fill_count=r[7], filled_size=Decimal(r[8]),
        fees_usd=Decimal(r[9]), mismatch=bool(r[10]), closes=bool(r[11]),
        applied_at=datetime.fromisoformat(r[12]), notes=tuple(json.loads(r[13])),
        result_json=r[14],
    )  # fmt: skip


def working_record(r: tuple[Any, ...]) -> WorkingOrder:
    return WorkingOrder(
        intent_id=r[0], position_id=r[1], update_id=r[2], side=Side(r[3]), size=Decimal(r[4]),
        price=None if r[5] is None else Decimal(r[5]), filled=Decimal(r[6]),
        order_state=r[7], client_order_id=r[8], results_seq=r[9],
        created_at=datetime.fromisoformat(r[10]),
    )  # fmt: skip
