"""Venue-agnostic sizing, including every founding-spec defect being fixed."""

from __future__ import annotations

from typing import Any

import pytest

from intentbus.executor.ids import client_order_id
from intentbus.executor.sizing import (
    MarketRules,
    leverage_for,
    plan_order,
    round_down,
    round_up,
    side_for,
)
from intentbus.schemas import (
    ActionType,
    Direction,
    ExecutionPlan,
    OrderType,
    Position,
    Side,
    Skip,
    SkipReason,
    TimeInForce,
    build_intent,
)

RULES = MarketRules(lot_size=0.001, min_notional_usd=10.0, default_leverage=3.0, max_leverage=20.0)


def _position(size: float = 0.0, direction: Direction = Direction.LONG, **kw: Any) -> Position:
    return Position(
        position_id="p1",
        venue="paper",
        book_id="main",
        token_contract="BTC",
        direction=direction,
        allocation_usd=kw.pop("allocation_usd", 10_000.0),
        size=size,
        **kw,
    )


def _prepare(
    action: str,
    frac: float,
    position: Position,
    *,
    mark: float = 100.0,
    rules: MarketRules = RULES,
    venue_net: float | None = None,
    **extra: Any,
) -> ExecutionPlan | Skip:
    intent = build_intent(
        action=action,
        size_frac=frac,
        position_id=position.position_id,
        token_contract=position.token_contract,
        token_chain="paper",
        book_id="main",
        **extra,
    )
    if venue_net is None:  # by default the venue holds what the ledger holds
        venue_net = position.size if position.direction is Direction.LONG else -position.size
    return plan_order(
        intent,
        position,
        mark=mark,
        rules=rules,
        venue="paper",
        account="acct-main",
        venue_net=venue_net,
    )


def _plan(*args: Any, **kw: Any) -> ExecutionPlan:
    result = _prepare(*args, **kw)
    assert isinstance(result, ExecutionPlan), result
    return result


def _skip(*args: Any, **kw: Any) -> Skip:
    result = _prepare(*args, **kw)
    assert isinstance(result, Skip), result
    return result


@pytest.mark.parametrize(
    ("action", "direction", "side"),
    [
        (ActionType.ADD, Direction.LONG, Side.BUY),
        (ActionType.RECLAIM, Direction.LONG, Side.BUY),
        (ActionType.ADD, Direction.SHORT, Side.SELL),
        (ActionType.RECLAIM, Direction.SHORT, Side.SELL),
        (ActionType.TRIM, Direction.LONG, Side.SELL),
        (ActionType.EXIT, Direction.LONG, Side.SELL),
        (ActionType.EMERGENCY_EXIT, Direction.LONG, Side.SELL),
        (ActionType.TRIM, Direction.SHORT, Side.BUY),
        (ActionType.EXIT, Direction.SHORT, Side.BUY),
        (ActionType.EMERGENCY_EXIT, Direction.SHORT, Side.BUY),
    ],
)
def test_side_follows_action_and_direction(
    action: ActionType, direction: Direction, side: Side
) -> None:
    assert side_for(action, direction) is side


def test_spec_defect_reclaim_on_a_long_buys() -> None:
    plan = _plan("reclaim", 0.2, _position())
    assert plan.side is Side.BUY
    assert plan.size == pytest.approx(20.0)


def test_add_sizes_on_allocation_over_price() -> None:
    plan = _plan("add", 0.5, _position(allocation_usd=1_000.0), mark=300.0)
    assert plan.size == pytest.approx(1.666)  # 1.6666 rounded down to the 0.001 lot
    assert plan.notional_usd == pytest.approx(1.666 * 300.0)
    assert not plan.reduce_only
    assert plan.client_order_id == client_order_id(plan.intent_id)


def test_trim_sizes_on_the_position() -> None:
    plan = _plan("trim", 0.25, _position(size=2.0))
    assert plan.size == pytest.approx(0.5)
    assert plan.reduce_only


