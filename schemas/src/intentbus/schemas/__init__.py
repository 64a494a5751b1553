"""The intentbus message contract."""

from intentbus.schemas.codec import (
    decode,
    decoder,
    encode,
    encoded_valid,
    results_stream_decoder,
    validated,
)
from intentbus.schemas.control import HaltMode, HaltSwitch, Heartbeat
from intentbus.schemas.drift import Drift, OrderDrift
from intentbus.schemas.enums import (
    CLOSING_ACTIONS,
    INCREASING_ACTIONS,
    ActionType,
    Direction,
    ExecutionStatus,
    Liquidity,
    OrderState,
    OrderType,
    Side,
    SkipReason,
    TimeInForce,
    Urgency,
)
from intentbus.schemas.fields import Metadata, MetadataValue, derived_id
from intentbus.schemas.fill import Fill, fill_id_for
from intentbus.schemas.intent import ExecutionIntent, build_intent, new_intent_id
from intentbus.schemas.operational import DeadLetter, Mark
from intentbus.schemas.plan import ExecutionPlan, Skip
from intentbus.schemas.position import (
    MAX_POSITIONS_PER_QUERY,
    ListPositions,
    OpenPosition,
    Position,
    PositionQuery,
    PositionReply,
    PositionsQuery,
)
from intentbus.schemas.result import (
    ExecutionResult,
    OrderUpdate,
    order_update_id_for,
    result_id_for,
)

__all__ = [
    "CLOSING_ACTIONS",
    "INCREASING_ACTIONS",
    "MAX_POSITIONS_PER_QUERY",
    "ActionType",
    "DeadLetter",
    "Direction",
    "Drift",
    "ExecutionIntent",
    "ExecutionPlan",
    "ExecutionResult",
    "ExecutionStatus",
    "Fill",
    "HaltMode",
    "HaltSwitch",
    "Heartbeat",
    "Liquidity",
    "ListPositions",
    "Mark",
    "Metadata",
    "MetadataValue",
    "OpenPosition",
    "OrderDrift",
    "OrderState",
    "OrderType",
    "OrderUpdate",
    "Position",
    "PositionQuery",
    "PositionReply",
    "PositionsQuery",
    "Side",
    "Skip",
    "SkipReason",
    "TimeInForce",
    "Urgency",
    "build_intent",
    "decode",
    "decoder",
    "derived_id",
    "encode",
    "encoded_valid",
    "fill_id_for",
    "new_intent_id",
    "order_update_id_for",
    "result_id_for",
    "results_stream_decoder",
    "validated",
]
