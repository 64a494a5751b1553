"""The PM service against a real nats-server: feed in lockstep, ledger fake, a fill stub.

The "venue" here is a test stub that fills each intent at the latest mark with the
backtest's own :class:`CloseFill` and publishes the result; the ledger is the shared
``FakeLedger``. So the live PM (durable consumer, warm-up, read-your-writes, result
waits, restart) must publish exactly the intents the backtest decides on the same file.
The end-to-end test with the real paper executor and ledger is in tests/e2e.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy

from intentbus.bus import BusSettings, Publisher, Topology
from intentbus.pm.backtest import run_backtest
from intentbus.pm.config import BookConfig, PMConfig
from intentbus.pm.feed import CandleFeed
from intentbus.pm.service import PMService
from intentbus.pm.sources import read_ohlcv
from intentbus.schemas import (
    ExecutionIntent,
    ExecutionResult,
    ExecutionStatus,
    Mark,
    decode,
    result_id_for,
)
from intentbus.schemas.candle import Candle
from intentbus.testing import wait_for
from intentbus.testing.fake_ledger import FakeLedger

pytestmark = pytest.mark.timeout(240)
GOOG = Path(__import__("backtesting.test").test.__file__).parent / "GOOG.csv"
from intentbus.pm.simulation import CloseFill  # noqa: E402


def goog(count: int) -> list[Candle]:
    return read_ohlcv(GOOG, venue="paper", symbol="GOOG", limit=count)


def config(name: str = "pm") -> PMConfig:
    book = BookConfig(
        book_id="main", venue="paper", timeframe="1d", symbols=("GOOG",), allocation_usd=10_000.0
    )
    return PMConfig(books=(book,), name=name, result_wait_s=5.0)


class StubVenue:
    """Fill each intent at the latest mark with CloseFill; keep the fake ledger in step."""

    def __init__(self, js: JetStreamContext, topology: Topology, ledger: FakeLedger) -> None:
        self._js = js
        self._topology = topology
        self._ledger = ledger
        self._fill = CloseFill()
        self._subs: list[object] = []
        self.seen: list[str] = []

    async def start(self) -> None:
        self._subs.append(
            await self._js.subscribe(
                self._topology.intents_filter(),
                stream=self._topology.intents_stream,
                ordered_consumer=True,
                deliver_policy=DeliverPolicy.ALL,
                cb=self._on_intent,
            )
        )

    async def stop(self) -> None:
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()  # type: ignore[attr-defined]

    async def _mark(self, venue: str, symbol: str) -> float:
        # The latest stored mark: the feed stores it before the candle behind this intent.
        subject = self._topology.marks_subject(venue, symbol)
        stored = await self._js.get_last_msg(self._topology.marks_stream, subject)
        return decode(stored.data or b"", Mark).price

    async def _on_intent(self, msg: Msg) -> None:
        intent = decode(msg.data, ExecutionIntent)
        self.seen.append(intent.intent_id)
        position = self._ledger.positions[intent.position_id]
        mark = await self._mark(intent.token_chain, intent.token_contract)
        trade, updated = self._fill.fill_at(intent, position, mark, datetime.now(UTC))
        # The fake applies tokens_bought/sold itself: the whole new position is put first
        # and the result carries no tokens, so the view the PM reads is the simulation's.
        self._ledger.put(msgspec.structs.replace(updated, results_seq=position.results_seq))
        result = ExecutionResult(
            result_id=result_id_for(intent.intent_id),
            intent_id=intent.intent_id,
            position_id=intent.position_id,
            venue=intent.token_chain,
            book_id=intent.book_id,
            token_contract=intent.token_contract,
            action=intent.action,
            status=ExecutionStatus.SUCCESS if trade.filled else ExecutionStatus.SKIPPED,
            created_at=datetime.now(UTC),
            filled_size=trade.size,
            avg_price=trade.price if trade.filled else None,
            fees_usd=trade.fee_usd,
            skip_reason=trade.skip_reason,
        )
        await Publisher(self._js, self._topology).result(result)


async def stored_intents(js: JetStreamContext, topology: Topology) -> list[ExecutionIntent]:
    info = await js.stream_info(topology.intents_stream)
    found = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1) if info.state.messages else []:
        msg = await js.get_msg(topology.intents_stream, seq)
        found.append(decode(msg.data or b"", ExecutionIntent))
    return found


async def test_live_pm_publishes_what_the_backtest_decides_across_a_restart(
    nats_url: str, nc: Client, js: JetStreamContext, topology: Topology
) -> None:
    candles = goog(700)
    expected = run_backtest(candles, config()).intents
    assert len(expected) > 10
    ledger = FakeLedger(nc, js, topology)
    venue = StubVenue(js, topology, ledger)
    await ledger.start()
    await venue.start()
    settings = BusSettings.from_env(nats_url, name="pm-test")
    first = PMService(settings, topology, config())
    await first.start()
    stop_first = asyncio.Event()
    running = asyncio.create_task(first.run(stop_first))
    feed = asyncio.create_task(CandleFeed(js, topology, lockstep="pm").run(candles))
    half = len(expected) // 2
    await wait_for(
        lambda: _count(first), until=lambda n: n >= half, timeout_s=120, what="half the intents"
    )
    # Crash: stop fetching at once and drop the connection without draining.
    stop_first.set()
    await running
    assert first._nc is not None
    await first._nc.close()
    second = PMService(settings, topology, config())
    await second.start()
    stop_second = asyncio.Event()
    resumed = asyncio.create_task(second.run(stop_second))
    stats = await asyncio.wait_for(feed, timeout=180)
    stop_second.set()
    await resumed
    await second.stop()
    await venue.stop()
    await ledger.stop()
    assert stats.candles == len(candles)
    stored = await stored_intents(js, topology)
    ids = [i.intent_id for i in stored]
    assert len(ids) == len(set(ids)), "an intent id was stored twice"
    summary = [(i.intent_id, i.action, i.size_frac) for i in stored]
    assert summary == [(i.intent_id, i.action, i.size_frac) for i in expected]
    assert len(first.published) + len(second.published) >= len(expected)
    assert all(ledger.positions[i.position_id] for i in stored)


async def _count(service: PMService) -> int:
    return len(service.published)


async def test_a_fresh_pm_warms_up_on_stored_candles_and_never_trades_them(
    nats_url: str, nc: Client, js: JetStreamContext, topology: Topology
) -> None:
    candles = goog(400)
    await CandleFeed(js, topology).run(candles[:340])
    ledger = FakeLedger(nc, js, topology)
    venue = StubVenue(js, topology, ledger)
    await ledger.start()
    await venue.start()
    service = PMService(BusSettings.from_env(nats_url, name="pm-test"), topology, config())
    await service.start()
    assert service._trackers[("paper", "GOOG", "1d")].count == 340
    stop = asyncio.Event()
    running = asyncio.create_task(service.run(stop))
    await CandleFeed(js, topology, lockstep="pm").run(candles[340:])
    stop.set()
    await running
    await service.stop()
    await venue.stop()
    await ledger.stop()
    assert service._trackers[("paper", "GOOG", "1d")].count == 400
    late = run_backtest(candles, config(), trade_from=candles[340].open_time).intents
    assert late
    assert [i.intent_id for i in service.published] == [i.intent_id for i in late]
