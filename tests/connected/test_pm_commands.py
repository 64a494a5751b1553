"""``intentbus pm`` and ``intentbus feed`` as processes, started by the demo hook.

The ledger is the shared fake and the venue the fill stub of test_pm_service, in this
process; the PM and the feed are real child processes on the session's nats-server.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from intentbus.bus import Topology
from intentbus.cli.processes import ServiceProcesses
from intentbus.pm.backtest import run_backtest
from intentbus.pm.config import PMConfig
from intentbus.pm.demo import demo_commands, write_demo_config
from intentbus.pm.series import synthetic_candles
from intentbus.testing import wait_for
from intentbus.testing.fake_ledger import FakeLedger
from tests.connected.test_pm_service import StubVenue, stored_intents

pytestmark = pytest.mark.timeout(180)


async def test_demo_feed_and_pm_processes_publish_the_backtests_intents(
    nats_url: str, nc: Client, js: JetStreamContext, topology: Topology, tmp_path: Path
) -> None:
    config = write_demo_config(tmp_path / "pm.toml")
    expected = run_backtest(list(synthetic_candles(600, seed=7)), PMConfig.load(config)).intents
    assert len(expected) == 11
    ledger = FakeLedger(nc, js, topology)
    venue = StubVenue(js, topology, ledger)
    await ledger.start()
    await venue.start()
    common = ["--nats-url", nats_url, "--namespace", topology.namespace]
    with ServiceProcesses(tmp_path) as processes:
        for name, args in demo_commands(config, common):
            processes.start(name, *args)

        async def feed_done() -> bool:
            return "feed" in processes.failed()

        await wait_for(feed_done, timeout_s=150, interval_s=0.2, what="the feed to finish")
        assert "600 candles published" in processes.log_tail("feed"), processes.log_tail("feed")
        assert processes.failed() == ["feed"], processes.log_tail("pm")
        codes = processes.stop_all()
    assert codes == {"pm": 0, "feed": 0}
    await venue.stop()
    await ledger.stop()
    stored = await stored_intents(js, topology)
    assert [(i.intent_id, i.action, i.size_frac) for i in stored] == [
        (i.intent_id, i.action, i.size_frac) for i in expected
    ]
    assert set(venue.seen) == {i.intent_id for i in expected}
