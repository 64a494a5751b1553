"""Closed OHLCV candles, as the feed publishes them on ``candles.<venue>.<symbol>.<tf>``."""

from __future__ import annotations

import re
from datetime import timedelta

import msgspec

from intentbus.schemas.fields import (
    NonNegative,
    Positive,
    SubjectToken,
    Timestamp,
    check_ids,
    derived_id,
)

CANDLE_TAG = "intentbus.candle.v1"
TIMEFRAME_PATTERN = r"^[1-9][0-9]{0,3}[smhdw]$"
_TIMEFRAME = re.compile(TIMEFRAME_PATTERN)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def timeframe_duration(timeframe: str) -> timedelta:
    """Return the length of a timeframe such as ``15m``, ``1h``, ``1d`` or ``1w``."""
    if not isinstance(timeframe, str) or not _TIMEFRAME.fullmatch(timeframe):
        raise ValueError(
            f"timeframe {timeframe!r} must be a count and a unit s, m, h, d or w (e.g. 1h)"
        )
    return timedelta(seconds=int(timeframe[:-1]) * _UNIT_SECONDS[timeframe[-1]])


class Candle(msgspec.Struct, frozen=True, kw_only=True, tag_field="schema", tag=CANDLE_TAG):
    """One closed OHLCV candle of a symbol on a venue.

    ``open_time`` is the start of the bar, ``close_time`` its end (``open_time`` plus the
    timeframe); only closed candles are published. Prices are in the quote currency.
    Evolution: new fields get defaults; a breaking change is a new ``schema`` tag.
    """

    venue: SubjectToken
    symbol: SubjectToken
    timeframe: SubjectToken
    open_time: Timestamp
    close_time: Timestamp
    open: Positive
    high: Positive
    low: Positive
    close: Positive
    volume: NonNegative = 0.0

    def __post_init__(self) -> None:
        check_ids(self, ("venue", "symbol", "timeframe"))
        if self.close_time - self.open_time != timeframe_duration(self.timeframe):
            raise ValueError("close_time must be open_time plus the timeframe")
        if self.high < max(self.open, self.close, self.low):
            raise ValueError("high must be at least open, close and low")
        if self.low > min(self.open, self.close):
            raise ValueError("low must be at most open and close")

    @property
    def candle_id(self) -> str:
        """Return the candle's id (its ``Nats-Msg-Id``): venue, symbol, timeframe, open time."""
        opened = str(int(self.open_time.timestamp()))
        return derived_id("candle", self.venue, self.symbol, self.timeframe, opened)
