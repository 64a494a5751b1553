"""The demo entry point, the ``venue-sim`` command and the SDK's own WebSocket client."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

from hyperliquid.info import Info
from nats.js import JetStreamContext

from intentbus.bus import Topology
from intentbus.schemas import ActionType, ExecutionStatus, OrderState
from intentbus.testing import wait_for
from intentbus.testing.executor_contract import VenueHarness
from intentbus.testing.fake_ledger import FakeLedger
from intentbus.testing.lifecycle_contract import LifecycleContractSuite
from intentbus.venues.hyperliquid.demo import local_book
from intentbus.venues.hyperliquid.local import LocalVenue

LIFE = LifecycleContractSuite()


async def test_local_book_runs_a_book_against_the_local_venue(
    venue_harness: VenueHarness,
    nats_url: str,
    js: JetStreamContext,
    topology: Topology,
    ledger: FakeLedger,
) -> None:
    async with local_book(nats_url, topology) as book:
        LIFE.open(venue_harness, ledger, "demo-1", 2_000.0)
        iid = await LIFE.publish(
            js, topology, venue_harness, "demo-1", ActionType.ADD, 0.5, urgency="low"
        )
        limit = await LIFE.working(ledger, iid)
        book.set_mid("BTC", limit * 0.999)
        result = await LIFE.result(ledger, iid)
    assert (result.status, result.order_state) == (ExecutionStatus.SUCCESS, OrderState.FILLED)


async def test_the_venue_sim_command_serves_the_sdk() -> None:
    binary = os.path.join(os.path.dirname(sys.executable), "intentbus")
    process = await asyncio.create_subprocess_exec(
        binary, "venue-sim", "hyperliquid", "--port", "0", stdout=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        url = (await asyncio.wait_for(process.stdout.readline(), 20)).decode().strip()
        assert url.startswith("http://127.0.0.1:")
        info = await asyncio.to_thread(Info, url, True)
        assert (await asyncio.to_thread(info.all_mids))["BTC"] == "65000.0"
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 20) == 0


async def test_the_sdks_websocket_client_follows_the_local_venue(local: LocalVenue) -> None:
    info = await asyncio.to_thread(Info, local.sim.url, False)  # with its WebSocket thread
    seen: list[Any] = []
    try:
        info.subscribe({"type": "allMids"}, seen.append)
        info.subscribe({"type": "userFills", "user": local.master}, seen.append)
        info.subscribe({"type": "orderUpdates", "user": local.master}, seen.append)

        async def channels() -> set[str]:
            return {m["channel"] for m in list(seen)}

        await wait_for(channels, until=lambda c: {"allMids", "userFills"} <= c)
        engine = local.sim.engine
        engine.place(
            local.master,
            {
                "a": 0,
                "b": True,
                "p": "66000",
                "s": "0.01",
                "r": False,
                "t": {"limit": {"tif": "Ioc"}},
                "c": "0x" + "2" * 32,
            },
        )
        await wait_for(channels, until=lambda c: "orderUpdates" in c)
        fills = [m for m in list(seen) if m["channel"] == "userFills"]
        await wait_for(
            lambda: _value([m for m in list(seen) if m["channel"] == "userFills"]),
            until=lambda found: len(found) >= 2,
        )
        assert fills[0]["data"]["isSnapshot"] is True
    finally:
        await asyncio.to_thread(info.disconnect_websocket)


async def _value(value: Any) -> Any:
    return value
