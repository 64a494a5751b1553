"""Venue-agnostic sizing: side, size, rounding, min notional, leverage and order style.

Pure functions, shared by every venue's ``prepare()``. The founding spec's defects are
fixed here: RECLAIM on a long buys, leverage is never 0 without a PM cap, the min-notional
check uses the rounded size, and a limit order always carries a price.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from intentbus.executor.ids import client_order_id
from intentbus.schemas import (
    CLOSING_ACTIONS,
    INCREASING_ACTIONS,
    ActionType,
    Direction,
    ExecutionIntent,
    ExecutionPlan,
    OrderType,
    Position,
    Side,
    Skip,
    SkipReason,
    TimeInForce,
    Urgency,
)

# Tolerance in lots, so 0.30000000000000004 / 0.1 is three lots, not 2.9999999.
_LOT_EPSILON = 1e-9


@dataclass(frozen=True, kw_only=True)
class MarketRules:
    """Describe one symbol's trading rules on a venue."""

    lot_size: float
    min_notional_usd: float
    default_leverage: float = 1.0
    max_leverage: float = 1.0
    default_max_slippage_bps: int = 50
    passive_offset_bps: int = 10

    def __post_init__(self) -> None:
        if not self.lot_size > 0:
            raise ValueError(f"lot_size must be > 0, got {self.lot_size}")
        if self.min_notional_usd < 0:
            raise ValueError(f"min_notional_usd must be >= 0, got {self.min_notional_usd}")
        if not self.default_leverage > 0 or not self.max_leverage > 0:
            raise ValueError("leverage must be > 0")
        if self.default_max_slippage_bps < 0:
            raise ValueError("default_max_slippage_bps must be >= 0")
        if not 0 <= self.passive_offset_bps < 10_000:
            raise ValueError("passive_offset_bps must be in [0, 10000)")


def increases(action: ActionType) -> bool:
    """Say whether the action grows the position (ADD, RECLAIM)."""
    return action in INCREASING_ACTIONS


def side_for(action: ActionType, direction: Direction) -> Side:
    """Return the side: increasing buys a long and sells a short; reducing does the opposite."""
    grow_side = Side.BUY if direction is Direction.LONG else Side.SELL
    if increases(action):
        return grow_side
    return Side.SELL if grow_side is Side.BUY else Side.BUY


def round_down(size: float, lot: float) -> float:
    """Round a size down to a whole number of lots."""
    lots = math.floor(size / lot + _LOT_EPSILON)
    return _clean(max(lots, 0) * lot, lot)


def round_up(size: float, lot: float) -> float:
    """Round a size up to a whole number of lots."""
    lots = math.ceil(size / lot - _LOT_EPSILON)
    return _clean(max(lots, 0) * lot, lot)


def _clean(value: float, lot: float) -> float:
    decimals = max(0, -math.floor(math.log10(lot))) + 2
    return round(value, decimals)


def leverage_for(rules: MarketRules, intent_cap: float | None) -> tuple[float, bool]:
    """Return the venue default leverage capped by the PM and the asset, and if it was capped."""
    leverage = rules.default_leverage
    caps = [rules.max_leverage] + ([intent_cap] if intent_cap is not None else [])
    capped = min([leverage, *caps])
    return capped, capped < leverage


def target_size(intent: ExecutionIntent, position: Position, price: float, held: float) -> float:
    """Return the unrounded size: allocation share for ADD/RECLAIM, share of ``held`` otherwise.

    ``held`` is what the account actually holds in the position's direction (the venue's
    net), so EXIT closes exactly that and TRIM trims a share of it.
    """
    if increases(intent.action):
        return position.allocation_usd * intent.size_frac / price
    if intent.action in CLOSING_ACTIONS:
        return held
    return held * intent.size_frac


def held_size(position: Position, venue_net: float) -> float:
    """Return the venue net in the position's direction (0 when it points the other way)."""
    held = venue_net if position.direction is Direction.LONG else -venue_net
    return max(held, 0.0)


def position_mismatch(intent: ExecutionIntent, position: Position) -> Skip | None:
    """Return a skip when the intent names another position, venue, book or symbol."""
    wanted = (intent.position_id, intent.token_chain, intent.book_id, intent.token_contract)
    actual = (position.position_id, position.venue, position.book_id, position.token_contract)
    if wanted == actual:
        return None
    return Skip(
        reason=SkipReason.POSITION_MISMATCH.value,
        detail=f"intent is for {'/'.join(wanted)}, the position is {'/'.join(actual)}",
    )