@pytest.mark.parametrize("action", ["exit", "emergency_exit"])
def test_exit_closes_the_whole_position_reduce_only(action: str) -> None:
    plan = _plan(action, 0.1, _position(size=1.2345))
    assert plan.size == 1.2345  # exactly the account's net: no rounding up into others
    assert plan.reduce_only
    assert "full_close" in plan.constraints_applied


def test_found_exit_never_takes_another_positions_tokens() -> None:
    # Found: A at 1.00005 and B at 1.0 on one account; EXIT A rounded up to 1.0001 and
    # took B's tokens. One position per account and symbol now, and EXIT is sized to
    # the account's actual net: exactly what the venue holds.
    plan = _plan("exit", 1.0, _position(size=1.00005), rules=RULES, venue_net=1.00005)
    assert plan.size == 1.00005


def test_exit_and_trim_size_against_the_venue_net_not_the_ledger() -> None:
    assert _plan("exit", 1.0, _position(size=1.0), venue_net=0.9).size == 0.9
    assert _plan("trim", 0.5, _position(size=1.0), venue_net=0.8).size == pytest.approx(0.4)
    short = _plan("exit", 1.0, _position(size=2.0, direction=Direction.SHORT), venue_net=-2.0)
    assert (short.side, short.size) == (Side.BUY, 2.0)


def test_nothing_to_close_at_the_venue_is_skipped() -> None:
    skip = _skip("exit", 1.0, _position(size=1.0), venue_net=0.0)
    assert skip.reason == SkipReason.NOTHING_TO_CLOSE
    flipped = _skip("exit", 1.0, _position(size=1.0), venue_net=-1.0)
    assert flipped.reason == SkipReason.NOTHING_TO_CLOSE


def test_a_closed_position_takes_no_intents() -> None:
    assert _skip("add", 0.5, _position(closed=True)).reason == SkipReason.POSITION_CLOSED


def test_low_urgency_rests_behind_the_mark() -> None:
    buy = _plan("add", 0.5, _position(), urgency="low")
    assert buy.price == pytest.approx(99.9)  # 10 bps below the mark
    assert "passive_offset" in buy.constraints_applied
    sell = _plan("trim", 0.5, _position(size=1.0), urgency="low")
    assert sell.price == pytest.approx(100.1)


def test_full_close_is_exempt_from_min_notional() -> None:
    plan = _plan("exit", 1.0, _position(size=0.01), mark=100.0)  # $1 < $10
    assert plan.size == pytest.approx(0.01)
    trim_all = _plan("trim", 1.0, _position(size=0.01), mark=100.0)
    assert trim_all.size == pytest.approx(0.01)


def test_spec_defect_min_notional_uses_the_rounded_size() -> None:
    # $10.099 before rounding would pass a $10.05 minimum; the rounded 0.1 x $100 = $10 fails.
    rules = MarketRules(lot_size=0.1, min_notional_usd=10.05)
    skip = _skip("add", 0.10099, _position(allocation_usd=100.0), rules=rules)
    assert skip.reason == SkipReason.BELOW_MIN_NOTIONAL
    ok = _plan(
        "add",
        0.10099,
        _position(allocation_usd=100.0),
        rules=MarketRules(lot_size=0.1, min_notional_usd=10.0),
    )
    assert ok.size == pytest.approx(0.1)


def test_rounds_to_zero_is_skipped() -> None:
    skip = _skip("add", 0.0, _position())
    assert skip.reason == SkipReason.ZERO_SIZE


def test_trim_below_min_notional_is_skipped() -> None:
    skip = _skip("trim", 0.01, _position(size=1.0))  # 0.01 x $100 = $1
    assert skip.reason == SkipReason.BELOW_MIN_NOTIONAL


def test_spec_defect_leverage_is_not_zero_without_a_pm_cap() -> None:
    plan = _plan("add", 0.1, _position())
    assert plan.leverage == 3.0
    assert leverage_for(RULES, None) == (3.0, False)


