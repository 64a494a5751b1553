"""Feed, PM, paper venue, paper executor and ledger as processes over 2,000 real candles.

The PM is SIGKILLed mid-run and started again. Checks: every published intent has a
final result, no intent id is stored twice, the intents and their fills are the
backtest's of the same file, and the ledger equals the paper venue's account.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from intentbus.bus import LedgerUnavailable, PositionClient
from intentbus.pm.backtest import run_backtest
from intentbus.pm.config import PMConfig
from intentbus.pm.sources import read_ohlcv
from intentbus.schemas import ExecutionIntent, ExecutionResult, ExecutionStatus, Fill, decode
from intentbus.testing import wait_for
from intentbus.testing.system import ProcessSystem as System
from intentbus.venues.paper.client import PaperVenueClient
from intentbus.venues.paper.protocol import PaperSubjects

pytestmark = pytest.mark.timeout(600)
GOOG = Path(__import__("backtesting.test").test.__file__).parent / "GOOG.csv"
CANDLES = 2000
PM_CONFIG = """\
[pm]
name = "pm"
result_wait_s = 30

[books.main]
venue = "paper"
timeframe = "1d"
symbols = ["GOOG"]
allocation_usd = 10000
max_open_positions = 1
deadline_bars = 0.0005
"""


async def _stored(js: JetStreamContext, stream: str) -> list[bytes]:
    info = await js.stream_info(stream)
    if not info.state.messages:
        return []
    found = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        found.append((await js.get_msg(stream, seq)).data or b"")
    return found


async def _ledger_ready(client: PositionClient) -> bool:
    try:
        await client.list()
    except LedgerUnavailable:
        return False
    return True


async def test_pm_system_over_real_candles_with_a_pm_crash(
    system: System, nc: Client, js: JetStreamContext, tmp_path: Path
) -> None:
    config_path = tmp_path / "pm.toml"
    config_path.write_text(PM_CONFIG)
    candles = read_ohlcv(GOOG, venue="paper", symbol="GOOG", limit=CANDLES)
    expected = run_backtest(candles, PMConfig.load(config_path))
    assert len(expected.intents) > 40
    topology = system.topology
    system.start_ledger()
    system.start_paper_venue(prices=f"GOOG:{candles[0].close}")
    system.start_paper_executor()
    client = PositionClient(nc, topology, timeout_s=1.0)
    await wait_for(lambda: _ledger_ready(client), timeout_s=60, what="the ledger to answer")
    pm_args = ["pm", "--config", str(config_path), *system.common]
    system.processes.start("pm", *pm_args)
    feed_args = ["feed", "--file", str(GOOG), "--symbol", "GOOG", "--limit", str(CANDLES)]
    system.processes.start("feed", *feed_args, "--lockstep", "pm", *system.common)

    async def intents_stored() -> int:
        return len(await _stored(js, topology.intents_stream))

    half = len(expected.intents) // 2
    await wait_for(intents_stored, until=lambda n: n >= half, timeout_s=240, interval_s=0.2)
    system.processes.kill("pm")
    system.processes.start("pm-again", *pm_args)

    async def feed_finished() -> bool:
        return "feed" in system.processes.failed()

    await wait_for(feed_finished, timeout_s=300, interval_s=0.5, what="the feed to finish")
    assert "2000 candles published" in system.processes.log_tail("feed")
    assert system.processes.failed() == ["feed"], system.processes.log_tail("pm-again")

    intents = [decode(raw, ExecutionIntent) for raw in await _stored(js, topology.intents_stream)]
    ids = [i.intent_id for i in intents]
    assert len(ids) == len(set(ids)), "an intent id was stored twice"
    assert [(i.intent_id, i.action, i.size_frac) for i in intents] == [
        (i.intent_id, i.action, i.size_frac) for i in expected.intents
    ]
    results = {
        r.intent_id: r
        for raw in await _stored(js, topology.results_stream)
        if b'"intentbus.result.' in raw
        for r in [decode(raw, ExecutionResult)]
    }
    assert set(ids) <= set(results), "an intent has no final result"
    closes = {c.close_time: (prev.close, c.close) for prev, c in pairwise(candles)}
    different = []
    for trade in expected.trades:
        result = results[trade.intent_id]
        status = ExecutionStatus.SUCCESS if trade.filled else ExecutionStatus.SKIPPED
        got = (result.status, result.filled_size, result.avg_price or 0.0)
        want = (status, trade.size, trade.price)
        if got[0] is not want[0] or got[1:] != pytest.approx(want[1:], rel=1e-9):
            different.append((trade.intent_id, trade.action, trade.size, trade.price, got,
                              closes.get(trade.at)))  # fmt: skip
    if different:  # say what the venue did with them
        wanted = {d[0] for d in different}
        fills = [decode(raw, Fill) for raw in await _stored(js, topology.fills_stream)]
        done = [(f.intent_id, f.size, f.price, f.liquidity.value) for f in fills]
        raise AssertionError(
            f"fills differ from the backtest: {different}; "
            f"their fills: {[f for f in done if f[0] in wanted]}"
        )

    venue = PaperVenueClient(nc, PaperSubjects(topology, "paper"), 5.0)
    [account] = [a for a in await venue.accounts() if a.book_id == "main"]
    size, _entry, realized = account.positions.get("GOOG", (0.0, 0.0, 0.0))
    positions = [p for p in (await client.list(venue="paper", book_id="main")).positions]
    assert sum(p.size for p in positions if not p.closed) == pytest.approx(size, abs=1e-9)
    assert sum(p.realized_pnl_usd for p in positions) == pytest.approx(realized, abs=1e-6)
    assert sum(p.fees_usd for p in positions) == pytest.approx(account.fees_usd, abs=1e-6)
    assert system.processes.stop("pm-again") == 0, system.processes.log_tail("pm-again")