def plan_order(
    intent: ExecutionIntent,
    position: Position,
    *,
    mark: float,
    rules: MarketRules,
    venue: str,
    account: str,
    venue_net: float,
) -> ExecutionPlan | Skip:
    """Turn an intent into a plan under ``rules`` at the ``mark`` price, or a skip.

    ``venue_net`` is the account's signed net position in the symbol at the venue (after
    the position's working orders were cancelled): reducing orders are sized against it.
    """
    if intent.action is ActionType.HOLD:
        return Skip(reason=SkipReason.HOLD.value)
    mismatch = position_mismatch(intent, position)
    if mismatch is not None:
        return mismatch
    grows = increases(intent.action)
    if grows and intent.reduce_only:
        return Skip(
            reason=SkipReason.REDUCE_ONLY.value,
            detail=f"{intent.action.value} would increase a reduce-only position",
        )
    if position.closed:
        return Skip(reason=SkipReason.POSITION_CLOSED.value, detail="the position was exited")
    held = held_size(position, venue_net)
    if not grows and held <= 0:
        if position.is_flat:
            return Skip(reason=SkipReason.NO_POSITION.value, detail="nothing to reduce")
        return Skip(
            reason=SkipReason.NOTHING_TO_CLOSE.value,
            detail=f"the ledger holds {position.size:g} but the account's net is {venue_net:g}",
        )
    if not mark > 0:
        return Skip(reason=SkipReason.NO_MARK.value, detail=f"mark {mark} is not positive")
    constraints = ["lot_rounding"]
    raw = target_size(intent, position, mark, held)
    full_close = not grows and (
        intent.action in CLOSING_ACTIONS or raw >= held * (1 - _LOT_EPSILON)
    )
    if full_close:
        # Exactly the account's net: never dust, never more than the venue holds.
        size = held
        constraints.append("full_close")
    else:
        size = round_down(raw, rules.lot_size)
    if size <= 0:
        return Skip(
            reason=SkipReason.ZERO_SIZE.value,
            detail=f"{raw:g} rounds to 0 with lot {rules.lot_size:g}",
            constraints_applied=tuple(constraints),
        )
    notional = size * mark
    if not full_close:
        constraints.append("min_notional")
        if notional < rules.min_notional_usd:
            return Skip(
                reason=SkipReason.BELOW_MIN_NOTIONAL.value,
                detail=f"{size:g} x {mark:g} = ${notional:.2f} < ${rules.min_notional_usd:g}",
                constraints_applied=tuple(constraints),
            )
    leverage, capped = leverage_for(rules, intent.max_leverage)
    if capped:
        constraints.append("leverage_cap")
    side = side_for(intent.action, position.direction)
    style = order_style(intent, side, mark, rules)
    constraints.extend(style.constraints)
    if not grows:
        constraints.append("reduce_only")
    return ExecutionPlan(
        intent_id=intent.intent_id,
        position_id=intent.position_id,
        venue=venue,
        book_id=intent.book_id,
        account=account,
        symbol=intent.token_contract,
        action=intent.action,
        side=side,
        order_type=style.order_type,
        time_in_force=style.time_in_force,
        size=size,
        price=style.price,
        leverage=leverage,
        reduce_only=not grows,
        valid_until=intent.valid_until,
        client_order_id=client_order_id(intent.intent_id),
        reference_price=mark,
        notional_usd=notional,
        constraints_applied=tuple(constraints),
    )


@dataclass(frozen=True)
class OrderStyle:
    """Say how an order is sent: type, limit price, time in force."""

    order_type: OrderType
    price: float
    time_in_force: TimeInForce
    constraints: tuple[str, ...]


def order_style(intent: ExecutionIntent, side: Side, mark: float, rules: MarketRules) -> OrderStyle:
    """Pick the order style: critical (or emergency) is a marketable IOC within the slippage cap.

    Anything else is a GTC limit: at the mark, or for LOW urgency ``passive_offset_bps``
    behind it (below for a buy, above for a sell), so it rests until the market comes to
    it. ``post_only`` makes it maker-only (refused by the venue if it would cross).
    """
    if intent.urgency is Urgency.CRITICAL or intent.action is ActionType.EMERGENCY_EXIT:
        bps = (
            intent.max_slippage_bps
            if intent.max_slippage_bps is not None
            else rules.default_max_slippage_bps
        )
        factor = 1 + bps / 10_000 if side is Side.BUY else 1 - bps / 10_000
        return OrderStyle(OrderType.MARKET, mark * factor, TimeInForce.IOC, ("max_slippage",))
    price = mark
    constraints: tuple[str, ...] = ()
    if intent.urgency is Urgency.LOW and rules.passive_offset_bps:
        move = rules.passive_offset_bps / 10_000
        price = mark * (1 - move) if side is Side.BUY else mark * (1 + move)
        constraints = ("passive_offset",)
    if intent.post_only:
        return OrderStyle(
            OrderType.LIMIT, price, TimeInForce.POST_ONLY, (*constraints, "post_only")
        )
    return OrderStyle(OrderType.LIMIT, price, TimeInForce.GTC, constraints)
