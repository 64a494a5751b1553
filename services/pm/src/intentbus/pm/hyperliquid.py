"""Hyperliquid market data for the feed: closed candles (``candleSnapshot``), marks (``allMids``).

Through the official SDK's ``Info`` (unmodified, ``skip_ws=True``) at a configurable base
URL: mainnet, testnet or the local venue. Only closed candles are returned (a candle
whose open time plus interval is not yet past, the venue's current bar, never is); a
history longer than one answer (the venue sends at most 5,000 candles) is paged.
The PM package does not import ``intentbus.venues``: this talks to the venue's public
API only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec
from hyperliquid.info import Info
from hyperliquid.utils.error import Error as SdkError
from requests import RequestException

from intentbus.pm.sources import SourceError
from intentbus.schemas import validated
from intentbus.schemas.candle import Candle, timeframe_duration

MAINNET_URL = "https://api.hyperliquid.xyz"
TESTNET_URL = "https://api.hyperliquid-testnet.xyz"
NETWORKS = {"mainnet": MAINNET_URL, "testnet": TESTNET_URL}
INTERVALS = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "8h", "12h", "1d", "3d", "1w")
MAX_PAGES = 100  # candleSnapshot pages (5,000 candles each) one history call reads at most


def base_url(target: str) -> str:
    """Return the base URL of ``mainnet``, ``testnet`` or a URL given as is (no trailing /)."""
    url = NETWORKS.get(target, target).rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise SourceError(f"--hyperliquid takes mainnet, testnet or an http(s) URL, not {target!r}")
    return url


def check_interval(timeframe: str) -> str:
    """Return ``timeframe`` if Hyperliquid serves candles of that interval."""
    if timeframe not in INTERVALS:
        raise SourceError(
            f"Hyperliquid has no {timeframe!r} candles; intervals: {', '.join(INTERVALS)}"
        )
    return timeframe


def parse_candles(rows: Any, *, venue: str, symbol: str, timeframe: str) -> list[Candle]:
    """Convert a ``candleSnapshot`` answer into candles (open and closed), in time order.

    ``t`` is the open time (ms); ``T`` the last millisecond of the bar; prices and
    volume are decimal strings. A malformed row is an error naming its index.
    """
    if not isinstance(rows, list):
        raise SourceError(f"candleSnapshot answered {type(rows).__name__}, not a list")
    step = timeframe_duration(timeframe)
    candles = []
    for index, row in enumerate(rows):
        try:
            if row.get("i", timeframe) != timeframe:
                raise ValueError(f"interval {row.get('i')!r}, asked {timeframe!r}")
            opened = datetime.fromtimestamp(int(row["t"]) / 1000, UTC)
            candles.append(
                validated(
                    Candle(
                        venue=venue,
                        symbol=symbol,
                        timeframe=timeframe,
                        open_time=opened,
                        close_time=opened + step,
                        open=float(row["o"]),
                        high=float(row["h"]),
                        low=float(row["l"]),
                        close=float(row["c"]),
                        volume=max(float(row.get("v") or 0.0), 0.0),
                    )
                )
            )
        except (AttributeError, KeyError, TypeError, ValueError, msgspec.ValidationError) as exc:
            raise SourceError(f"candleSnapshot row {index}: {exc}") from exc
    return sorted(candles, key=lambda c: c.open_time)


def parse_mids(answer: Any) -> dict[str, float]:
    """Convert an ``allMids`` answer (coin -> decimal string) into prices."""
    if not isinstance(answer, Mapping):
        raise SourceError(f"allMids answered {type(answer).__name__}, not an object")
    try:
        return {str(coin): float(px) for coin, px in answer.items()}
    except (TypeError, ValueError) as exc:
        raise SourceError(f"allMids: {exc}") from exc


class HyperliquidCandleSource:
    """Closed candles and marks of Hyperliquid (a :class:`~intentbus.pm.sources.VenueCandleSource`).

    Blocking (the SDK uses ``requests``): the feed calls it from a worker thread. The
    ``Info`` client is made on first use (it reads ``spotMeta`` and ``meta``).
    """

    def __init__(
        self,
        url: str,
        *,
        venue: str = "hyperliquid",
        timeout_s: float = 10.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.url = base_url(url)
        self.venue = venue
        self._timeout_s = timeout_s
        self._clock = clock
        self._info: Info | None = None

    def _client(self) -> Info:
        if self._info is None:
            try:
                self._info = Info(self.url, skip_ws=True, timeout=self._timeout_s)
            except (SdkError, RequestException, KeyError, TypeError) as exc:
                raise SourceError(f"Hyperliquid at {self.url}: {exc}") from exc
        return self._info

    def history(self, symbol: str, timeframe: str, since: datetime) -> list[Candle]:
        """Return the closed candles of ``symbol`` opening at or after ``since``, in order."""
        check_interval(timeframe)
        info = self._client()
        now = self._clock()
        step = timeframe_duration(timeframe)
        start = since
        found: dict[datetime, Candle] = {}
        for _ in range(MAX_PAGES):
            try:
                rows = info.candles_snapshot(symbol, timeframe, _ms(start), _ms(now))
            except KeyError as exc:
                raise SourceError(f"Hyperliquid at {self.url} lists no coin {symbol!r}") from exc
            except (SdkError, RequestException) as exc:
                raise SourceError(f"candleSnapshot {symbol} {timeframe}: {exc}") from exc
            page = [
                c
                for c in parse_candles(rows, venue=self.venue, symbol=symbol, timeframe=timeframe)
                if c.open_time >= since and c.close_time <= now
            ]
            fresh = [c for c in page if c.open_time not in found]
            found.update((c.open_time, c) for c in fresh)
            if not fresh:
                break
            start = max(c.open_time for c in fresh) + step
            if start + step > now:
                break
        return [found[t] for t in sorted(found)]

    def marks(self, symbols: Iterable[str]) -> dict[str, float]:
        """Return the mids of ``symbols`` the venue lists (``allMids``)."""
        try:
            mids = parse_mids(self._client().all_mids())
        except (SdkError, RequestException) as exc:
            raise SourceError(f"allMids: {exc}") from exc
        return {s: mids[s] for s in symbols if s in mids}


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def lookback(timeframe: str, bars: int, now: datetime) -> datetime:
    """Return the open time ``bars`` closed bars of ``timeframe`` before ``now``."""
    step = timeframe_duration(timeframe)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    current = epoch + ((now - epoch) // step) * step
    return current - max(bars, 0) * step
