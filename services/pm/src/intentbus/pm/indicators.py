"""Indicators on closed candles: EMAs, the reference EMA stack and its uptrend state.

Everything here is a pure function of the candles fed in order, so a PM that replays the
same candles (warm-up after a restart, a backtest) computes the same features.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from itertools import pairwise

from intentbus.schemas.candle import Candle

EMA_PERIODS = (20, 60, 144, 250, 333)


class UptrendState(StrEnum):
    """The founding spec's uptrend states (rules in ``docs/pm.md`` and :func:`classify`)."""

    S0 = "S0"  # no uptrend
    S1 = "S1"  # early uptrend: price above EMA333, fast EMA above EMA60
    S2 = "S2"  # pullback: slow stack bullish, price under the fast band but above EMA333
    S3 = "S3"  # trending: the full stack bullish, price on top
    S4 = "S4"  # extended: trending and stretched far above EMA60


class Ema:
    """Exponential moving average, alpha = 2 / (period + 1), seeded with the first value."""

    def __init__(self, period: int) -> None:
        if period < 1:
            raise ValueError("an EMA period is at least 1")
        self.period = period
        self._alpha = 2.0 / (period + 1.0)
        self.value: float | None = None
        self.count = 0

    def update(self, value: float) -> float:
        """Add a value and return the new average."""
        self.count += 1
        previous = self.value
        self.value = value if previous is None else previous + self._alpha * (value - previous)
        return self.value

    @property
    def warm(self) -> bool:
        """Say whether at least ``period`` values went in (the average is meaningful)."""
        return self.count >= self.period


@dataclass(frozen=True)
class StackParams:
    """Parameters of the reference features (defaults are the documented ones)."""

    periods: tuple[int, int, int, int, int] = EMA_PERIODS
    volatility_period: int = 60
    extension_vol: float = 10.0
    slope_ref: float = 0.05
    reclaim_cooldown_bars: int = 6


@dataclass(frozen=True)
class Features:
    """What the reference planner sees on one closed candle.

    ``emas`` are EMA20, EMA60, EMA144, EMA250 and EMA333 of the closes; ``volatility`` is
    the EMA of absolute close-to-close moves; ``extension`` is ``(close - EMA60) /
    volatility``. ``bars_in_state`` is 1 on the bar a state is entered. ``reclaim_signal``
    is the S2 dip-and-reclaim pattern (low at or under EMA60, close above it) at most once
    per ``reclaim_cooldown_bars``. ``warm`` is false until EMA333 has 333 closes.
    """

    candle: Candle
    index: int
    emas: tuple[float, float, float, float, float]
    volatility: float
    extension: float
    slope: float
    state: UptrendState
    prev_state: UptrendState
    bars_in_state: int
    reclaim_signal: bool
    a_final: float
    e_final: float
    warm: bool

    @property
    def close(self) -> float:
        """Return the candle's close."""
        return self.candle.close


def classify(
    close: float, emas: tuple[float, ...], extension: float, params: StackParams
) -> UptrendState:
    """Return the uptrend state of one closed candle (first rule that holds).

    S4: ``close > EMA20 > EMA60 > EMA144 > EMA250 > EMA333`` and ``extension >=
    extension_vol``. S3: the same full stack. S2: ``EMA60 > EMA144 > EMA250 > EMA333``
    and ``close >= EMA333``. S1: ``close > EMA333`` and ``EMA20 > EMA60``. S0: otherwise.
    """
    e20, e60, e144, e250, e333 = emas
    full = close > e20 > e60 > e144 > e250 > e333
    if full and extension >= params.extension_vol:
        return UptrendState.S4
    if full:
        return UptrendState.S3
    if e60 > e144 > e250 > e333 and close >= e333:
        return UptrendState.S2
    if close > e333 and e20 > e60:
        return UptrendState.S1
    return UptrendState.S0


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))


def scores(
    close: float, emas: tuple[float, ...], extension: float, slope: float, params: StackParams
) -> tuple[float, float]:
    """Return ``(a_final, e_final)``, each in [0, 1], rounded to 4 places.

    ``stack`` = share of the 5 neighbour pairs of (close, EMA20..EMA333) in bullish order,
    ``bear`` = share in bearish order; ``slope`` is EMA144's change per bar in volatility
    units. ``a_final = 0.6 * stack + 0.4 * clamp(slope / slope_ref)``; ``e_final =
    max(clamp(extension / (2 * extension_vol)), bear)``.
    """
    chain = (close, *emas)
    pairs = list(pairwise(chain))
    stack = sum(1 for a, b in pairs if a > b) / len(pairs)
    bear = sum(1 for a, b in pairs if a < b) / len(pairs)
    a_final = 0.6 * stack + 0.4 * _clamp(slope / params.slope_ref)
    e_final = max(_clamp(extension / (2.0 * params.extension_vol)), bear)
    return round(_clamp(a_final), 4), round(_clamp(e_final), 4)


@dataclass
class FeatureTracker:
    """Fold closed candles of one (venue, symbol, timeframe) into :class:`Features`."""

    params: StackParams = field(default_factory=StackParams)
    _emas: list[Ema] = field(default_factory=list)
    _vol: Ema | None = None
    _prev_close: float | None = None
    _prev_slow: float | None = None
    _last_open: float | None = None
    _state: UptrendState = UptrendState.S0
    _bars_in_state: int = 0
    _since_reclaim: int = 10**9
    count: int = 0

    def __post_init__(self) -> None:
        self._emas = [Ema(period) for period in self.params.periods]
        self._vol = Ema(self.params.volatility_period)

    def update(self, candle: Candle) -> Features | None:
        """Fold one candle; ``None`` for a candle not newer than the last one (replayed)."""
        opened = candle.open_time.timestamp()
        if self._last_open is not None and opened <= self._last_open:
            return None
        self._last_open = opened
        assert self._vol is not None
        close = candle.close
        move = 0.0 if self._prev_close is None else abs(close - self._prev_close)
        volatility = self._vol.update(move) if self._prev_close is not None else 0.0
        self._prev_close = close
        emas = tuple(ema.update(close) for ema in self._emas)
        e20, e60, e144, e250, e333 = emas
        scale = volatility if volatility > 0.0 else max(close * 1e-9, 1e-12)
        extension = (close - e60) / scale
        slope = 0.0 if self._prev_slow is None else (e144 - self._prev_slow) / scale
        self._prev_slow = e144
        stack = (e20, e60, e144, e250, e333)
        state = classify(close, stack, extension, self.params)
        prev_state = self._state
        self._bars_in_state = self._bars_in_state + 1 if state is prev_state else 1
        self._state = state
        self._since_reclaim += 1
        pattern = state is UptrendState.S2 and candle.low <= e60 < close
        reclaim = pattern and self._since_reclaim >= self.params.reclaim_cooldown_bars
        if reclaim:
            self._since_reclaim = 0
        a_final, e_final = scores(close, stack, extension, slope, self.params)
        self.count += 1
        return Features(
            candle=candle,
            index=self.count,
            emas=stack,
            volatility=volatility,
            extension=extension,
            slope=slope,
            state=state,
            prev_state=prev_state,
            bars_in_state=self._bars_in_state,
            reclaim_signal=reclaim,
            a_final=a_final,
            e_final=e_final,
            warm=all(ema.warm for ema in self._emas),
        )
