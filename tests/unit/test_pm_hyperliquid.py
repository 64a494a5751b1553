"""The PM's Hyperliquid market data parsers accept the recorded real responses."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from intentbus.pm.hyperliquid import (
    MAINNET_URL,
    base_url,
    check_interval,
    lookback,
    parse_candles,
    parse_mids,
)
from intentbus.pm.sources import SourceError

FIXTURES = Path(os.environ.get("HYPERLIQUID_FIXTURES", "/work/shared/fixtures/hyperliquid"))


def _recorded(name: str, kind: str) -> tuple[dict[str, Any], Any]:
    for entry in json.loads((FIXTURES / name).read_text()):
        if entry["request"]["type"] == kind:
            return entry["request"], entry["response"]
    raise AssertionError(f"no {kind} in {name}")


def test_parse_candles_reads_the_recorded_candle_snapshot() -> None:
    request, response = _recorded("get_candles_snapshot.json", "candleSnapshot")
    candles = parse_candles(response, venue="hyperliquid", symbol="kPEPE", timeframe="1h")
    assert len(candles) == len(response) == 24
    first = candles[0]
    assert first.open_time == datetime(2023, 5, 21, 20, tzinfo=UTC)
    assert first.close_time == first.open_time + timedelta(hours=1)
    prices = (first.open, first.high, first.low, first.close)
    assert prices == (0.001601, 0.001616, 0.001601, 0.001604)
    assert first.volume == 520665683.0
    assert first.candle_id == "candle-hyperliquid-kPEPE-1h-1684699200"
    # the venue's T is the bar's last millisecond
    ends = [int(c.close_time.timestamp() * 1000) - 1 for c in candles]
    assert ends == sorted(r["T"] for r in response)
    assert [c.open_time for c in candles] == sorted(c.open_time for c in candles)
    assert candles[0].open_time.timestamp() * 1000 <= request["req"]["startTime"]


def test_parse_candles_names_a_bad_row() -> None:
    _, response = _recorded("get_candles_snapshot.json", "candleSnapshot")
    broken = [response[0], {**response[1], "h": "0.000001"}]
    with pytest.raises(SourceError, match="row 1"):
        parse_candles(broken, venue="hyperliquid", symbol="kPEPE", timeframe="1h")
    with pytest.raises(SourceError, match="interval"):
        parse_candles(response, venue="hyperliquid", symbol="kPEPE", timeframe="4h")
    with pytest.raises(SourceError, match="not a list"):
        parse_candles({"error": "x"}, venue="hyperliquid", symbol="kPEPE", timeframe="1h")


def test_parse_mids_reads_the_recorded_all_mids() -> None:
    _, response = _recorded("get_all_mids.json", "allMids")
    mids = parse_mids(response)
    assert mids["BTC"] == 30_135.0
    assert mids["ETH"] == 1903.95
    assert len(mids) == len(response)
    with pytest.raises(SourceError):
        parse_mids(["BTC"])


def test_urls_intervals_and_lookback() -> None:
    assert base_url("mainnet") == MAINNET_URL
    assert base_url("http://127.0.0.1:8545/") == "http://127.0.0.1:8545"
    with pytest.raises(SourceError):
        base_url("somewhere")
    assert check_interval("15m") == "15m"
    with pytest.raises(SourceError, match="intervals"):
        check_interval("2m")
    now = datetime(2024, 1, 1, 10, 30, tzinfo=UTC)
    assert lookback("1h", 3, now) == datetime(2024, 1, 1, 7, tzinfo=UTC)
    assert lookback("1h", 0, now) == datetime(2024, 1, 1, 10, tzinfo=UTC)