def test_leverage_is_capped_by_the_pm_and_the_asset() -> None:
    assert _plan("add", 0.1, _position(), max_leverage=2.0).leverage == 2.0
    assert _plan("add", 0.1, _position(), max_leverage=50.0).leverage == 3.0
    low_asset = MarketRules(lot_size=0.001, min_notional_usd=10, default_leverage=5, max_leverage=2)
    plan = _plan("add", 0.1, _position(), rules=low_asset)
    assert plan.leverage == 2.0
    assert "leverage_cap" in plan.constraints_applied


@pytest.mark.parametrize("action", ["add", "reclaim"])
def test_reduce_only_increase_is_skipped(action: str) -> None:
    skip = _skip(action, 0.5, _position(size=1.0), reduce_only=True)
    assert skip.reason == SkipReason.REDUCE_ONLY


@pytest.mark.parametrize("action", ["trim", "exit", "emergency_exit"])
def test_reducing_a_flat_position_is_skipped(action: str) -> None:
    assert _skip(action, 0.5, _position(size=0.0)).reason == SkipReason.NO_POSITION


def test_mismatched_position_is_skipped() -> None:
    intent = build_intent(
        action="add",
        size_frac=0.5,
        position_id="p1",
        token_contract="ETH",
        token_chain="paper",
        book_id="main",
    )
    skip = plan_order(
        intent,
        _position(),
        mark=100.0,
        rules=RULES,
        venue="paper",
        account="acct-main",
        venue_net=0.0,
    )
    assert isinstance(skip, Skip)
    assert skip.reason == SkipReason.POSITION_MISMATCH


def test_critical_is_a_marketable_ioc_within_max_slippage() -> None:
    buy = _plan("add", 0.5, _position(), urgency="critical", max_slippage_bps=100)
    assert (buy.order_type, buy.time_in_force) == (OrderType.MARKET, TimeInForce.IOC)
    assert buy.price == pytest.approx(101.0)
    sell = _plan("exit", 1.0, _position(size=1.0), urgency="critical", max_slippage_bps=100)
    assert sell.price == pytest.approx(99.0)
    default_cap = _plan("add", 0.5, _position(), urgency="critical")
    assert default_cap.price == pytest.approx(100.5)  # the venue default of 50 bps


def test_emergency_exit_is_always_marketable() -> None:
    plan = _plan("emergency_exit", 1.0, _position(size=1.0), urgency="low")
    assert plan.order_type is OrderType.MARKET


def test_spec_defect_a_limit_order_has_a_price() -> None:
    plan = _plan("add", 0.5, _position(), urgency="medium")
    assert plan.order_type is OrderType.LIMIT
    assert plan.price == pytest.approx(100.0)
    assert plan.time_in_force is TimeInForce.GTC
    assert plan.valid_until is not None
    maker = _plan("add", 0.5, _position(), post_only=True)
    assert (maker.order_type, maker.time_in_force, maker.post_only) == (
        OrderType.LIMIT,
        TimeInForce.POST_ONLY,
        True,
    )


def test_rounding_tolerates_float_noise() -> None:
    assert round_down(0.30000000000000004, 0.1) == pytest.approx(0.3)
    assert round_down(0.29999999999999, 0.1) == pytest.approx(0.3)
    assert round_down(0.2999, 0.1) == pytest.approx(0.2)
    assert round_up(0.2001, 0.1) == pytest.approx(0.3)
    assert round_up(0.30000000000000004, 0.1) == pytest.approx(0.3)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lot_size": 0.0, "min_notional_usd": 1},
        {"lot_size": 0.1, "min_notional_usd": -1},
        {"lot_size": 0.1, "min_notional_usd": 1, "default_leverage": 0},
    ],
)
def test_invalid_rules_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"must be|leverage"):
        MarketRules(**kwargs)
