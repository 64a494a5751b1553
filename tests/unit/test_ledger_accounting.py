"""Position accounting: adds, reduces, clamps, fees and PnL for longs and shorts."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from intentbus.ledger.accounting import (
    NOTE_CLAMPED,
    NOTE_IMPLICIT_OPEN,
    ORIGIN_IMPLICIT,
    InvalidFill,
    PositionState,
    apply_result,
)
from intentbus.schemas import ActionType, Direction, ExecutionResult, ExecutionStatus, Side

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _position(direction: Direction = Direction.LONG, **extra: float) -> PositionState:
    return PositionState(
        position_id="p1",
        venue="paper",
        book_id="main",
        token_contract="BTC",
        direction=direction,
        allocation_usd=1_000.0,
        **extra,  # type: ignore[arg-type]
    )


def _result(
    side: Side | None,
    quantity: float = 0.0,
    price: float | None = None,
    *,
    status: ExecutionStatus = ExecutionStatus.SUCCESS,
    fees: float | None = None,
    n: int = 1,
) -> ExecutionResult:
    return ExecutionResult(
        result_id=f"res-{n}",
        intent_id=f"int-{n}",
        position_id="p1",
        venue="paper",
        book_id="main",
        token_contract="BTC",
        action=ActionType.ADD if side is Side.BUY else ActionType.TRIM,
        status=status,
        created_at=AT,
        side=side,
        tokens_bought=quantity if side is Side.BUY else None,
        tokens_sold=quantity if side is Side.SELL else None,
        price=price,
        fees_usd=fees,
    )


def _apply(state: PositionState | None, *results: ExecutionResult) -> PositionState:
    for result in results:
        change = apply_result(state, result)
        assert change.state is not None
        state = change.state
    assert state is not None
    return state


def test_buys_on_a_long_average_the_entry_by_size() -> None:
    state = _apply(_position(), _result(Side.BUY, 1.0, 100.0), _result(Side.BUY, 3.0, 200.0))
    assert state.size == pytest.approx(4.0)
    assert state.avg_entry_price == pytest.approx(175.0)
    assert state.realized_pnl_usd == 0.0
    assert state.results_applied == 2
    assert state.updated_at == AT


def test_sell_on_a_long_realizes_pnl_and_keeps_the_entry() -> None:
    state = _apply(_position(size=4.0, avg_entry_price=100.0), _result(Side.SELL, 1.5, 120.0))
    assert state.size == pytest.approx(2.5)
    assert state.avg_entry_price == pytest.approx(100.0)
    assert state.realized_pnl_usd == pytest.approx(30.0)


def test_sells_on_a_short_grow_it_and_buys_realize_inverse_pnl() -> None:
    short = _position(Direction.SHORT)
    state = _apply(short, _result(Side.SELL, 2.0, 50.0), _result(Side.SELL, 2.0, 40.0))
    assert state.size == pytest.approx(4.0)
    assert state.avg_entry_price == pytest.approx(45.0)
    state = _apply(state, _result(Side.BUY, 1.0, 35.0))
    assert state.size == pytest.approx(3.0)
    assert state.realized_pnl_usd == pytest.approx(10.0)
    state = _apply(state, _result(Side.BUY, 3.0, 50.0))
    assert state.size == 0.0
    assert state.avg_entry_price == 0.0
    assert state.realized_pnl_usd == pytest.approx(10.0 - 15.0)


def test_reduce_larger_than_the_position_is_clamped_and_flagged() -> None:
    change = apply_result(_position(size=1.0, avg_entry_price=10.0), _result(Side.SELL, 3.0, 12.0))
    assert change.state is not None
    assert change.state.size == 0.0
    assert change.state.direction is Direction.LONG
    assert change.state.realized_pnl_usd == pytest.approx(2.0)
    assert any(note.startswith(NOTE_CLAMPED) for note in change.notes)


def test_size_below_epsilon_resets_the_entry() -> None:
    state = _apply(_position(size=1.0, avg_entry_price=10.0), _result(Side.SELL, 1.0 - 1e-13, 10.0))
    assert state.size == 0.0
    assert state.avg_entry_price == 0.0


def test_fees_accumulate_on_fills_and_on_failed_results() -> None:
    state = _apply(
        _position(),
        _result(Side.BUY, 1.0, 100.0, fees=0.5),
        _result(None, status=ExecutionStatus.ERROR, fees=0.25, n=2),
    )
    assert state.fees_usd == pytest.approx(0.75)
    assert state.size == pytest.approx(1.0)


@pytest.mark.parametrize(
    "status", [ExecutionStatus.SKIPPED, ExecutionStatus.ERROR, ExecutionStatus.UNKNOWN]
)
def test_results_that_did_not_fill_change_no_size(status: ExecutionStatus) -> None:
    state = _apply(
        _position(size=2.0, avg_entry_price=5.0), _result(Side.BUY, 1.0, 9.0, status=status)
    )
    assert state.size == 2.0
    assert state.avg_entry_price == 5.0
    assert state.results_applied == 1


def test_partial_fill_counts_like_a_fill() -> None:
    state = _apply(_position(), _result(Side.BUY, 0.5, 10.0, status=ExecutionStatus.PARTIAL))
    assert state.size == pytest.approx(0.5)


def test_fill_for_an_unknown_position_creates_it_from_the_fill() -> None:
    change = apply_result(None, _result(Side.SELL, 2.0, 30.0))
    assert change.state is not None
    assert change.state.direction is Direction.SHORT
    assert change.state.allocation_usd == 0.0
    assert change.state.size == pytest.approx(2.0)
    assert change.state.origin == ORIGIN_IMPLICIT
    assert NOTE_IMPLICIT_OPEN in change.notes
    buy = apply_result(None, _result(Side.BUY, 1.0, 30.0))
    assert buy.state is not None
    assert buy.state.direction is Direction.LONG


def test_skip_for_an_unknown_position_creates_nothing() -> None:
    change = apply_result(None, _result(None, status=ExecutionStatus.SKIPPED))
    assert change.state is None


def test_inconsistent_fills_are_refused() -> None:
    with pytest.raises(InvalidFill, match="positive price"):
        apply_result(_position(), _result(Side.BUY, 1.0, None))
    contradicting = msgspec.structs.replace(_result(Side.BUY, 1.0, 10.0), side=Side.SELL)
    with pytest.raises(InvalidFill, match="side sell"):
        apply_result(_position(), contradicting)


def test_result_for_another_symbol_is_refused() -> None:
    other = PositionState(
        position_id="p1",
        venue="paper",
        book_id="main",
        token_contract="ETH",
        direction=Direction.LONG,
    )
    with pytest.raises(InvalidFill, match="token_contract"):
        apply_result(other, _result(Side.BUY, 1.0, 10.0))
