"""Enumerations shared by every message of the contract."""

from __future__ import annotations

from enum import StrEnum


class ActionType(StrEnum):
    """Say what the PM wants done with a position; venue-agnostic."""

    HOLD = "hold"
    ADD = "add"
    TRIM = "trim"
    EXIT = "exit"
    RECLAIM = "reclaim"
    EMERGENCY_EXIT = "emergency_exit"


INCREASING_ACTIONS = frozenset({ActionType.ADD, ActionType.RECLAIM})
CLOSING_ACTIONS = frozenset({ActionType.EXIT, ActionType.EMERGENCY_EXIT})


class Urgency(StrEnum):
    """Order urgency: critical means marketable now, the rest may rest on the book."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class ExecutionStatus(StrEnum):
    """Outcome of one intent.

    ``unknown`` is reported when the executor cannot learn whether an order it may have
    sent exists; it is never guessed into success or error.
    """

    SUCCESS = "success"
    SKIPPED = "skipped"
    ERROR = "error"
    PARTIAL = "partial"
    UNKNOWN = "unknown"


class Side(StrEnum):
    """Order side."""

    BUY = "buy"
    SELL = "sell"


class Direction(StrEnum):
    """Direction of a position."""

    LONG = "long"
    SHORT = "short"


class SkipReason(StrEnum):
    """Reasons an executor skips an intent. On the wire the reason is a plain string."""

    EXPIRED = "expired"
    BELOW_MIN_NOTIONAL = "below_min_notional"
    REDUCE_ONLY = "reduce_only_violation"
    ZERO_SIZE = "zero_size_after_rounding"
    NO_POSITION = "no_position"
    UNKNOWN_POSITION = "unknown_position"
    UNKNOWN_SYMBOL = "unknown_symbol"
    NO_MARK = "no_mark_price"
    MARKET_CLOSED = "market_closed"
    HOLD = "hold_is_not_executable"
    SUPERSEDED = "superseded"
    POSITION_MISMATCH = "position_mismatch"
