"""``replay --mode shadow``: the same intents on a throwaway paper venue and ledger."""

from __future__ import annotations

from pathlib import Path

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from intentbus.bus import PositionClient, Publisher, Topology
from intentbus.cli.reader import Selection
from intentbus.cli.shadow import run_shadow
from intentbus.schemas import ExecutionStatus, OpenPosition
from intentbus.venues.paper import PaperConfig
from tests.connected.executor.conftest import PRICES, Runtimes, Venue
from tests.connected.executor.test_runtime import intent, results
from tests.connected.test_ledger_service import running_ledger

CONFIG = PaperConfig(
    prices=PRICES, slippage_bps=0.0, depths={"BTC": 0.5}, lot_size=0.01, heartbeat_s=0.2
)


async def test_a_shadow_replay_has_the_pnl_of_a_direct_paper_run(
    nats_url: str,
    nc: Client,
    js: JetStreamContext,
    topology: Topology,
    venue: Venue,
    runtimes: Runtimes,
    tmp_path: Path,
) -> None:
    async with running_ledger(nats_url, topology, tmp_path / "live.sqlite3"):
        live = PositionClient(nc, topology)
        for pid, symbol in (("p1", "BTC"), ("p2", "ETH")):
            await live.open(
                OpenPosition(
                    position_id=pid,
                    venue="paper",
                    book_id="main",
                    token_contract=symbol,
                    allocation_usd=1_000.0,
                )
            )
        publisher = Publisher(js, topology)
        steps = [
            (None, intent("p1", frac=0.5, urgency="high")),
            (None, intent("p2", frac=0.5, urgency="high", token_contract="ETH")),
            (("BTC", 110.0), intent("p1", "trim", 0.5, urgency="high")),
            (("ETH", 18.0), intent("p2", "exit", 1.0, urgency="critical", token_contract="ETH")),
            (("BTC", 95.0), intent("p1", "exit", 1.0, urgency="critical")),
        ]
        async with runtimes():
            for n, (mark, one) in enumerate(steps, start=1):
                if mark is not None:
                    await venue.mark(*mark)
                await publisher.intent(one)
                await results(js, topology, n)  # one at a time: the market moves between
        direct = {pid: await live.get(pid) for pid in ("p1", "p2")}
        report = await run_shadow(
            nc, js, topology, Selection(venue="paper"), nats_url=nats_url, config=CONFIG
        )
    assert report.statuses == {ExecutionStatus.SUCCESS.value: 5}
    for pid, position in direct.items():
        assert position is not None
        shadow = report.shadow[pid]
        assert shadow.realized_pnl_usd == pytest.approx(position.realized_pnl_usd, abs=1e-9)
        assert shadow.fees_usd == pytest.approx(position.fees_usd, abs=1e-9)
        assert shadow.size == position.size == 0
    assert direct["p1"] is not None
    assert direct["p1"].realized_pnl_usd != 0
    assert report.shadow_pnl == pytest.approx(report.live_pnl, abs=1e-9)
    names = [i.config.name for i in await js.streams_info()]
    assert not [n for n in names if n and n.startswith("SHADOW")]  # the namespace is gone
