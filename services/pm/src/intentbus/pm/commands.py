"""Commands: ``intentbus pm`` (tick loop), ``feed`` (candles and marks), ``backtest``."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from intentbus.bus import BusSettings, InvalidSubjectToken, Topology, check_token, connect
from intentbus.bus import provision as provision_streams
from intentbus.command.common import (
    MetricsPortOption,
    NamespaceOption,
    NatsUrlOption,
    console,
    fail,
    run,
    start_metrics,
)
from intentbus.pm.backtest import run_backtest
from intentbus.pm.config import BookConfig, ConfigError, PMConfig
from intentbus.pm.feed import CandleFeed
from intentbus.pm.planner import UnknownPlanner
from intentbus.pm.report import plot, print_report
from intentbus.pm.series import synthetic_candles
from intentbus.pm.service import PMService

if TYPE_CHECKING:
    from intentbus.pm.hyperliquid import HyperliquidCandleSource
from intentbus.pm.sources import SourceError, read_ohlcv
from intentbus.schemas.candle import Candle

log = logging.getLogger(__name__)


def stop_on_signals() -> asyncio.Event:
    """Return an event set by SIGINT or SIGTERM (call inside the running loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return stop


def _config(path: Path) -> PMConfig:
    try:
        return PMConfig.load(path)
    except ConfigError as exc:
        raise fail(str(exc)) from None


def pm(
    config: Annotated[Path, typer.Option("--config", "-c", help="The PM's TOML file.")],
    nats_url: NatsUrlOption = None,
    namespace: NamespaceOption = "",
    metrics_port: MetricsPortOption = None,
) -> None:
    """Run the PM: plan every open position on each closed candle, publish intents."""
    loaded = _config(config)
    start_metrics("intentbus-pm", metrics_port)  # /metrics is also the image's health check
    try:
        service = PMService(
            BusSettings.from_env(nats_url, name=f"intentbus-pm-{loaded.name}"),
            Topology(namespace),
            loaded,
        )
    except InvalidSubjectToken as exc:
        raise fail(str(exc)) from None
    run(_run_pm(service), service=True)


async def _run_pm(service: PMService) -> None:
    stop = stop_on_signals()
    try:
        await service.start()
    except (UnknownPlanner, ValueError) as exc:
        await service.stop()
        raise fail(str(exc), code=1) from None
    books = ", ".join(f"{b.book_id}:{b.planner}" for b in service.config.books)
    console.print(f"pm {service.durable}: books {books}; waiting for candles")
    try:
        await service.run(stop)
    finally:
        await service.stop()
    console.print(f"pm stopped after {service.ticks} ticks, {len(service.published)} intents")


class SourceKind(StrEnum):
    """Where the feed reads candles."""

    FILE = "file"
    SYNTHETIC = "synthetic"
    VENUE = "venue"


def _candles(
    file: Path | None,
    synthetic: int,
    seed: int,
    venue: str,
    symbol: str,
    timeframe: str | None,
    limit: int | None,
) -> list[Candle]:
    try:
        check_token("venue", venue)
        check_token("symbol", symbol)
        if file is not None:
            return read_ohlcv(file, venue=venue, symbol=symbol, timeframe=timeframe, limit=limit)
        if synthetic:
            return list(
                synthetic_candles(
                    synthetic, seed=seed, venue=venue, symbol=symbol, timeframe=timeframe or "1h"
                )
            )
    except (SourceError, InvalidSubjectToken, ValueError) as exc:
        raise fail(str(exc)) from None
    raise fail("give --file, --synthetic or --hyperliquid")


FileOption = Annotated[
    Path | None, typer.Option("--file", "-f", help="OHLCV file (CSV, or Parquet with pyarrow).")
]
SyntheticOption = Annotated[
    int, typer.Option(help="Publish this many seeded random-walk candles instead of a file.")
]
SeedOption = Annotated[int, typer.Option(help="Seed of the synthetic generator.")]
VenueOption = Annotated[str, typer.Option(help="Venue namespace of the candles and marks.")]
SymbolOption = Annotated[str, typer.Option(help="Symbol of the candles.")]
TimeframeOption = Annotated[
    str | None, typer.Option(help="Timeframe (1m, 1h, 1d...); inferred from a file if omitted.")
]
LimitOption = Annotated[int | None, typer.Option(help="Only the first N rows of the file.")]


def feed(
    file: FileOption = None,
    synthetic: SyntheticOption = 0,
    seed: SeedOption = 7,
    hyperliquid: Annotated[
        str | None,
        typer.Option(
            help="Poll Hyperliquid's candleSnapshot and allMids at mainnet, testnet or a URL "
            "(the local venue); publish closed candles and the mids as marks until stopped."
        ),
    ] = None,
    venue: Annotated[
        str | None,
        typer.Option(help="Venue namespace of the candles and marks (paper; hyperliquid)."),
    ] = None,
    symbol: SymbolOption = "BTC",
    timeframe: Annotated[
        str | None,
        typer.Option(
            "--timeframe",
            "--interval",
            help="Timeframe (1m, 1h, 1d...); inferred from a file; 1h from a venue.",
        ),
    ] = None,
    limit: LimitOption = None,
    pace: Annotated[float, typer.Option(help="Seconds between candles (0: at once).")] = 0.0,
    lockstep: Annotated[
        str | None,
        typer.Option(help="PM durable name: publish a candle only when the PM finished the last."),
    ] = None,
    poll: Annotated[float, typer.Option(help="Seconds between venue polls.")] = 10.0,
    backfill: Annotated[
        int,
        typer.Option(help="Closed bars a venue feed publishes first when none is stored."),
    ] = 500,
    nats_url: NatsUrlOption = None,
    namespace: NamespaceOption = "",
) -> None:
    """Publish closed candles and marks (CANDLES, MARKS) from a file, generator or venue."""
    if hyperliquid is not None:
        if file is not None or synthetic or lockstep:
            raise fail("--hyperliquid does not combine with --file, --synthetic or --lockstep")
        frame = timeframe or "1h"
        # Imported here: every `intentbus` command loads this module, and this one brings
        # the Hyperliquid SDK (eth_account, aiohttp) along.
        from intentbus.pm.hyperliquid import (
            HyperliquidCandleSource,
            check_interval,
        )

        try:
            check_token("venue", venue or "hyperliquid")
            check_token("symbol", symbol)
            check_interval(frame)
            source = HyperliquidCandleSource(hyperliquid, venue=venue or "hyperliquid")
        except (SourceError, InvalidSubjectToken) as exc:
            raise fail(str(exc)) from None
        run(
            _follow_venue(source, symbol, frame, poll, backfill, nats_url, namespace),
            service=True,
        )
        return
    candles = _candles(file, synthetic, seed, venue or "paper", symbol, timeframe, limit)
    run(_run_feed(candles, pace, lockstep, nats_url, namespace))


async def _run_feed(
    candles: list[Candle], pace: float, lockstep: str | None, nats_url: str | None, ns: str
) -> None:
    stop = stop_on_signals()
    topology = Topology(ns)
    nc = await connect(BusSettings.from_env(nats_url, name="intentbus-feed"))
    try:
        js = nc.jetstream()
        await provision_streams(js, topology)
        stats = await CandleFeed(js, topology, pace_s=pace, lockstep=lockstep).run(candles, stop)
    finally:
        await nc.drain()
    console.print(
        f"feed: {stats.candles} candles published ({stats.duplicates} already stored), "
        f"last sequence {stats.last_seq}"
    )


async def _follow_venue(
    source: HyperliquidCandleSource,
    symbol: str,
    timeframe: str,
    poll: float,
    backfill: int,
    nats_url: str | None,
    ns: str,
) -> None:
    stop = stop_on_signals()
    topology = Topology(ns)
    nc = await connect(BusSettings.from_env(nats_url, name="intentbus-feed"))
    try:
        js = nc.jetstream()
        await provision_streams(js, topology)
        feed_ = CandleFeed(js, topology)
        from intentbus.pm.hyperliquid import lookback

        since = lookback(timeframe, backfill, datetime.now(UTC))
        console.print(f"feed: polling {source.url} for {symbol} {timeframe} every {poll:g}s")
        stats = await feed_.follow(source, symbol, timeframe, since=since, poll_s=poll, stop=stop)
    finally:
        await nc.drain()
    console.print(
        f"feed: {stats.candles} candles published ({stats.duplicates} already stored), "
        f"{stats.marks} marks, {stats.polls} polls ({stats.errors} failed)"
    )


def backtest(
    file: Annotated[Path, typer.Option("--file", "-f", help="OHLCV file (CSV or Parquet).")],
    planner: Annotated[str, typer.Option(help="Planner entry point name.")] = "reference",
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="PM TOML file (default: one book).")
    ] = None,
    venue: VenueOption = "paper",
    symbol: SymbolOption = "BTC",
    timeframe: TimeframeOption = None,
    limit: LimitOption = None,
    allocation: Annotated[float, typer.Option(help="Allocation of each position (USD).")] = 10_000,
    plot_file: Annotated[
        Path | None, typer.Option("--plot", help="Write equity and position as a PNG here.")
    ] = None,
    rows: Annotated[int | None, typer.Option(help="Print only the last N trades.")] = None,
) -> None:
    """Run the PM over a file with a simulated paper venue and ledger; print trades and PnL."""
    candles = _candles(file, 0, 0, venue, symbol, timeframe, limit)
    if config is not None:
        loaded = _config(config)
    else:
        book = BookConfig(
            book_id="backtest",
            venue=venue,
            timeframe=candles[0].timeframe,
            planner=planner,
            symbols=(symbol,),
            allocation_usd=allocation,
        )
        loaded = PMConfig(books=(book,), name="backtest")
    try:
        result = run_backtest(candles, loaded)
    except (UnknownPlanner, ValueError) as exc:
        raise fail(str(exc)) from None
    print_report(result, console, rows)
    if plot_file is not None:
        try:
            written = plot(result, plot_file, f"{symbol} {candles[0].timeframe} {planner}")
        except RuntimeError as exc:
            raise fail(str(exc), code=1) from None
        console.print(f"plot: {written}")


def register(app: typer.Typer) -> None:
    """Add ``pm``, ``feed`` and ``backtest``."""
    app.command("pm")(pm)
    app.command("feed")(feed)
    app.command("backtest")(backtest)
