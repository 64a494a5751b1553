"""A deterministic in-process venue and ledger for backtests: fills at the candle's close.

It mirrors what the paper executor and the ledger do with an intent, without a bus:

* sizing as ``intentbus.executor.sizing.plan_order``: ADD/RECLAIM buy
  ``allocation * size_frac / price``, TRIM sells ``size_frac`` of the held size,
  EXIT/EMERGENCY_EXIT sell all of it; sizes round down to ``lot_size``; an order (not a
  full close) worth less than ``min_notional_usd`` is skipped (``below_min_notional``),
  one rounding to 0 is skipped (``zero_size_after_rounding``), reducing nothing is skipped
  (``no_position``), an increase on a reduce-only intent is skipped;
* the paper venue's fills (its ``matching.py``) at the mark, which is the close of the
  candle the intent was decided on (the feed publishes it as the mark before the
  candle): a critical intent or an EMERGENCY_EXIT is a marketable IOC and fills at the
  mark moved by ``slippage_bps`` against it; any other intent is a GTC limit at the mark
  that the mark reaches on arrival, so it takes at once at the mark (the taker price
  capped at its limit); both pay ``taker_fee_bps``. A LOW-urgency limit rests
  ``passive_offset_bps`` behind the mark on the venue until a later mark reaches it; the
  simulation fills it at once at that limit as maker (``maker_fee_bps``): an
  approximation (the reference planner sends no LOW intents);
* the ledger's accounting: average entry on buys, realized PnL on sells, fees; a
  position fully exited is closed (the PM opens a new one on the next entry).

Depth limits of the paper venue (``depth_usd``, ``taker_depth_usd``) are not modelled:
run the venue with its defaults (unlimited) to compare a live run with a backtest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import msgspec

from intentbus.schemas import (
    CLOSING_ACTIONS,
    INCREASING_ACTIONS,
    ActionType,
    ExecutionIntent,
    Position,
    Side,
    SkipReason,
    Urgency,
)
from intentbus.schemas.candle import Candle

_LOT_EPSILON = 1e-9


@dataclass(frozen=True)
class Trade:
    """One intent's outcome in a backtest: a fill or a skip with its reason."""

    at: datetime
    intent_id: str
    position_id: str
    symbol: str
    action: str
    side: str
    size: float
    price: float
    fee_usd: float
    realized_pnl_usd: float
    skip_reason: str | None = None

    @property
    def filled(self) -> bool:
        """Say whether the intent traded."""
        return self.skip_reason is None


class FillSimulator(Protocol):
    """Execute one intent against a position at a candle; return the trade and new position."""

    def execute(
        self, intent: ExecutionIntent, position: Position, candle: Candle
    ) -> tuple[Trade, Position]: ...


@dataclass(frozen=True)
class CloseFill:
    """Fill every intent at the candle's close, paper-venue style (defaults are its own)."""

    slippage_bps: float = 5.0
    taker_fee_bps: float = 4.5
    maker_fee_bps: float = 1.5
    passive_offset_bps: float = 10.0
    lot_size: float = 0.0001
    min_notional_usd: float = 10.0

    def execute(
        self, intent: ExecutionIntent, position: Position, candle: Candle
    ) -> tuple[Trade, Position]:
        """Size, fill and account for one intent at the candle's close."""
        return self.fill_at(intent, position, candle.close, candle.close_time)

    def fill_at(
        self, intent: ExecutionIntent, position: Position, mark: float, at: datetime
    ) -> tuple[Trade, Position]:
        """Size, fill and account for one intent at ``mark`` (see the module docstring)."""
        grows = intent.action in INCREASING_ACTIONS
        side = Side.BUY if grows else Side.SELL

        def skip(reason: str) -> tuple[Trade, Position]:
            trade = Trade(
                at, intent.intent_id, intent.position_id,
                intent.token_contract, intent.action.value, side.value, 0.0, 0.0, 0.0, 0.0,
                reason,
            )  # fmt: skip
            return trade, position

        if grows and intent.reduce_only:
            return skip(SkipReason.REDUCE_ONLY.value)
        if position.closed:
            return skip(SkipReason.POSITION_CLOSED.value)
        if not grows and position.size <= 0.0:
            return skip(SkipReason.NO_POSITION.value)
        if grows:
            raw = position.allocation_usd * intent.size_frac / mark
        elif intent.action in CLOSING_ACTIONS:
            raw = position.size
        else:
            raw = position.size * intent.size_frac
        full_close = not grows and raw >= position.size * (1 - _LOT_EPSILON)
        size = position.size if full_close else _round_down(raw, self.lot_size)
        if size <= 0.0:
            return skip(SkipReason.ZERO_SIZE.value)
        if not full_close and size * mark < self.min_notional_usd:
            return skip(SkipReason.BELOW_MIN_NOTIONAL.value)
        price, fee_bps = self._price(intent, grows, mark)
        fee = size * price * fee_bps / 10_000
        if grows:
            held = position.size + size
            entry = (position.avg_entry_price * position.size + price * size) / held
            realized = 0.0
            updated = msgspec.structs.replace(
                position,
                size=_clean(held, self.lot_size),
                avg_entry_price=entry,
                fees_usd=position.fees_usd + fee,
                updated_at=at,
            )
        else:
            left = 0.0 if full_close else _clean(position.size - size, self.lot_size)
            realized = (price - position.avg_entry_price) * size
            updated = msgspec.structs.replace(
                position,
                size=left,
                avg_entry_price=position.avg_entry_price if left > 0 else 0.0,
                realized_pnl_usd=position.realized_pnl_usd + realized,
                fees_usd=position.fees_usd + fee,
                closed=intent.action in CLOSING_ACTIONS or left <= 0.0,
                updated_at=at,
            )
        trade = Trade(
            at, intent.intent_id, intent.position_id, intent.token_contract,
            intent.action.value, side.value, size, price, fee, realized,
        )  # fmt: skip
        return trade, updated

    def _price(self, intent: ExecutionIntent, grows: bool, mark: float) -> tuple[float, float]:
        """Return the fill price and fee rate of the paper venue's order for ``intent``."""
        against = 1.0 if grows else -1.0
        if intent.urgency is Urgency.CRITICAL or intent.action is ActionType.EMERGENCY_EXIT:
            return mark * (1 + against * self.slippage_bps / 10_000), self.taker_fee_bps
        if intent.urgency is Urgency.LOW:
            return mark * (1 - against * self.passive_offset_bps / 10_000), self.maker_fee_bps
        return mark, self.taker_fee_bps


def _round_down(size: float, lot: float) -> float:
    return _clean(max(math.floor(size / lot + _LOT_EPSILON), 0) * lot, lot)


def _clean(value: float, lot: float) -> float:
    return round(value, max(0, -math.floor(math.log10(lot))) + 2)
