"""Candle sources and the backtest on real data (the OHLCV files `backtesting` ships)."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from intentbus.command.app import build_app
from intentbus.pm.backtest import run_backtest
from intentbus.pm.config import BookConfig, PMConfig
from intentbus.pm.series import synthetic_candles
from intentbus.pm.sources import SourceError, infer_timeframe, read_ohlcv

DATA = Path(__import__("backtesting.test").test.__file__).parent
EURUSD = DATA / "EURUSD.csv"
GOOG = DATA / "GOOG.csv"


def book_config(symbol: str, timeframe: str) -> PMConfig:
    book = BookConfig(
        book_id="backtest", venue="paper", timeframe=timeframe, symbols=(symbol,),
        allocation_usd=10_000.0,
    )  # fmt: skip
    return PMConfig(books=(book,), name="backtest")


def test_real_files_read_with_their_timeframe() -> None:
    eurusd = read_ohlcv(EURUSD, venue="paper", symbol="EURUSD")
    goog = read_ohlcv(GOOG, venue="paper", symbol="GOOG", limit=2000)
    assert (len(eurusd), eurusd[0].timeframe) == (5000, "1h")
    assert (len(goog), goog[0].timeframe) == (2000, "1d")
    assert goog[0].open_time == datetime(2004, 8, 19, tzinfo=UTC)
    assert goog[0].close == 100.34


def test_csv_variants_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    path.write_text(
        "timestamp,OPEN,High,low,Close\n1700000000000,1,2,0.5,1.5\n1700000060000,1.5,2,1,1\n"
    )
    candles = read_ohlcv(path, venue="paper", symbol="X")
    assert candles[0].timeframe == "1m"
    assert candles[0].volume == 0.0
    assert candles[1].open_time == datetime(2023, 11, 14, 22, 14, 20, tzinfo=UTC)
    path.write_text("time,open,high,low\n2024-01-01,1,2,0.5\n")
    with pytest.raises(SourceError, match="close"):
        read_ohlcv(path, venue="paper", symbol="X")
    path.write_text("time,open,high,low,close\n2024-01-01,1,2,0.5,1\n2024-01-02,1,0.9,0.5,1\n")
    with pytest.raises(SourceError, match=r"row 3.*high"):
        read_ohlcv(path, venue="paper", symbol="X")
    with pytest.raises(SourceError, match="cannot infer"):
        infer_timeframe([datetime(2024, 1, 1, tzinfo=UTC)])


def test_parquet_needs_pyarrow_or_reads_like_csv(tmp_path: Path) -> None:
    path = tmp_path / "bars.parquet"
    if importlib.util.find_spec("pyarrow") is None:
        path.write_bytes(b"")
        with pytest.raises(SourceError, match="pyarrow"):
            read_ohlcv(path, venue="paper", symbol="X")
        return
    import pyarrow as pa  # type: ignore[import-not-found]
    import pyarrow.parquet as pq  # type: ignore[import-not-found]

    table = pa.table(
        {"time": ["2024-01-01", "2024-01-02"], "open": [1.0, 1.0], "high": [2.0, 2.0],
         "low": [0.5, 0.5], "close": [1.5, 1.2]}
    )  # fmt: skip
    pq.write_table(table, path)
    assert [c.close for c in read_ohlcv(path, venue="paper", symbol="X")] == [1.5, 1.2]


def test_synthetic_candles_are_seeded() -> None:
    first = list(synthetic_candles(50, seed=3))
    assert first == list(synthetic_candles(50, seed=3))
    assert first != list(synthetic_candles(50, seed=4))


def test_backtest_on_real_data_is_deterministic_and_trades() -> None:
    candles = read_ohlcv(EURUSD, venue="paper", symbol="EURUSD", limit=2000)
    config = book_config("EURUSD", "1h")
    result = run_backtest(candles, config)
    again = run_backtest(candles, config)
    assert result.trades == again.trades
    assert [i.intent_id for i in result.intents] == [i.intent_id for i in again.intents]
    assert len(result.equity) == 2000
    actions = {t.action for t in result.trades if t.filled}
    assert {"add", "trim"} <= actions
    assert actions & {"exit", "emergency_exit"}
    assert len(result.intents) == len(set(i.intent_id for i in result.intents))
    first_decision = min(i.created_at for i in result.intents)
    assert first_decision >= candles[332].close_time  # EMA333 is warm from the 333rd close
    closed = [p for p in result.positions.values() if p.closed]
    assert closed
    assert all(p.size == 0.0 for p in closed)


def test_backtest_command_prints_tables_and_writes_the_plot(tmp_path: Path) -> None:
    plot = tmp_path / "goog.png"
    args = ["backtest", "--file", str(GOOG), "--symbol", "GOOG", "--limit", "2000"]
    result = CliRunner().invoke(build_app(), [*args, "--plot", str(plot), "--rows", "5"])
    assert result.exit_code == 0, result.output
    assert "Trades" in result.output
    assert "realized PnL" in result.output
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    expected = run_backtest(
        read_ohlcv(GOOG, venue="paper", symbol="GOOG", limit=2000), book_config("GOOG", "1d")
    )
    assert f"│ intents                │ {len(expected.intents):>8} │" in result.output


def test_backtest_command_refuses_an_unknown_planner() -> None:
    args = ["backtest", "--file", str(GOOG), "--symbol", "GOOG", "--planner", "nope"]
    result = CliRunner().invoke(build_app(), args)
    assert result.exit_code == 2
    assert "no planner 'nope'" in result.output


def test_the_legacy_switch_per_book_gives_the_same_intents() -> None:
    candles = read_ohlcv(GOOG, venue="paper", symbol="GOOG", limit=1200)
    native = run_backtest(candles, book_config("GOOG", "1d"))
    legacy_book = BookConfig(
        book_id="backtest", venue="paper", timeframe="1d", symbols=("GOOG",),
        allocation_usd=10_000.0, planner="reference-legacy", legacy=True,
    )  # fmt: skip
    legacy = run_backtest(candles, PMConfig(books=(legacy_book,), name="backtest"))
    assert native.intents
    assert legacy.intents == native.intents
