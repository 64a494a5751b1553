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
    """Outcome of one intent, as its final result sums it up.

    ``success``: the order filled completely. ``partial``: it filled in part, then was
    cancelled or expired. ``cancelled``: it finished with nothing filled (deadline,
    supersede, IOC not matched). ``error``: the venue refused it. ``skipped``: no order was
    sent. ``unknown`` is reported when the executor cannot learn whether an order it may
    have sent exists; it is never guessed into success or error.
    """

    SUCCESS = "success"
    SKIPPED = "skipped"
    ERROR = "error"
    PARTIAL = "partial"
    UNKNOWN = "unknown"
    CANCELLED = "cancelled"


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
    POSITION_CLOSED = "position_closed"
    NOTHING_TO_CLOSE = "nothing_to_close_at_venue"
    HALT_SWITCH = "halt_switch"
    RISK_INTENT_NOTIONAL = "risk_max_intent_notional"
    RISK_POSITION_NOTIONAL = "risk_max_position_notional"
    RISK_INTENT_RATE = "risk_max_intents_per_minute"


class OrderType(StrEnum):
    """Venue-neutral order type."""

    MARKET = "market"
    LIMIT = "limit"


class TimeInForce(StrEnum):
    """Venue-neutral time in force; venue strings (``Gtc``, ``Ioc``, ``Alo``) stay in venues."""

    GTC = "gtc"
    IOC = "ioc"
    POST_ONLY = "post_only"


class OrderState(StrEnum):
    """State of one venue order.

    ``working`` and ``partially_filled`` are live; the others are final.
    """

    WORKING = "working"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    UNKNOWN = "unknown"

    @property
    def is_live(self) -> bool:
        """Say whether the order may still fill."""
        return self in (OrderState.WORKING, OrderState.PARTIALLY_FILLED)

    @property
    def is_final(self) -> bool:
        """Say whether the order is finished (``unknown`` counts as finished: never guessed)."""
        return not self.is_live


class Liquidity(StrEnum):
    """Whether a fill added liquidity (maker) or took it (taker)."""

    MAKER = "maker"
    TAKER = "taker"
