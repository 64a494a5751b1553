"""The PM's venue-agnostic execution intent."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from intentbus.schemas.enums import ActionType, Urgency
from intentbus.schemas.fields import (
    Bps,
    Fraction,
    Identifier,
    Positive,
    Priority,
    SubjectToken,
    Symbol,
    Timestamp,
    check_ids,
    ids_are_safe,
)

INTENT_TAG = "intentbus.intent.v1"
_INTENT_IDS = ("intent_id", "position_id", "token_chain", "book_id")
DEFAULT_TTL = timedelta(seconds=60)


class ExecutionIntent(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="schema", tag=INTENT_TAG
):
    """Ask an executor to act on one position; carries every field of the founding spec.

    Evolution: new fields get defaults; fields are never reordered, retyped or
    repurposed; a breaking change is a new type with a new ``schema`` tag.
    """

    intent_id: Identifier
    created_at: Timestamp
    valid_until: Timestamp

    action: ActionType
    size_frac: Fraction
    urgency: Urgency
    priority: Priority

    position_id: Identifier
    token_contract: Symbol
    token_chain: SubjectToken
    book_id: SubjectToken
    timeframe: str

    max_slippage_bps: Bps | None = None
    reduce_only: bool = False
    post_only: bool = False

    reason_codes: tuple[str, ...] = ()
    state: str = ""
    prev_state: str = ""
    a_final: float = 0.0
    e_final: float = 0.0

    max_leverage: Positive | None = None
    risk_reason: str | None = None

    def __post_init__(self) -> None:
        # Inline fast path: this runs on every decoded intent.
        if not ids_are_safe(self.intent_id, self.position_id, self.token_chain, self.book_id) or (
            " " in self.token_contract or not self.token_contract.isprintable()
        ):
            check_ids(self, _INTENT_IDS, "token_contract")
        if self.action is ActionType.HOLD:
            raise ValueError("a HOLD intent is never published: there is nothing to execute")
        if self.valid_until <= self.created_at:
            raise ValueError("valid_until must be later than created_at")

    @property
    def venue(self) -> str:
        """Return the venue namespace (the spec's ``token_chain``)."""
        return self.token_chain

    def is_expired(self, now: datetime | None = None) -> bool:
        """Say whether the deadline has passed."""
        return (now or datetime.now(UTC)) >= self.valid_until


def new_intent_id() -> str:
    """Return a fresh, subject-safe intent id."""
    return uuid.uuid4().hex


def build_intent(
    *,
    action: ActionType | str,
    size_frac: float,
    position_id: str,
    token_contract: str,
    token_chain: str,
    book_id: str,
    urgency: Urgency | str = Urgency.MEDIUM,
    priority: int = 50,
    timeframe: str = "1h",
    ttl: timedelta = DEFAULT_TTL,
    intent_id: str | None = None,
    created_at: datetime | None = None,
    **extra: Any,
) -> ExecutionIntent:
    """Build an intent with an id and deadline, validated like a decoded message."""
    from intentbus.schemas.codec import validated

    now = created_at or datetime.now(UTC)
    intent = ExecutionIntent(
        intent_id=intent_id or new_intent_id(),
        created_at=now,
        valid_until=now + ttl,
        action=ActionType(action),
        size_frac=size_frac,
        urgency=Urgency(urgency),
        priority=priority,
        position_id=position_id,
        token_contract=token_contract,
        token_chain=token_chain,
        book_id=book_id,
        timeframe=timeframe,
        **extra,
    )
    return validated(intent)
