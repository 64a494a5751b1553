"""Drift: a difference between the venue's books and the ledger, found by reconciliation."""

from __future__ import annotations

from typing import Literal

import msgspec

from intentbus.schemas.fields import (
    Identifier,
    NonNegative,
    SubjectToken,
    Symbol,
    Timestamp,
    check_ids,
)

DRIFT_TAG = "intentbus.drift.v1"
DriftReason = Literal["start", "reconnect"]


class OrderDrift(msgspec.Struct, frozen=True, kw_only=True):
    """One working order the follower and the venue see differently.

    ``expected_open`` is the open size the follower knows; ``venue_open`` what the venue
    reports live (0 for an order it does not know: ``venue_state`` ``unknown``).
    """

    client_order_id: str
    expected_open: NonNegative
    venue_open: NonNegative
    venue_state: str


class Drift(msgspec.Struct, frozen=True, kw_only=True, tag_field="schema", tag=DRIFT_TAG):
    """Say that an account's net in a symbol at the venue differs from the ledger's.

    Sizes are signed (long > 0, short < 0); ``difference`` = venue - ledger.
    ``position_id`` is the ledger's open position of the book and symbol, if any.
    ``resolved`` says that a later reconciliation found them equal again.
    """

    drift_id: Identifier
    venue: SubjectToken
    book_id: SubjectToken
    account: str
    symbol: Symbol
    ledger_size: float
    venue_size: float
    difference: float
    detected_at: Timestamp
    reason: DriftReason
    position_id: Identifier | None = None
    open_orders: tuple[OrderDrift, ...] = ()
    resolved: bool = False

    def __post_init__(self) -> None:
        check_ids(self, ("drift_id", "venue", "book_id", "position_id"), "symbol")
