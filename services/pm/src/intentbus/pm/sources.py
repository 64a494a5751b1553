"""Where candles come from: an OHLCV file, a seeded generator, or a venue's API.

CSV columns: a time column (first column, or one named ``time``/``date``/``datetime``/
``timestamp``: ISO dates or times, or epoch seconds/milliseconds; naive times are UTC),
then ``open``, ``high``, ``low``, ``close`` and optionally ``volume`` (any case). Each
row is the bar *opening* at that time. Parquet files with the same columns are read when
pyarrow is installed (optional).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any, Protocol

import msgspec

from intentbus.schemas.candle import Candle, timeframe_duration

_TIME_COLUMNS = ("time", "date", "datetime", "timestamp", "")


class SourceError(ValueError):
    """Raise when a candle source cannot be read; the message names the row or column."""


class CandleSource(Protocol):
    """A source of closed candles in time order (a file, a generator, a venue)."""

    def candles(self) -> Iterable[Candle]: ...


class VenueCandleSource(Protocol):
    """The seam for a venue's market data API: closed candles and marks, polled by the feed.

    ``intentbus.pm.hyperliquid.HyperliquidCandleSource`` (``candleSnapshot``, ``allMids``)
    implements it. The methods block (HTTP): the feed calls them from a worker thread.
    """

    venue: str

    def history(self, symbol: str, timeframe: str, since: datetime) -> list[Candle]:
        """Return the closed candles opening at or after ``since``, in time order."""
        ...

    def marks(self, symbols: Iterable[str]) -> dict[str, float]:
        """Return the venue's current mark (mid) of each of ``symbols`` it lists."""
        ...


def parse_time(raw: str) -> datetime:
    """Parse an ISO date/time or epoch seconds/milliseconds; naive means UTC."""
    text = raw.strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        seconds = number / 1000.0 if number > 1e11 else number
        return datetime.fromtimestamp(seconds, UTC)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise SourceError(f"cannot read time {raw!r}") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def infer_timeframe(times: list[datetime]) -> str:
    """Return the smallest step between consecutive times as a timeframe (``1h``, ``1d``)."""
    steps = [b - a for a, b in pairwise(times) if b > a]
    if not steps:
        raise SourceError("cannot infer the timeframe from fewer than two rows")
    seconds = int(min(steps).total_seconds())
    for unit, size in (("w", 604_800), ("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    raise SourceError(f"cannot express a step of {seconds}s as a timeframe")


def _rows(path: Path) -> list[dict[str, Any]]:
    if path.suffix.lower() == ".parquet":
        try:
            import pyarrow.parquet as pq  # type: ignore[import-not-found]
        except ImportError as exc:
            raise SourceError("reading Parquet needs pyarrow (pip install pyarrow)") from exc
        table = pq.read_table(path)
        return [
            {str(k): ("" if v is None else str(v)) for k, v in row.items()}
            for row in table.to_pylist()
        ]
    try:
        with path.open(newline="") as handle:
            return list(csv.DictReader(handle))
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror}") from exc


def read_ohlcv(
    path: Path,
    *,
    venue: str,
    symbol: str,
    timeframe: str | None = None,
    limit: int | None = None,
) -> list[Candle]:
    """Read an OHLCV file into candles (``timeframe`` inferred from the times if not given)."""
    rows = _rows(path)[:limit] if limit else _rows(path)
    if not rows:
        raise SourceError(f"{path} has no rows")
    columns = {name.strip().lower(): name for name in rows[0]}
    time_key = next((columns[c] for c in _TIME_COLUMNS if c in columns), None)
    if time_key is None:
        time_key = next(iter(rows[0]))
    missing = [c for c in ("open", "high", "low", "close") if c not in columns]
    if missing:
        raise SourceError(f"{path}: missing column(s) {', '.join(missing)}")
    times = [parse_time(str(row[time_key])) for row in rows]
    frame = timeframe or infer_timeframe(times)
    step = timeframe_duration(frame)
    candles = []
    for number, (row, opened) in enumerate(zip(rows, times, strict=True), start=2):
        try:
            values = {c: float(row[columns[c]]) for c in ("open", "high", "low", "close")}
            volume = float(row[columns["volume"]]) if "volume" in columns else 0.0
            candles.append(_candle(venue, symbol, frame, opened, step, values, volume))
        except (ValueError, TypeError, msgspec.ValidationError) as exc:
            raise SourceError(f"{path} row {number}: {exc}") from exc
    return candles


def _candle(
    venue: str,
    symbol: str,
    timeframe: str,
    opened: datetime,
    step: timedelta,
    values: dict[str, float],
    volume: float,
) -> Candle:
    from intentbus.schemas import validated

    return validated(
        Candle(
            venue=venue,
            symbol=symbol,
            timeframe=timeframe,
            open_time=opened,
            close_time=opened + step,
            open=values["open"],
            high=values["high"],
            low=values["low"],
            close=values["close"],
            volume=max(volume, 0.0),
        )
    )
