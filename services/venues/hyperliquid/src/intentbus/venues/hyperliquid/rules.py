"""Venue rules applied before any request: ``rules()`` for sizing and ``adjust()`` for the grid.

From ``meta``: size grid ``10^-szDecimals``; price at most 5 significant figures and
``6 - szDecimals`` decimals (buys round down, sells up: never worse than planned); $10
minimum value at the rounded price for anything but a full close; integer leverage in
1..maxLeverage; ``onlyIsolated`` forbids cross margin; a delisted asset does not trade.
Each skip names the rule; ``constraints_applied`` names each rule applied.
"""

from __future__ import annotations

import math

import msgspec

from intentbus.executor.sizing import MarketRules
from intentbus.schemas import ExecutionPlan, Side, Skip, SkipReason
from intentbus.venues.hyperliquid import constants as c
from intentbus.venues.hyperliquid.grid import round_price, round_size
from intentbus.venues.hyperliquid.parsing import AssetInfo


def market_rules(
    info: AssetInfo, *, default_leverage: int, max_slippage_bps: int, passive_offset_bps: int
) -> MarketRules:
    """Return the sizing rules of one asset."""
    return MarketRules(
        lot_size=10.0**-info.sz_decimals,
        min_notional_usd=c.MIN_NOTIONAL_USD,
        default_leverage=float(min(default_leverage, info.max_leverage)),
        max_leverage=float(info.max_leverage),
        default_max_slippage_bps=max_slippage_bps,
        passive_offset_bps=passive_offset_bps,
    )


def adjust(plan: ExecutionPlan, info: AssetInfo) -> ExecutionPlan | Skip:
    """Fit a sized plan to the venue grid, or skip it with the rule that refuses it."""
    applied = list(plan.constraints_applied)
    full_close = "full_close" in applied
    if info.delisted:
        return Skip(
            reason=SkipReason.MARKET_CLOSED.value,
            detail=f"{info.name} is delisted",
            constraints_applied=(*applied, "delisted"),
        )
    size = round_size(plan.size, info.sz_decimals)
    applied.append("sz_decimals")
    if size <= 0:
        return Skip(
            reason=SkipReason.ZERO_SIZE.value,
            detail=f"{plan.size:g} has more than {info.sz_decimals} decimals (szDecimals)",
            constraints_applied=tuple(applied),
        )
    if plan.price is None or not plan.price > 0:
        return Skip(reason=SkipReason.NO_MARK.value, detail="a limit price is needed")
    price = round_price(plan.price, info.sz_decimals, up=plan.side is Side.SELL)
    applied.append("price_tick")
    value = price * size
    if not full_close:
        applied.append("min_notional_after_rounding")
        if value < c.MIN_NOTIONAL_USD:
            return Skip(
                reason=SkipReason.BELOW_MIN_NOTIONAL.value,
                detail=(
                    f"min_notional: {size:g} x {price:g} = ${value:.2f} < "
                    f"${c.MIN_NOTIONAL_USD:g} after rounding"
                ),
                constraints_applied=tuple(applied),
            )
    leverage = min(max(math.floor(plan.leverage or 1.0), 1), info.max_leverage)
    applied.append("integer_leverage")
    if info.only_isolated:
        applied.append("only_isolated")
    return msgspec.structs.replace(
        plan,
        size=size,
        price=price,
        leverage=float(leverage),
        notional_usd=value,
        constraints_applied=tuple(dict.fromkeys(applied)),
    )
