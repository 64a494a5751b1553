"""``intentbus explain``: one intent's plan, order updates, fills, result and ledger."""

from __future__ import annotations

import asyncio

from nats.aio.client import Client
from nats.js import JetStreamContext
from typer.testing import CliRunner

from intentbus.bus import Publisher, Topology
from intentbus.cli.reader import Selection
from intentbus.cli.story import find_story
from intentbus.command.app import build_app
from intentbus.schemas import OrderState
from intentbus.testing import wait_for
from intentbus.testing.executor_harness import read_updates
from intentbus.testing.fake_ledger import FakeLedger
from tests.connected.executor.conftest import Runtimes, Venue
from tests.connected.executor.test_runtime import intent, results


async def test_explain_tells_the_whole_story_of_a_resting_order_filled_in_parts(
    nats_url: str,
    nc: Client,
    js: JetStreamContext,
    topology: Topology,
    venue: Venue,
    ledger: FakeLedger,
    runtimes: Runtimes,
) -> None:
    ledger.open("p1", allocation_usd=100.0)  # 1 BTC: two marks of 0.5 depth
    ledger.open("p2", allocation_usd=100.0, token_contract="ETH")
    other = intent("p2", urgency="high", token_contract="ETH")
    rest = intent("p1", frac=1.0, urgency="low")
    publisher = Publisher(js, topology)
    async with runtimes():
        await publisher.intent(other)
        await publisher.intent(rest)
        updates = await wait_for(
            lambda: read_updates(js, topology), until=lambda u: len(u) >= 1, what="resting"
        )
        price = updates[0].price
        assert price is not None
        await venue.mark("BTC", price * 0.999)
        await venue.mark("BTC", price * 0.998)
        await results(js, topology, 2)
    story = await find_story(nc, js, topology, rest.intent_id, Selection())
    assert story is not None
    assert story.intent == rest
    assert [u.order_state for u in story.updates] == [OrderState.WORKING]
    assert [f.size for f in story.fills] == [0.5, 0.5]
    assert story.result is not None
    assert story.result.plan is not None
    assert story.result.plan.size == 1.0
    assert story.size_change == 1.0
    assert story.position is not None
    assert story.position.size == 1.0

    args = ["explain", rest.intent_id, "--nats-url", nats_url, "--namespace", topology.namespace]
    out = await asyncio.to_thread(lambda: CliRunner().invoke(build_app(), args).output)
    for section in ("1. The intent", "2. The plan", "3. Order updates", "4. Fills (2)",
                    "5. Final result", "6. Ledger change: +1 BTC"):  # fmt: skip
        assert section in out, out
    missing = ["explain", "nope", "--nats-url", nats_url, "--namespace", topology.namespace]
    result = await asyncio.to_thread(lambda: CliRunner().invoke(build_app(), missing))
    assert result.exit_code == 2
