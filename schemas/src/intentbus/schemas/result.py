"""The final summary of one intent, and the order updates published while it works."""

from __future__ import annotations

import msgspec

from intentbus.schemas.enums import ActionType, ExecutionStatus, OrderState, Side
from intentbus.schemas.fields import (
    Identifier,
    Metadata,
    NonNegative,
    SubjectToken,
    Symbol,
    Timestamp,
    VenueRef,
    check_ids,
    derived_id,
)
from intentbus.schemas.plan import ExecutionPlan

RESULT_TAG = "intentbus.result.v2"
ORDER_UPDATE_TAG = "intentbus.order.v1"


class ExecutionResult(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="schema", tag=RESULT_TAG
):
    """Sum up what happened to one intent, published once its order is finished.

    ``result_id`` is derived from the intent id (:func:`result_id_for`), so a result
    republished after a crash is deduplicated by the stream and the ledger. The ledger's
    positions move with fills (:class:`~intentbus.schemas.fill.Fill`); the result carries
    the order's final state, filled size, average price and fees, which the ledger checks
    against the fills it applied. ``last_fill_seq`` is the ``FILLS`` stream sequence of
    the order's last fill (0: none), so a reader can wait until it has seen every fill.

    v2 (breaking, hence the new tag): fill-driven; ``avg_price`` replaces ``price``;
    ``metadata`` values may be strings, numbers, booleans or null.
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
    account: VenueRef | None = None
    intent_created_at: Timestamp | None = None
    order_state: OrderState | None = None
    plan: ExecutionPlan | None = None
    side: Side | None = None
    client_order_id: VenueRef | None = None
    venue_order_id: VenueRef | None = None
    requested_size: NonNegative | None = None
    filled_size: NonNegative = 0.0
    avg_price: NonNegative | None = None
    fees_usd: float = 0.0
    fill_count: int = 0
    last_fill_seq: int = 0
    tokens_bought: NonNegative | None = None
    tokens_sold: NonNegative | None = None
    slippage_bps: float | None = None
    skip_reason: str | None = None
    error: str | None = None
    metadata: Metadata = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        check_ids(
            self, ("result_id", "intent_id", "position_id", "venue", "book_id"), "token_contract"
        )
        if self.result_id != result_id_for(self.intent_id):
            raise ValueError(
                f"result_id {self.result_id!r} is not derived from intent_id {self.intent_id!r}"
            )


class OrderUpdate(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="schema", tag=ORDER_UPDATE_TAG
):
    """Say that an intent's order is live at the venue (``working``), published on ``RESULTS``.

    The ledger shows a working order's open size beside its position until the intent's
    final :class:`ExecutionResult` arrives. ``update_id`` (:func:`order_update_id_for`) is
    the message's ``Nats-Msg-Id``.
    """

    update_id: Identifier
    intent_id: Identifier
    position_id: Identifier
    venue: SubjectToken
    book_id: SubjectToken
    account: VenueRef
    token_contract: Symbol
    client_order_id: VenueRef
    side: Side
    size: NonNegative
    order_state: OrderState
    created_at: Timestamp
    price: NonNegative | None = None
    filled_size: NonNegative = 0.0
    venue_order_id: VenueRef | None = None

    def __post_init__(self) -> None:
        check_ids(
            self, ("update_id", "intent_id", "position_id", "venue", "book_id"), "token_contract"
        )


def result_id_for(intent_id: str) -> str:
    """Return the deterministic result id of an intent (at most 128 chars for every id)."""
    return derived_id("res", intent_id)


def order_update_id_for(intent_id: str, state: OrderState) -> str:
    """Return the deterministic id of an intent's order update in ``state``."""
    return derived_id("ord", state.value, intent_id)
