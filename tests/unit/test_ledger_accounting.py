"""Decimal position accounting: adds, reductions, flips, fees and rebates, no float drift."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from intentbus.ledger.accounting import (
    ACCOUNTING,
    NOTE_FLIPPED,
    InvalidFill,
    PositionState,
    Trade,
    apply_trade,
    check_identity,
    dec,
    fee_in_usd,
)
from intentbus.ledger.checks import check_result
from intentbus.ledger.storage import AppliedFill
from intentbus.schemas import ActionType, Direction, ExecutionResult, ExecutionStatus, Side

D = Decimal


def _position(direction: Direction = Direction.LONG, **extra: Decimal) -> PositionState:
    return PositionState(
        position_id="p1",
        venue="paper",
        book_id="main",
        token_contract="BTC",
        direction=direction,
        opened_direction=direction,
        allocation_usd=D(1000),
        **extra,  # type: ignore[arg-type]
    )


def _trade(side: Side, size: str, price: str, fee: str = "0") -> Trade:
    return Trade(side=side, size=D(size), price=D(price), fee_usd=D(fee))


def _apply(state: PositionState, *trades: Trade) -> PositionState:
    for trade in trades:
        state = apply_trade(state, trade).state
    return state


def test_buys_on_a_long_average_the_entry_by_size() -> None:
    state = _apply(_position(), _trade(Side.BUY, "1", "100"), _trade(Side.BUY, "3", "200"))
    assert state.size == D(4)
    assert state.avg_entry_price == D(175)
    assert state.realized_pnl_usd == 0


def test_a_sell_on_a_long_realizes_pnl_and_keeps_the_entry() -> None:
    effect = apply_trade(
        _position(size=D(4), avg_entry_price=D(100)), _trade(Side.SELL, "1.5", "120")
    )
    assert effect.state.size == D("2.5")
    assert effect.state.avg_entry_price == D(100)
    assert effect.realized_usd == D(30)
    assert effect.state.realized_pnl_usd == D(30)


def test_a_short_grows_with_sells_and_realizes_inverse_pnl_on_buys() -> None:
    state = _apply(
        _position(Direction.SHORT), _trade(Side.SELL, "2", "50"), _trade(Side.SELL, "2", "40")
    )
    assert (state.size, state.avg_entry_price) == (D(4), D(45))
    state = _apply(state, _trade(Side.BUY, "1", "35"))
    assert state.realized_pnl_usd == D(10)
    state = _apply(state, _trade(Side.BUY, "3", "50"))
    assert (state.size, state.avg_entry_price) == (D(0), D(0))
    assert state.realized_pnl_usd == D(-5)
    assert state.direction is Direction.SHORT


def test_a_long_sold_through_zero_flips_to_short_in_one_fill() -> None:
    long = _position(size=D(2), avg_entry_price=D(100))
    effect = apply_trade(long, _trade(Side.SELL, "5", "110", fee="0.5"))
    assert effect.realized_usd == D(20)  # the closing 2 at +10 each
    assert effect.state.direction is Direction.SHORT
    assert effect.state.opened_direction is Direction.LONG
    assert effect.state.size == D(3)  # the rest opens short at the fill price
    assert effect.state.avg_entry_price == D(110)
    assert effect.state.realized_pnl_usd == D(20)
    assert effect.state.fees_usd == D("0.5")
    assert effect.notes[0].startswith(NOTE_FLIPPED)
    back = apply_trade(effect.state, _trade(Side.BUY, "4", "100"))
    assert back.realized_usd == D(30)  # the short 3 closed at +10 each
    assert back.state.direction is Direction.LONG
    assert (back.state.size, back.state.avg_entry_price) == (D(1), D(100))


def test_a_flat_position_traded_against_its_direction_opens_the_other_way() -> None:
    effect = apply_trade(_position(), _trade(Side.SELL, "1", "10"))
    assert effect.realized_usd == 0
    assert effect.state.direction is Direction.SHORT
    assert effect.state.size == D(1)


def test_fees_accumulate_and_a_rebate_is_a_negative_fee() -> None:
    state = _apply(
        _position(),
        _trade(Side.BUY, "1", "100", fee="0.25"),
        _trade(Side.BUY, "1", "100", fee="-0.05"),
        _trade(Side.SELL, "2", "101", fee="0.1"),
    )
    assert state.fees_usd == D("0.30")
    assert state.realized_pnl_usd == D(2)


def test_fee_currencies_usd_and_usdc_count_as_usd_others_are_refused() -> None:
    assert fee_in_usd(0.1, "USD") == D("0.1")
    assert fee_in_usd(-0.02, "USDC") == D("-0.02")
    with pytest.raises(InvalidFill, match="fee currency 'HYPE' is not USD or USDC"):
        fee_in_usd(0.1, "HYPE")


def test_many_small_float_fills_do_not_drift() -> None:
    assert 0.1 + 0.2 != 0.3  # what the ledger must not do
    state = _apply(
        _position(), _trade(Side.BUY, str(dec(0.1)), "1"), _trade(Side.BUY, str(dec(0.2)), "1")
    )
    assert state.size == D("0.3")
    state = _apply(state, Trade(side=Side.SELL, size=dec(0.3), price=D(1)))
    assert state.size == 0
    many = _apply(_position(), *[Trade(side=Side.BUY, size=dec(0.01), price=dec(0.7))] * 1000)
    assert many.size == D(10)
    assert many.avg_entry_price == D("0.7")
    fees = _apply(_position(), *[Trade(side=Side.BUY, size=D(1), price=D(1), fee_usd=dec(0.1))] * 3)
    assert fees.fees_usd == D("0.3")


def test_an_average_that_does_not_terminate_is_rounded_the_same_every_time() -> None:
    state = _apply(_position(), _trade(Side.BUY, "1", "1"), _trade(Side.BUY, "2", "2"))
    assert state.avg_entry_price == ACCOUNTING.divide(D(5), D(3))  # 40 significant digits
    again = _apply(_position(), _trade(Side.BUY, "1", "1"), _trade(Side.BUY, "2", "2"))
    assert str(again.avg_entry_price) == str(state.avg_entry_price)


def test_a_fill_without_positive_size_or_price_or_on_another_symbol_is_refused() -> None:
    with pytest.raises(InvalidFill, match="positive size and price"):
        apply_trade(_position(), _trade(Side.BUY, "0", "1"))
    with pytest.raises(InvalidFill, match="symbol 'ETH' but position p1 has 'BTC'"):
        check_identity(_position(), "fill f1", "paper", "main", "ETH")
    with pytest.raises(InvalidFill, match="finite"):
        dec(float("nan"))


def _result(**extra: object) -> ExecutionResult:
    return ExecutionResult(
        result_id="res-i1",
        intent_id="i1",
        position_id="p1",
        venue="paper",
        book_id="main",
        token_contract="BTC",
        action=ActionType.ADD,
        status=ExecutionStatus.SUCCESS,
        created_at=datetime(2026, 1, 2, tzinfo=UTC),
        **extra,  # type: ignore[arg-type]
    )


def _applied(seq: int, size: str, fee: str = "0") -> AppliedFill:
    return AppliedFill(fill_id=f"f{seq}", fills_seq=seq, size=D(size), fee_usd=D(fee))


def test_a_result_matching_its_fills_passes_within_float_tolerance() -> None:
    result = _result(fill_count=2, filled_size=0.1 + 0.2, fees_usd=0.01 + 0.02, last_fill_seq=5)
    check = check_result(result, [_applied(3, "0.1", "0.01"), _applied(5, "0.2", "0.02")])
    assert not check.mismatch
    assert (check.totals.count, check.totals.size, check.totals.fees_usd) == (
        2,
        D("0.3"),
        D("0.03"),
    )


def test_a_result_disagreeing_with_its_fills_names_every_difference() -> None:
    result = _result(fill_count=2, filled_size=1.0, fees_usd=0.5, last_fill_seq=4)
    check = check_result(result, [_applied(3, "0.4", "0.1"), _applied(9, "0.6")])
    assert check.mismatch
    assert check.problems == (
        "fill_count: result says 2, ledger applied 1",
        "filled_size: result says 1.0, ledger applied 0.4",
        "fees_usd: result says 0.5, ledger applied 0.1",
        "fill f9 at FILLS seq 9 is after last_fill_seq 4",
    )
