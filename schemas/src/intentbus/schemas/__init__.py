"""The intentbus message contract."""

from intentbus.schemas.codec import decode, decoder, encode, validated
from intentbus.schemas.enums import (
    CLOSING_ACTIONS,
    INCREASING_ACTIONS,
    ActionType,
    Direction,
    ExecutionStatus,
    Side,
    SkipReason,
    Urgency,
)
from intentbus.schemas.intent import ExecutionIntent, build_intent, new_intent_id
from intentbus.schemas.operational import DeadLetter, Mark
from intentbus.schemas.plan import ExecutionPlan, Skip
from intentbus.schemas.position import (
    ListPositions,
    OpenPosition,
    Position,
    PositionQuery,
    PositionReply,
)
from intentbus.schemas.result import ExecutionResult, result_id_for

__all__ = [
    "CLOSING_ACTIONS",
    "INCREASING_ACTIONS",
    "ActionType",
    "DeadLetter",
    "Direction",
    "ExecutionIntent",
    "ExecutionPlan",
    "ExecutionResult",
    "ExecutionStatus",
    "ListPositions",
    "Mark",
    "OpenPosition",
    "Position",
    "PositionQuery",
    "PositionReply",
    "Side",
    "Skip",
    "SkipReason",
    "Urgency",
    "build_intent",
    "decode",
    "decoder",
    "encode",
    "new_intent_id",
    "result_id_for",
    "validated",
]
