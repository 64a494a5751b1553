"""Pure position accounting in ``Decimal``: how one fill changes one position.

Nothing here does I/O, so the same fills applied to the same state in the same order
always give the same state; that is what makes re-reading ``FILLS`` rebuild the ledger.
Wire floats become decimals through their shortest ``repr`` (``0.1`` -> ``Decimal('0.1')``),
so summing many small fills never drifts the way float sums do. Every operation runs in
:data:`ACCOUNTING` (40 significant digits, half-even), fixed so results never depend on a
caller's decimal context.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    localcontext,
)

from intentbus.schemas import Direction, Side

ACCOUNTING = Context(
    prec=40, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow]
)
ZERO = Decimal(0)
USD_CURRENCIES = frozenset({"USD", "USDC"})

NOTE_FLIPPED = "flipped"


class InvalidFill(ValueError):
    """Raise when a fill cannot be accounted for (bad amount, fee currency, other symbol)."""


def dec(value: float | int | str | Decimal) -> Decimal:
    """Return the exact decimal of a wire number (a float by its shortest repr)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidFill(f"{value!r} is not a finite number")
        return Decimal(repr(value))
    return Decimal(value)


def fee_in_usd(fee: float, currency: str) -> Decimal:
    """Return a fee in USD; USD and USDC count as USD, anything else is refused."""
    if currency.upper() not in USD_CURRENCIES:
        raise InvalidFill(
            f"fee currency {currency!r} is not USD or USDC: the ledger keeps fees in USD only "
            "and cannot convert it"
        )
    return dec(fee)


@dataclass(frozen=True, kw_only=True)
class PositionState:
    """Hold the ledger's stored state of one position.

    ``direction`` is where the position points now (a fill through zero flips it);
    ``opened_direction`` is the direction it was opened with (a term of the open).
    ``results_fill_seq`` is the highest ``last_fill_seq`` of the position's final results
    applied so far: the ``FILLS`` point a result without fills is judged at.
    ``closed_fills_seq`` is the ``FILLS`` point the position was judged flat and closed at.
    """

    position_id: str
    venue: str
    book_id: str
    token_contract: str
    direction: Direction
    opened_direction: Direction
    allocation_usd: Decimal
    size: Decimal = ZERO
    avg_entry_price: Decimal = ZERO
    realized_pnl_usd: Decimal = ZERO
    fees_usd: Decimal = ZERO
    fills_applied: int = 0
    results_applied: int = 0
    results_fill_seq: int = 0
    closed: bool = False
    closed_at: datetime | None = None
    closed_fills_seq: int = 0
    updated_at: datetime | None = None
    opened_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class Trade:
    """Say what one fill traded: side, absolute size, price and fee in USD (rebate < 0)."""

    side: Side
    size: Decimal
    price: Decimal
    fee_usd: Decimal = ZERO


@dataclass(frozen=True, kw_only=True)
class TradeEffect:
    """Give the state after a trade, the PnL it realized and its audit notes."""

    state: PositionState
    realized_usd: Decimal
    notes: tuple[str, ...] = ()


def increases(direction: Direction, side: Side) -> bool:
    """Say whether trading ``side`` grows a position pointing ``direction``."""
    return (direction is Direction.LONG) == (side is Side.BUY)


def apply_trade(state: PositionState, trade: Trade) -> TradeEffect:
    """Return the state after ``trade``.

    A trade with the direction grows the position and averages the entry by size. A
    trade against it realizes ``(price - entry) * size`` (inverted for a short) on the
    part it closes; what goes beyond the size opens the other direction at the trade's
    price (a flip). Fees accumulate, a rebate being a negative fee.
    """
    if trade.size <= ZERO or trade.price <= ZERO:
        raise InvalidFill(f"a fill needs a positive size and price, got {trade}")
    with localcontext(ACCOUNTING):
        fees = state.fees_usd + trade.fee_usd
        if increases(state.direction, trade.side):
            size = state.size + trade.size
            avg = (state.avg_entry_price * state.size + trade.price * trade.size) / size
            grown = replace(state, size=size, avg_entry_price=avg, fees_usd=fees)
            return TradeEffect(state=grown, realized_usd=ZERO)
        closing = min(trade.size, state.size)
        per_unit = trade.price - state.avg_entry_price
        if state.direction is Direction.SHORT:
            per_unit = -per_unit
        realized = per_unit * closing
        rest = trade.size - closing
        pnl = state.realized_pnl_usd + realized
        if rest > ZERO:
            flipped = replace(
                state,
                direction=Direction.SHORT if state.direction is Direction.LONG else Direction.LONG,
                size=rest,
                avg_entry_price=trade.price,
                realized_pnl_usd=pnl,
                fees_usd=fees,
            )
            note = f"{NOTE_FLIPPED}: {state.direction.value} {state.size} -> {flipped.direction}"
            return TradeEffect(state=flipped, realized_usd=realized, notes=(note,))
        size = state.size - closing
        avg = state.avg_entry_price if size > ZERO else ZERO
        reduced = replace(
            state, size=size, avg_entry_price=avg, realized_pnl_usd=pnl, fees_usd=fees
        )
        return TradeEffect(state=reduced, realized_usd=realized)


def check_identity(
    state: PositionState, what: str, venue: str, book_id: str, token_contract: str
) -> None:
    """Raise :class:`InvalidFill` when a message names another venue, book or symbol."""
    for field, ours, theirs in (
        ("venue", state.venue, venue),
        ("book_id", state.book_id, book_id),
        ("symbol", state.token_contract, token_contract),
    ):
        if ours != theirs:
            raise InvalidFill(
                f"{what} has {field} {theirs!r} but position {state.position_id} has {ours!r}"
            )


def later(current: datetime | None, candidate: datetime) -> datetime:
    """Return the later time (order-independent, so two streams give one answer)."""
    return candidate if current is None or candidate > current else current
