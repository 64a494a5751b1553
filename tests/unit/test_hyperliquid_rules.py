"""Hyperliquid's venue rules with the venue's own numbers, applied before any request."""

from __future__ import annotations

from typing import Any

import pytest

from intentbus.executor.sizing import plan_order
from intentbus.schemas import (
    ActionType,
    Direction,
    ExecutionPlan,
    Position,
    Skip,
    SkipReason,
    build_intent,
)
from intentbus.venues.hyperliquid.grid import round_price, round_size, valid_price, valid_size
from intentbus.venues.hyperliquid.parsing import AssetInfo
from intentbus.venues.hyperliquid.rules import adjust, market_rules

BTC = AssetInfo("BTC", 0, sz_decimals=5, max_leverage=40)
ETH = AssetInfo("ETH", 1, sz_decimals=4, max_leverage=25)
DOGE = AssetInfo("DOGE", 3, sz_decimals=0, max_leverage=10)
OLD = AssetInfo("OLD", 5, sz_decimals=2, max_leverage=3, delisted=True)
ISO = AssetInfo("ISO", 4, sz_decimals=1, max_leverage=3, only_isolated=True)


@pytest.mark.parametrize(
    ("price", "asset", "ok"),
    [
        (65_000, BTC, True),  # integers are always valid
        (123_456, BTC, True),  # even with more than 5 significant figures
        (65_000.5, BTC, False),  # 6 significant figures
        (6_500.5, BTC, True),  # 5 figures, 1 decimal (6 - szDecimals 5)
        (650.55, BTC, False),  # 2 decimals > 6 - 5
        (3_200.5, ETH, True),
        (3_200.55, ETH, False),
        (0.12345, DOGE, True),  # 5 figures, 5 decimals <= 6
        (0.123456, DOGE, False),
        (0.0012345, DOGE, False),  # 7 decimals > 6
    ],
)
def test_price_grid(price: float, asset: AssetInfo, ok: bool) -> None:
    assert valid_price(price, asset.sz_decimals) is ok


def test_rounding_to_the_grid_never_worsens_the_price() -> None:
    assert round_price(64_935.7, 5, up=False) == 64_935.0  # a buy rounds down
    assert round_price(64_935.2, 5, up=True) == 64_936.0  # a sell rounds up
    assert round_price(3_200.57, 4, up=False) == 3_200.5
    assert round_price(99_999.5, 5, up=True) == 100_000.0
    assert round_price(0.1234567, 0, up=False) == 0.12345
    assert valid_size(0.00001, 5)
    assert not valid_size(0.000011, 5)
    assert round_size(0.0000199, 5) == 0.00001


def test_rules_come_from_meta() -> None:
    rules = market_rules(BTC, default_leverage=3, max_slippage_bps=50, passive_offset_bps=10)
    assert (rules.lot_size, rules.min_notional_usd) == (0.00001, 10.0)
    assert (rules.default_leverage, rules.max_leverage) == (3.0, 40.0)
    capped = market_rules(ISO, default_leverage=5, max_slippage_bps=50, passive_offset_bps=10)
    assert capped.default_leverage == 3.0


def _plan(asset: AssetInfo, mark: float, allocation: float, **extra: Any) -> ExecutionPlan | Skip:
    rules = market_rules(asset, default_leverage=5, max_slippage_bps=50, passive_offset_bps=10)
    position = Position(
        position_id="p",
        venue="hyperliquid",
        book_id="main",
        token_contract=asset.name,
        direction=Direction.LONG,
        allocation_usd=allocation,
    )
    intent = build_intent(
        action=extra.pop("action", ActionType.ADD),
        size_frac=extra.pop("frac", 1.0),
        position_id="p",
        token_contract=asset.name,
        token_chain="hyperliquid",
        book_id="main",
        **extra,
    )
    planned = plan_order(
        intent,
        position,
        mark=mark,
        rules=rules,
        venue="hyperliquid",
        account="0x" + "1" * 40,
        venue_net=extra.get("net", 0.0),
    )
    return adjust(planned, asset) if isinstance(planned, ExecutionPlan) else planned


def test_an_order_worth_9_99_after_rounding_is_skipped_naming_the_rule() -> None:
    # 0.00016 BTC x 62510 = $10.0016 passes sizing at the mark; the passive limit
    # 62510 x 0.999 = 62447.49 rounds down to 62447: 0.00016 x 62447 = $9.99.
    skip = _plan(BTC, 62_510.0, 10.002, urgency="low")
    assert isinstance(skip, Skip)
    assert skip.reason == SkipReason.BELOW_MIN_NOTIONAL.value
    assert "$9.99" in skip.detail
    assert "min_notional" in skip.detail
    assert "min_notional_after_rounding" in skip.constraints_applied
    assert "price_tick" in skip.constraints_applied


def test_a_plan_is_fitted_to_the_grid_with_each_rule_named() -> None:
    plan = _plan(BTC, 65_000.0, 1_000.0, urgency="low", max_leverage=2.7)
    assert isinstance(plan, ExecutionPlan)
    assert plan.price == 64_935.0  # 65000 x 0.999 on the $1 grid
    assert plan.size == 0.01538
    assert plan.leverage == 2.0  # integer leverage
    for rule in ("lot_rounding", "sz_decimals", "price_tick", "integer_leverage", "min_notional"):
        assert rule in plan.constraints_applied
    ioc = _plan(ETH, 3_200.0, 1_000.0, urgency="critical", max_slippage_bps=30)
    assert isinstance(ioc, ExecutionPlan)
    assert ioc.price == 3_209.6  # 3200 x 1.003, 5 significant figures, down for a buy
    assert valid_price(ioc.price, ETH.sz_decimals)


def test_delisted_assets_and_only_isolated_ones() -> None:
    skip = _plan(OLD, 10.0, 1_000.0)
    assert isinstance(skip, Skip)
    assert skip.reason == SkipReason.MARKET_CLOSED.value
    assert "delisted" in skip.constraints_applied
    iso = _plan(ISO, 10.0, 1_000.0)
    assert isinstance(iso, ExecutionPlan)
    assert "only_isolated" in iso.constraints_applied
    assert iso.leverage == 3.0  # the asset's maximum caps the configured 5
