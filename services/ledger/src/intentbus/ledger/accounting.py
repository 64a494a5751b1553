"""Pure position accounting: how one execution result changes one position.

Nothing here does I/O, so the same result applied to the same state always gives the
same new state; that is what makes re-reading the ``RESULTS`` stream rebuild the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from intentbus.schemas import Direction, ExecutionResult, ExecutionStatus, Position, Side

FLAT_EPSILON = 1e-12
FILLING_STATUSES = frozenset({ExecutionStatus.SUCCESS, ExecutionStatus.PARTIAL})

ORIGIN_OPENED = "opened"
ORIGIN_IMPLICIT = "implicit"

NOTE_IMPLICIT_OPEN = "implicit_open"
NOTE_CLAMPED = "clamped"


class InvalidFill(ValueError):
    """Raise when a result reports a fill the ledger cannot account for."""


@dataclass(frozen=True, kw_only=True)
class PositionState:
    """Hold the ledger's stored state of one position."""

    position_id: str
    venue: str
    book_id: str
    token_contract: str
    direction: Direction
    allocation_usd: float = 0.0
    size: float = 0.0
    avg_entry_price: float = 0.0
    realized_pnl_usd: float = 0.0
    fees_usd: float = 0.0
    results_applied: int = 0
    updated_at: datetime | None = None
    origin: str = ORIGIN_OPENED
    opened_at: datetime | None = None

    def to_position(self, results_seq: int) -> Position:
        """Return the contract view of this state as of ``results_seq``."""
        return Position(
            position_id=self.position_id,
            venue=self.venue,
            book_id=self.book_id,
            token_contract=self.token_contract,
            direction=self.direction,
            allocation_usd=self.allocation_usd,
            size=self.size,
            avg_entry_price=self.avg_entry_price,
            realized_pnl_usd=self.realized_pnl_usd,
            fees_usd=self.fees_usd,
            results_applied=self.results_applied,
            results_seq=results_seq,
            updated_at=self.updated_at,
        )


@dataclass(frozen=True, kw_only=True)
class Fill:
    """Say what was traded: side, absolute quantity and price."""

    side: Side
    quantity: float
    price: float


@dataclass(frozen=True, kw_only=True)
class Change:
    """Give the outcome of one result: the state to store (if any) and audit notes."""

    state: PositionState | None
    notes: tuple[str, ...] = ()


def fill_of(result: ExecutionResult) -> Fill | None:
    """Return the fill a result reports, ``None`` when it traded nothing.

    Raise :class:`InvalidFill` when the fill is inconsistent (both sides traded, a side
    that contradicts the tokens, or no positive price).
    """
    if result.status not in FILLING_STATUSES:
        return None
    bought = result.tokens_bought or 0.0
    sold = result.tokens_sold or 0.0
    if bought > 0.0 and sold > 0.0:
        raise InvalidFill(f"result {result.result_id} reports both tokens_bought and tokens_sold")
    if bought <= 0.0 and sold <= 0.0:
        return None
    side = Side.BUY if bought > 0.0 else Side.SELL
    if result.side is not None and result.side != side:
        raise InvalidFill(
            f"result {result.result_id} has side {result.side.value} but reports "
            f"{'tokens_bought' if side is Side.BUY else 'tokens_sold'}"
        )
    if result.price is None or result.price <= 0.0:
        raise InvalidFill(f"result {result.result_id} reports a fill without a positive price")
    return Fill(side=side, quantity=bought + sold, price=result.price)


def increases(direction: Direction, side: Side) -> bool:
    """Say whether trading ``side`` grows a position pointing ``direction``."""
    return (direction is Direction.LONG) == (side is Side.BUY)


def apply_fill(state: PositionState, fill: Fill) -> tuple[PositionState, tuple[str, ...]]:
    """Return the state after ``fill`` and the audit notes it produced."""
    if increases(state.direction, fill.side):
        size = state.size + fill.quantity
        avg = (state.avg_entry_price * state.size + fill.price * fill.quantity) / size
        return replace(state, size=size, avg_entry_price=avg), ()
    quantity = fill.quantity
    notes: tuple[str, ...] = ()
    if quantity > state.size:
        notes = (f"{NOTE_CLAMPED}: reduce {quantity!r} > size {state.size!r}",)
        quantity = state.size
    per_unit = fill.price - state.avg_entry_price
    if state.direction is Direction.SHORT:
        per_unit = -per_unit
    size = state.size - quantity
    avg = state.avg_entry_price
    if size < FLAT_EPSILON:
        size, avg = 0.0, 0.0
    new_state = replace(
        state,
        size=size,
        avg_entry_price=avg,
        realized_pnl_usd=state.realized_pnl_usd + per_unit * quantity,
    )
    return new_state, notes


def check_identity(state: PositionState, result: ExecutionResult) -> None:
    """Raise :class:`InvalidFill` when a result names another venue, book or symbol."""
    for field, ours, theirs in (
        ("venue", state.venue, result.venue),
        ("book_id", state.book_id, result.book_id),
        ("token_contract", state.token_contract, result.token_contract),
    ):
        if ours != theirs:
            raise InvalidFill(
                f"result {result.result_id} has {field} {theirs!r} but position "
                f"{state.position_id} has {ours!r}"
            )


def apply_result(current: PositionState | None, result: ExecutionResult) -> Change:
    """Return how ``result`` changes ``current`` (``None``: the ledger does not know it).

    Fills move size, average entry and realized PnL; fees accumulate whatever the
    status; results that trade nothing only count. A result for an unknown position that
    trades or costs fees creates it (allocation 0, direction from the fill).
    """
    fill = fill_of(result)
    fees = result.fees_usd or 0.0
    notes: tuple[str, ...] = ()
    state = current
    if state is None:
        if fill is None and fees == 0.0:
            return Change(state=None)
        direction = Direction.SHORT if fill and fill.side is Side.SELL else Direction.LONG
        state = PositionState(
            position_id=result.position_id,
            venue=result.venue,
            book_id=result.book_id,
            token_contract=result.token_contract,
            direction=direction,
            origin=ORIGIN_IMPLICIT,
        )
        notes = (NOTE_IMPLICIT_OPEN,)
    else:
        check_identity(state, result)
    if fill is not None:
        state, fill_notes = apply_fill(state, fill)
        notes += fill_notes
    state = replace(
        state,
        fees_usd=state.fees_usd + fees,
        results_applied=state.results_applied + 1,
        updated_at=result.created_at,
    )
    return Change(state=state, notes=notes)
