"""A venue-specific plan made by an executor's ``prepare()``, and the one skip contract."""

from __future__ import annotations

import msgspec

from intentbus.schemas.enums import ActionType, OrderType, Side, TimeInForce
from intentbus.schemas.fields import (
    Identifier,
    NonNegative,
    SubjectToken,
    Symbol,
    Timestamp,
    VenueRef,
    check_ids,
)

PLAN_TAG = "intentbus.plan.v2"
SKIP_TAG = "intentbus.skip.v1"


class ExecutionPlan(msgspec.Struct, frozen=True, kw_only=True, tag_field="schema", tag=PLAN_TAG):
    """Describe the order an executor will send for one intent, after venue constraints.

    v2 (breaking, hence the new tag): ``order_type`` and ``time_in_force`` are the
    venue-neutral enums (venue strings such as ``Gtc``/``Ioc``/``Alo`` live only in venue
    packages); ``account`` names the venue account of the book; ``valid_until`` is the
    intent's deadline, which the order must not outlive.

    ``leverage`` is never 0 for a leveraged venue: it is the venue default capped by the
    intent's ``max_leverage`` and the asset's maximum (1.0 for spot or paper).
    """

    intent_id: Identifier
    position_id: Identifier
    venue: SubjectToken
    book_id: SubjectToken
    account: VenueRef
    symbol: Symbol
    action: ActionType
    side: Side
    order_type: OrderType
    time_in_force: TimeInForce
    size: NonNegative
    price: NonNegative | None
    leverage: NonNegative
    client_order_id: VenueRef
    reduce_only: bool = False
    valid_until: Timestamp | None = None
    reference_price: NonNegative | None = None
    notional_usd: NonNegative = 0.0
    constraints_applied: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_ids(self, ("intent_id", "position_id", "venue", "book_id"), "symbol")

    @property
    def post_only(self) -> bool:
        """Say whether the order may only add liquidity."""
        return self.time_in_force is TimeInForce.POST_ONLY


class Skip(msgspec.Struct, frozen=True, kw_only=True, tag_field="schema", tag=SKIP_TAG):
    """Say that ``prepare()`` decided not to trade, and why.

    This is the only skip contract: ``prepare`` returns ``ExecutionPlan | Skip`` and never
    raises to skip. ``reason`` is a :class:`SkipReason` value (a plain string on the wire).
    """

    reason: str
    detail: str = ""
    constraints_applied: tuple[str, ...] = ()
