"""Every parser accepts every recorded real response; the local venue answers in their shapes.

The recordings (``/work/shared/fixtures/hyperliquid``, from the SDK's own test suite)
are found through ``HYPERLIQUID_FIXTURES`` or that default path.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from intentbus.venues.hyperliquid.parsing import (
    parse_candles,
    parse_l2,
    parse_leverage,
    parse_meta,
    parse_mids,
    parse_open_orders,
    parse_positions,
)
from intentbus.venues.hyperliquid.sim import info
from intentbus.venues.hyperliquid.sim.matching import Engine

FIXTURES = Path(os.environ.get("HYPERLIQUID_FIXTURES", "/work/shared/fixtures/hyperliquid"))
# Fields the recordings (2023) carry that the venue has since dropped.
RETIRED = {"maxTradeSzs"}


def _recordings() -> list[tuple[str, dict[str, Any], Any]]:
    found = []
    for path in sorted(FIXTURES.glob("*.json")):
        for entry in json.loads(path.read_text()):
            found.append((path.name, entry["request"], entry["response"]))
    return found


RECORDINGS = _recordings()


def test_the_recordings_are_there() -> None:
    kinds = {request["type"] for _, request, _ in RECORDINGS}
    assert kinds >= {"meta", "allMids", "clearinghouseState", "openOrders", "l2Book"}


def _parse(kind: str, response: Any) -> Any:
    if kind == "meta":
        return parse_meta(response)
    if kind == "allMids":
        return parse_mids(response)
    if kind == "clearinghouseState":
        return parse_positions(response), parse_leverage(response)
    if kind == "openOrders":
        return parse_open_orders(response)
    if kind == "l2Book":
        return parse_l2(response)
    if kind == "candleSnapshot":
        return parse_candles(response)
    raise AssertionError(f"no parser for {kind}")


@pytest.mark.parametrize(
    ("name", "request_", "response"), RECORDINGS, ids=[f"{n}:{r['type']}" for n, r, _ in RECORDINGS]
)
def test_every_parser_accepts_every_recording(name: str, request_: Any, response: Any) -> None:
    parsed = _parse(request_["type"], response)
    assert parsed


def test_parsed_values() -> None:
    by_kind = {request["type"]: response for _, request, response in RECORDINGS}
    meta = parse_meta(by_kind["meta"])
    assert (meta["BTC"].asset, meta["BTC"].sz_decimals, meta["BTC"].max_leverage) == (0, 5, 50)
    assert parse_mids(by_kind["allMids"])["BTC"] == 30_135.0
    positions = parse_positions(by_kind["clearinghouseState"])
    assert positions["BTC"] == -0.00785
    assert parse_leverage(by_kind["clearinghouseState"])["ETH"] == (True, 20)
    coin, oid, _, px, sz = parse_open_orders(by_kind["openOrders"])[0]
    assert (coin, oid, px, sz) == ("MATIC", 62269971, 1.0357, 208.7)


def _keys(value: Any) -> set[str]:
    return set(value) if isinstance(value, dict) else set()


def test_the_local_venue_answers_in_the_recorded_shapes() -> None:
    engine = Engine()
    for coin, mid in {"BTC": 65_000.0, "ETH": 3_200.0}.items():
        engine.mids[coin] = mid
    engine.record_price("BTC", 65_000.0, 1684702007000)  # in the recorded candles' window
    user = "0x5e9ee1089755c3435139848e47e6635505d5a13a"
    engine.deposit(user, 10_000.0)
    engine.place(
        user,
        {"a": 0, "b": True, "p": "65010", "s": "0.01", "r": False, "t": {"limit": {"tif": "Gtc"}}},
    )
    engine.place(
        user,
        {
            "a": 1,
            "b": True,
            "p": "3000",
            "s": "0.1",
            "r": False,
            "t": {"limit": {"tif": "Gtc"}},
            "c": "0x" + "1" * 32,
        },
    )
    for _, request, recorded in RECORDINGS:
        kind = request["type"]
        query = {**request, "coin": "BTC"} if kind == "l2Book" else request
        if kind == "candleSnapshot":
            query = {**request, "req": {**request["req"], "coin": "BTC"}}
        ours = info.answer(engine, {**query, "user": user})
        assert type(ours) is type(recorded), kind
        if isinstance(recorded, dict) and kind != "allMids":
            assert _keys(recorded) - RETIRED <= _keys(ours), kind
        if kind == "clearinghouseState":
            theirs = recorded["assetPositions"][0]
            mine = ours["assetPositions"][0]
            assert _keys(theirs) <= _keys(mine)
            assert _keys(theirs["position"]) - RETIRED <= _keys(mine["position"])
            assert _keys(recorded["marginSummary"]) <= _keys(ours["marginSummary"])
        if kind in ("openOrders", "candleSnapshot") and recorded:
            assert _keys(recorded[0]) <= _keys(ours[0]), kind
        if kind == "l2Book":
            assert _keys(recorded["levels"][0][0]) == _keys(ours["levels"][0][0])
        assert _parse(kind, ours) is not None


def test_the_local_venue_builds_candles_from_its_mids() -> None:
    engine = Engine()
    hour = 3_600_000
    start = 1_700_000_000_000 - 1_700_000_000_000 % hour
    for at, px in ((0, 100.0), (10, 104.0), (20, 98.0), (hour - 1, 101.0), (3 * hour + 5, 99.0)):
        engine.record_price("BTC", px, start + at)
    rows = info.answer(
        engine,
        {
            "type": "candleSnapshot",
            "req": {
                "coin": "BTC",
                "interval": "1h",
                "startTime": start + 5,
                "endTime": start + 3 * hour,
            },
        },
    )
    assert [(r["t"] - start, r["T"] - start) for r in rows] == [
        (0, hour - 1), (hour, 2 * hour - 1), (2 * hour, 3 * hour - 1), (3 * hour, 4 * hour - 1)
    ]  # fmt: skip
    assert [(r["o"], r["h"], r["l"], r["c"], r["n"]) for r in rows] == [
        ("100.0", "104.0", "98.0", "101.0", 4),
        ("101.0", "101.0", "101.0", "101.0", 0),  # no mid in the bar: flat at the last close
        ("101.0", "101.0", "101.0", "101.0", 0),
        ("99.0", "99.0", "99.0", "99.0", 1),
    ]
