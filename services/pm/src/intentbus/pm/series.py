"""Candle series without a file: from a list of closes, or a seeded random walk (demos).

Both are deterministic: the same arguments give the same candles.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

from intentbus.schemas.candle import Candle, timeframe_duration

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def candles_from_closes(
    closes: Sequence[float],
    *,
    venue: str = "paper",
    symbol: str = "BTC",
    timeframe: str = "1h",
    start: datetime = EPOCH,
    lows: dict[int, float] | None = None,
) -> list[Candle]:
    """Return one candle per close: open at the previous close, a 0.1% wick each way.

    ``lows`` sets the low of some candles (by index), e.g. a dip under an EMA.
    """
    step = timeframe_duration(timeframe)
    candles = []
    previous = closes[0]
    for index, close in enumerate(closes):
        high = max(previous, close) * 1.001
        low = min(previous, close) * 0.999
        if lows and index in lows:
            low = min(low, lows[index])
        opened = start + step * index
        candles.append(
            Candle(
                venue=venue,
                symbol=symbol,
                timeframe=timeframe,
                open_time=opened,
                close_time=opened + step,
                open=previous,
                high=high,
                low=low,
                close=close,
                volume=1.0,
            )
        )
        previous = close
    return candles


def synthetic_candles(
    count: int,
    *,
    seed: int = 7,
    venue: str = "paper",
    symbol: str = "BTC",
    timeframe: str = "1h",
    start: datetime = EPOCH,
    price: float = 65_000.0,
    drift: float = 0.0002,
    volatility: float = 0.006,
    regime_bars: int = 400,
) -> Iterator[Candle]:
    """Yield a seeded random walk whose drift flips sign every ``regime_bars`` (trends)."""
    rng = random.Random(seed)
    step = timeframe_duration(timeframe)
    for index in range(count):
        sign = 1.0 if (index // regime_bars) % 2 == 0 else -1.0
        opened_at = price
        move = sign * drift + rng.gauss(0.0, volatility)
        price = max(price * (1.0 + move), 1e-6)
        high = max(opened_at, price) * (1.0 + abs(rng.gauss(0.0, volatility / 3)))
        low = min(opened_at, price) * (1.0 - abs(rng.gauss(0.0, volatility / 3)))
        opened = start + step * index
        yield Candle(
            venue=venue,
            symbol=symbol,
            timeframe=timeframe,
            open_time=opened,
            close_time=opened + step,
            open=round(opened_at, 6),
            high=round(high, 6),
            low=round(low, 6),
            close=round(price, 6),
            volume=round(abs(rng.gauss(10.0, 3.0)), 4),
        )
