"""The Candle message: golden fixture, JSON Schema, validation, subjects."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import msgspec
import pytest

from intentbus.bus import InvalidSubjectToken, Topology
from intentbus.schemas import decode, encode
from intentbus.schemas.candle import Candle, timeframe_duration
from intentbus.schemas.jsonschema import default_dir, render_schemas

GOLDEN = Path(__file__).resolve().parents[2] / "schemas" / "golden" / "Candle.json"


def test_golden_candle_round_trips_byte_for_byte() -> None:
    raw = GOLDEN.read_text().strip().encode()
    candle = decode(raw, Candle)
    assert encode(candle) == raw
    assert candle.candle_id == "candle-paper-BTC-1h-1767322800"


def test_candle_schema_is_current_and_accepts_the_golden_fixture() -> None:
    committed = (default_dir() / "Candle.schema.json").read_text()
    assert committed == render_schemas()["Candle.schema.json"], "run `just schemas`"
    jsonschema.validate(json.loads(GOLDEN.read_text()), json.loads(committed))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"high": 1.0}, "high"),
        ({"low": 70000.0}, "low"),
        ({"close": 0.0}, "close"),
        ({"timeframe": "1x"}, "timeframe"),
        ({"close_time": "2026-01-02T05:00:00Z"}, "close_time"),
        ({"symbol": "BTC.USD"}, "symbol"),
    ],
)
def test_invalid_candles_are_refused(change: dict[str, object], message: str) -> None:
    raw = {**json.loads(GOLDEN.read_text()), **change}
    with pytest.raises(msgspec.ValidationError, match=message):
        decode(json.dumps(raw), Candle)


def test_timeframes() -> None:
    assert timeframe_duration("15m") == timedelta(minutes=15)
    assert timeframe_duration("1d") == timedelta(days=1)
    with pytest.raises(ValueError, match="timeframe"):
        timeframe_duration("0h")


def test_candle_subjects() -> None:
    topology = Topology("ns")
    assert topology.candles_subject("paper", "BTC", "1h") == "ns.candles.paper.BTC.1h"
    assert topology.candles_filter() == "ns.candles.*.*.*"
    assert topology.candles_filter("paper", timeframe="1h") == "ns.candles.paper.*.1h"
    assert topology.candles_stream == "NS_CANDLES"
    with pytest.raises(InvalidSubjectToken):
        topology.candles_subject("paper", "BTC", "1.h")


def test_candle_times_are_utc_aware() -> None:
    candle = decode(GOLDEN.read_text(), Candle)
    assert candle.open_time == datetime(2026, 1, 2, 3, tzinfo=UTC)
