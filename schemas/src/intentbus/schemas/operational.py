"""Operational messages: dead letters and mark prices."""

from __future__ import annotations

import msgspec

from intentbus.schemas.fields import Positive, SubjectToken, Symbol, Timestamp, check_ids

DEAD_LETTER_TAG = "intentbus.dead_letter.v1"
MARK_TAG = "intentbus.mark.v1"


class DeadLetter(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="schema", tag=DEAD_LETTER_TAG
):
    """Record a message a consumer refused, with the error, so an operator can replay it."""

    subject: str
    stream: str
    stream_seq: int
    consumer: str
    error: str
    received_at: Timestamp
    payload: str
    headers: dict[str, str] = msgspec.field(default_factory=dict)


class Mark(msgspec.Struct, frozen=True, kw_only=True, tag_field="schema", tag=MARK_TAG):
    """Give the latest mark price of a symbol on a venue."""

    venue: SubjectToken
    symbol: Symbol
    price: Positive
    at: Timestamp

    def __post_init__(self) -> None:
        check_ids(self, ("venue", "symbol"))
