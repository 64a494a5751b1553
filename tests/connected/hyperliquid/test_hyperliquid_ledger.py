"""The real ledger follows a Hyperliquid book: its realized PnL is the venue's ``closedPnl``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from nats.js import JetStreamContext

from intentbus.bus import Topology
from intentbus.ledger.opening import open_position
from intentbus.ledger.storage import LedgerStore
from intentbus.ledger.stores import store_for
from intentbus.schemas import ActionType, Direction, ExecutionStatus, OpenPosition, fill_id_for
from intentbus.testing import wait_for
from intentbus.testing.executor_contract import VenueHarness
from intentbus.testing.lifecycle_contract import LifecycleContractSuite
from intentbus.venues.hyperliquid.local import LocalVenue
from tests.connected.test_ledger_service import running_ledger

SUITE = LifecycleContractSuite()


async def test_the_ledgers_realized_pnl_is_the_venues_closed_pnl_on_every_closing_fill(
    venue_harness: VenueHarness,
    local: LocalVenue,
    nats_url: str,
    js: JetStreamContext,
    topology: Topology,
    ledger_db: str,
) -> None:
    h = venue_harness
    db = ledger_db
    store = store_for(db)
    await store.open()
    await open_position(
        store,
        OpenPosition(
            position_id="pnl-1",
            venue="hyperliquid",
            book_id="main",
            token_contract="BTC",
            direction=Direction.LONG,
            allocation_usd=3_000.0,
        ),
    )
    await store.close()
    steps = [
        (65_000.0, ActionType.ADD, 0.5, "critical"),  # a taker buy
        (64_000.0, ActionType.ADD, 0.5, "low"),  # a resting buy, filled by the next move
        (63_900.0, None, 0.0, ""),
        (66_500.0, ActionType.TRIM, 0.4, "critical"),  # closes part at a gain
        (62_000.0, ActionType.EXIT, 1.0, "critical"),  # closes the rest at a loss
    ]
    account = local.sim.engine.account(local.master)
    async with running_ledger(nats_url, topology, db), SUITE.replica(h, nats_url, topology):
        for price, action, frac, urgency in steps:
            await h.set_price("BTC", price)
            if action is None:
                continue
            iid = await SUITE.publish(js, topology, h, "pnl-1", action, frac, urgency=urgency)
            if urgency == "low":  # rests; the next price move fills it
                await wait_for(lambda: _value(account.open_orders()), what="a resting order")
                continue
            await _result(db, iid)
        await wait_for(lambda: _flat(db), what="the position closed in the ledger")
    venue_fills = local.sim.engine.account(local.master).fills
    closing = [f for f in venue_fills if f["dir"].startswith("Close")]
    assert len(closing) >= 2
    reader = store_for(db, read_only=True)
    await reader.open()
    try:
        for row in venue_fills:
            record = await reader.fill(fill_id_for("hyperliquid", str(row["tid"])))
            assert record is not None, row
            # equal to the venue's precision: closedPnl is USDC with 6 decimals
            assert abs(record.realized_pnl_usd - Decimal(row["closedPnl"])) <= Decimal("1e-6")
        total = sum(Decimal(f["closedPnl"]) for f in venue_fills)
        state = await reader.get("pnl-1")
        assert state is not None
        assert abs(state.realized_pnl_usd - total) <= Decimal("1e-6")
        assert state.size == 0
    finally:
        await reader.close()


async def _value(value: Any) -> Any:
    return value


async def _result(db: str, intent_id: str) -> None:
    async def summarized(reader: LedgerStore) -> bool:
        found = await reader.summary(f"res-{intent_id}")
        return found is not None and found.status in {s.value for s in ExecutionStatus}

    await wait_for(lambda: _reading(db, summarized), timeout_s=20.0, what=f"result of {intent_id}")


async def _flat(db: str) -> bool:
    async def flat(reader: LedgerStore) -> bool:
        state = await reader.get("pnl-1")
        return state is not None and state.size == 0 and state.fills_applied >= 4

    return await _reading(db, flat)


async def _reading(db: str, check: Callable[[LedgerStore], Awaitable[bool]]) -> bool:
    reader = store_for(db, read_only=True)
    await reader.open()
    try:
        return await check(reader)
    finally:
        await reader.close()
