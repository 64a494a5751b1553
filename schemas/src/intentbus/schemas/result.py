"""The outcome of one intent, published by its executor and applied by the ledger."""

from __future__ import annotations

import msgspec

from intentbus.schemas.enums import ActionType, ExecutionStatus, Side
from intentbus.schemas.fields import (
    Identifier,
    NonNegative,
    SubjectToken,
    Symbol,
    Timestamp,
    check_ids,
)
from intentbus.schemas.plan import ExecutionPlan

RESULT_TAG = "intentbus.result.v1"


class ExecutionResult(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="schema", tag=RESULT_TAG
):
    """Report what happened to one intent.

    ``result_id`` is derived from the intent id (:func:`result_id_for`), so a result
    republished after a crash is deduplicated by the stream and the ledger.
    """

    result_id: Identifier
    intent_id: Identifier
    position_id: Identifier
    venue: SubjectToken
    book_id: SubjectToken
    token_contract: Symbol
    action: ActionType
    status: ExecutionStatus
    created_at: Timestamp
    intent_created_at: Timestamp | None = None
    plan: ExecutionPlan | None = None
    side: Side | None = None
    tx_hash: str | None = None
    client_order_id: str | None = None
    tokens_bought: NonNegative | None = None
    tokens_sold: NonNegative | None = None
    price: NonNegative | None = None
    slippage_bps: float | None = None
    fees_usd: float | None = None
    skip_reason: str | None = None
    error: str | None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        check_ids(
            self, ("result_id", "intent_id", "position_id", "venue", "book_id"), "token_contract"
        )

    @property
    def filled_size(self) -> float:
        """Return the traded size, whichever side it was on."""
        return (self.tokens_bought or 0.0) + (self.tokens_sold or 0.0)


def result_id_for(intent_id: str) -> str:
    """Return the deterministic result id of an intent."""
    return f"res-{intent_id}"
