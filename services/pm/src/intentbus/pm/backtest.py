"""Backtest: the PM's own tick engine over a candle file, with a simulated venue and ledger.

The same :class:`~intentbus.pm.indicators.FeatureTracker`, planners, caps and intent ids
as a live PM; fills come from a :class:`~intentbus.pm.simulation.FillSimulator` at each
candle's close. No clock, no bus: it runs as fast as the machine allows and gives the same
result every time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from intentbus.pm.config import PMConfig
from intentbus.pm.engine import Refusal, TickEngine
from intentbus.pm.indicators import FeatureTracker
from intentbus.pm.simulation import CloseFill, FillSimulator, Trade
from intentbus.schemas import ExecutionIntent, Position
from intentbus.schemas.candle import Candle


@dataclass(frozen=True)
class EquityPoint:
    """The book's value at one candle's close."""

    at: datetime
    close: float
    equity_usd: float
    position_size: float


@dataclass
class BacktestResult:
    """Everything a backtest produced."""

    intents: list[ExecutionIntent] = field(default_factory=list)
    trades: list[Trade] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    equity: list[EquityPoint] = field(default_factory=list)
    positions: dict[str, Position] = field(default_factory=dict)
    candles: int = 0

    @property
    def realized_pnl_usd(self) -> float:
        """Return the realized PnL of every position."""
        return sum(p.realized_pnl_usd for p in self.positions.values())

    @property
    def fees_usd(self) -> float:
        """Return the fees paid."""
        return sum(p.fees_usd for p in self.positions.values())

    @property
    def max_drawdown_usd(self) -> float:
        """Return the largest fall of equity from a previous peak."""
        peak, worst = float("-inf"), 0.0
        for point in self.equity:
            peak = max(peak, point.equity_usd)
            worst = max(worst, peak - point.equity_usd)
        return worst


def run_backtest(
    candles: Iterable[Candle],
    config: PMConfig,
    *,
    fills: FillSimulator | None = None,
    engine: TickEngine | None = None,
    trade_from: datetime | None = None,
) -> BacktestResult:
    """Run the PM over ``candles`` (in time order) and return intents, trades and equity.

    Candles opening before ``trade_from`` only warm the indicators up, like the history
    a fresh live PM folds before its first candle. Equity is the PnL of the book:
    realized plus unrealized minus fees, in USD.
    """
    simulator = fills or CloseFill()
    ticks = engine or TickEngine.from_config(config)
    trackers: dict[tuple[str, str, str], FeatureTracker] = {}
    result = BacktestResult()
    for candle in candles:
        key = (candle.venue, candle.symbol, candle.timeframe)
        tracker = trackers.setdefault(key, FeatureTracker(config.features))
        features = tracker.update(candle)
        if features is None:
            continue
        result.candles += 1
        trading = trade_from is None or candle.open_time >= trade_from
        if features.warm and trading and ticks.books_for(candle):
            venue_positions = [p for p in result.positions.values() if p.venue == candle.venue]
            plan = ticks.plan(features, venue_positions, candle.close_time)
            result.refusals.extend(plan.refusals)
            for opened in plan.opens:
                result.positions.setdefault(
                    opened.position_id,
                    Position(
                        position_id=opened.position_id,
                        venue=opened.venue,
                        book_id=opened.book_id,
                        token_contract=opened.token_contract,
                        direction=opened.direction,
                        allocation_usd=opened.allocation_usd,
                    ),
                )
            for intent in plan.intents:
                result.intents.append(intent)
                trade, updated = simulator.execute(
                    intent, result.positions[intent.position_id], candle
                )
                result.positions[intent.position_id] = updated
                result.trades.append(trade)
        result.equity.append(_equity(result, candle))
    return result


def _equity(result: BacktestResult, candle: Candle) -> EquityPoint:
    value = 0.0
    held = 0.0
    for position in result.positions.values():
        value += position.realized_pnl_usd - position.fees_usd
        if position.token_contract == candle.symbol and position.size > 0:
            value += (candle.close - position.avg_entry_price) * position.size
            held += position.size
    return EquityPoint(candle.close_time, candle.close, value, held)
