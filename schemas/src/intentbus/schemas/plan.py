"""A venue-specific plan made by an executor's ``prepare()``, and the one skip contract."""

from __future__ import annotations

import msgspec

from intentbus.schemas.enums import ActionType, Side
from intentbus.schemas.fields import Identifier, NonNegative, SubjectToken, Symbol, check_ids

PLAN_TAG = "intentbus.plan.v1"
SKIP_TAG = "intentbus.skip.v1"


class ExecutionPlan(msgspec.Struct, frozen=True, kw_only=True, tag_field="schema", tag=PLAN_TAG):
    """Describe the order an executor will send for one intent, after venue constraints.

    ``leverage`` is never 0 for a leveraged venue: it is the venue default capped by the
    intent's ``max_leverage`` and the asset's maximum (1.0 for spot or paper).
    """

    intent_id: Identifier
    position_id: Identifier
    venue: SubjectToken
    book_id: SubjectToken
    symbol: Symbol
    action: ActionType
    side: Side
    order_type: str
    size: NonNegative
    price: NonNegative | None
    leverage: NonNegative
    reduce_only: bool = False
    post_only: bool = False
    time_in_force: str | None = None
    client_order_id: str = ""
    reference_price: NonNegative | None = None
    notional_usd: NonNegative = 0.0
    constraints_applied: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_ids(self, ("intent_id", "position_id", "venue", "book_id"), "symbol")


class Skip(msgspec.Struct, frozen=True, kw_only=True, tag_field="schema", tag=SKIP_TAG):
    """Say that ``prepare()`` decided not to trade, and why.

    This is the only skip contract: ``prepare`` returns ``ExecutionPlan | Skip`` and never
    raises to skip. ``reason`` is a :class:`SkipReason` value (a plain string on the wire).
    """

    reason: str
    detail: str = ""
    constraints_applied: tuple[str, ...] = ()
