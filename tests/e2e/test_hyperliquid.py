"""Hyperliquid end to end: the ledger and ``intentbus executor --venue hyperliquid`` as
processes, against the local venue over real HTTP/WebSocket, the official SDK signing.

A resting ADD fills in three parts as the market moves through it, a TRIM and an EXIT
close it; the ledger follows every fill, and its realized PnL is the venue's closedPnl.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from nats.aio.client import Client

from intentbus.bus import PositionClient, Publisher
from intentbus.schemas import (
    ActionType,
    ExecutionStatus,
    OpenPosition,
    OrderState,
    build_intent,
)
from intentbus.testing import wait_for
from intentbus.testing.system import ProcessSystem
from intentbus.venues.hyperliquid.local import LocalVenue
from tests.e2e.test_lifecycle import position, resting, result

pytestmark = pytest.mark.timeout(120)


@pytest_asyncio.fixture
async def venue() -> AsyncIterator[LocalVenue]:
    """The local venue in this process; 0.01 BTC of depth per mid update."""
    local = await LocalVenue.start(mids={"BTC": 65_000.0}, depths={"BTC": 0.01})
    yield local
    await local.stop()


async def publish(nc: Client, system: ProcessSystem, action: ActionType, **kw: object) -> str:
    one = build_intent(
        action=action,
        position_id="hl-1",
        token_contract="BTC",
        token_chain="hyperliquid",
        book_id="main",
        **kw,  # type: ignore[arg-type]
    )
    await Publisher(nc.jetstream(), system.topology).intent(one)
    return one.intent_id


async def test_a_book_on_hyperliquid_over_processes(
    system: ProcessSystem, venue: LocalVenue, nc: Client
) -> None:
    system.start_ledger()
    options = {
        "base_url": venue.sim.url,
        "account": venue.master,
        "key_file": str(venue.agent_key_file),
        "default_leverage": "2",
    }
    flags = [flag for key, value in options.items() for flag in ("--option", f"{key}={value}")]
    system.processes.start("executor", "executor", "--venue", "hyperliquid", *flags, *system.common)
    client = PositionClient(nc, system.topology, timeout_s=1.0)
    await wait_for(lambda: _answers(client), timeout_s=30, what="the ledger")
    await client.open(
        OpenPosition(
            position_id="hl-1",
            venue="hyperliquid",
            book_id="main",
            token_contract="BTC",
            allocation_usd=3_900.0,  # ADD 0.5 at 65,000: 0.03 BTC, three parts of 0.01
        )
    )
    add = await publish(nc, system, ActionType.ADD, size_frac=0.5, urgency="low")
    limit = await resting(nc, system, add)
    for _ in range(3):
        venue.set_mid("BTC", limit * 0.999)
        venue.set_mid("BTC", limit * 1.01)
    added = await result(nc, system, add)
    assert (added.status, added.order_state, added.fill_count) == (
        ExecutionStatus.SUCCESS,
        OrderState.FILLED,
        3,
    )
    venue.set_mid("BTC", 67_000.0)
    trim = await publish(nc, system, ActionType.TRIM, size_frac=0.5, urgency="critical")
    assert (await result(nc, system, trim)).status is ExecutionStatus.SUCCESS
    venue.set_mid("BTC", 64_000.0)
    exit_id = await publish(nc, system, ActionType.EXIT, size_frac=1.0, urgency="critical")
    assert (await result(nc, system, exit_id)).status is ExecutionStatus.SUCCESS
    closed = await position(client, "hl-1", until=lambda p: p is not None and p.size == 0)
    venue_fills = venue.sim.engine.account(venue.master).fills
    assert closed.fills_applied == len(venue_fills) == 5
    venue_pnl = sum(float(f["closedPnl"]) for f in venue_fills)
    assert abs(closed.realized_pnl_usd - venue_pnl) < 1e-5
    assert abs(closed.fees_usd - sum(float(f["fee"]) for f in venue_fills)) < 1e-5
    assert venue.sim.engine.account(venue.master).position("BTC").szi == 0
    assert system.processes.failed() == []


async def _answers(client: PositionClient) -> bool:
    try:
        await client.list()
    except Exception:
        return False
    return True
