"""What users of other systems run into, proven not to happen here (the runtime, real NATS).

- a fill during a WebSocket reconnect is never lost (no replay, no sequence number);
- an order whose answer was lost (5xx, dropped connection) but that was applied is
  found, never sent a second time; one that was not applied is sent once;
- 429 is retried with backoff within a bound;
- two executors signing concurrently with one API wallet never get a nonce error.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from nats.js import JetStreamContext

from intentbus.bus import Topology
from intentbus.executor.base import VenueGap
from intentbus.schemas import ActionType, ExecutionStatus, OrderState
from intentbus.testing import wait_for
from intentbus.testing.executor_contract import ExecutorContractSuite, Recorder, VenueHarness
from intentbus.testing.fake_ledger import FakeLedger
from intentbus.testing.lifecycle_contract import LifecycleContractSuite
from intentbus.venues.hyperliquid.client import VenueError
from intentbus.venues.hyperliquid.local import LocalVenue

SUITE = LifecycleContractSuite()
CONTRACT = ExecutorContractSuite()


def orders_of(local: LocalVenue) -> list[object]:
    """Return every order the venue holds for the master account."""
    return list(local.sim.engine.account(local.master).orders.values())


async def test_a_websocket_drop_during_a_resting_orders_fills_loses_no_fill(
    venue_harness: VenueHarness,
    local: LocalVenue,
    nats_url: str,
    js: JetStreamContext,
    topology: Topology,
    ledger: FakeLedger,
) -> None:
    h = venue_harness
    SUITE.open(h, ledger, "ws-1", 3 * h.depth * h.price / 0.5 * 1.0001)
    async with SUITE.replica(h, nats_url, topology) as running:
        iid = await SUITE.publish(js, topology, h, "ws-1", ActionType.ADD, 0.5, urgency="low")
        limit = await SUITE.working(ledger, iid)
        await h.set_price(h.symbol, limit * 0.999)  # part 1 while connected
        await wait_for(lambda: _value([f for f in ledger.fills if f.intent_id == iid]))
        local.sim.faults.refuse_ws = True
        local.sim.drop_websockets()  # the venue drops every connection...
        for _ in range(2):  # ...and parts 2 and 3 fill while the executor reconnects
            local.set_mid(h.symbol, limit * 1.01)
            local.set_mid(h.symbol, limit * 0.999)
        feed = running.executor._feed  # type: ignore[attr-defined]
        connection = feed.accounts[local.master]
        await wait_for(lambda: _value(connection.reconnects), until=lambda n: n >= 2)
        local.sim.faults.refuse_ws = False
        result = await SUITE.result(ledger, iid)
    fills = [f for f in ledger.fills if f.intent_id == iid]
    assert len(fills) == len({f.fill_id for f in fills}) == 3
    assert (result.status, result.order_state) == (ExecutionStatus.SUCCESS, OrderState.FILLED)
    assert abs(ledger.positions["ws-1"].size - result.filled_size) < 1e-9
    venue_fills = local.sim.engine.account(local.master).fills
    assert sorted(f.venue_fill_id for f in fills) == sorted(str(f["tid"]) for f in venue_fills)


async def _lost_answer(
    fault: str,
    h: VenueHarness,
    local: LocalVenue,
    nats_url: str,
    js: JetStreamContext,
    topology: Topology,
    ledger: FakeLedger,
) -> None:
    SUITE.open(h, ledger, "lost-1", 2_000.0)
    async with SUITE.replica(h, nats_url, topology) as running:
        await running.executor.net_position(local.master, h.symbol)  # started
        setattr(local.sim.faults, fault, 1)
        iid = await SUITE.publish(
            js, topology, h, "lost-1", ActionType.ADD, 1.0, urgency="critical"
        )
        result = await SUITE.result(ledger, iid)
        net = await running.executor.net_position(local.master, h.symbol)
    assert getattr(local.sim.faults, fault) == 0  # the fault was used
    assert (result.status, result.order_state) == (ExecutionStatus.SUCCESS, OrderState.FILLED)
    assert len(orders_of(local)) == 1  # exactly one order...
    assert net == result.filled_size == ledger.positions["lost-1"].size  # ...and one position


async def test_an_order_applied_whose_answer_is_dropped_is_found_not_sent_again(
    venue_harness: VenueHarness,
    local: LocalVenue,
    nats_url: str,
    js: JetStreamContext,
    topology: Topology,
    ledger: FakeLedger,
) -> None:
    await _lost_answer("dropped_after_apply", venue_harness, local, nats_url, js, topology, ledger)


async def test_an_order_applied_whose_answer_is_a_5xx_is_found_not_sent_again(
    venue_harness: VenueHarness,
    local: LocalVenue,
    nats_url: str,
    js: JetStreamContext,
    topology: Topology,
    ledger: FakeLedger,
) -> None:
    await _lost_answer("lost_after_apply", venue_harness, local, nats_url, js, topology, ledger)


async def test_an_order_refused_with_a_5xx_before_it_was_applied_is_sent_once_more(
    venue_harness: VenueHarness,
    local: LocalVenue,
    nats_url: str,
    js: JetStreamContext,
    topology: Topology,
    ledger: FakeLedger,
) -> None:
    await _lost_answer("server_error", venue_harness, local, nats_url, js, topology, ledger)


async def test_429_is_retried_with_backoff(venue_harness: VenueHarness, local: LocalVenue) -> None:
    h = venue_harness
    ex = local.executor()
    await ex.start(None)
    try:
        pos = CONTRACT.position(h, ex)
        plan = CONTRACT.plan(h, ex, pos, ActionType.ADD, 0.1, urgency="low")
        local.sim.faults.http_429 = 3
        order = await ex.place(plan)
        assert order.state is OrderState.WORKING
        assert ex.client.rate_limited == 3
        local.sim.faults.http_429 = 100  # beyond the bound: an error, nothing placed
        other = CONTRACT.plan(h, ex, pos, ActionType.ADD, 0.2, urgency="low")
        with pytest.raises(VenueError, match="gave up"):  # the runtime then asks order_status
            await ex.place(other)
        local.sim.faults.http_429 = 0
        assert len(orders_of(local)) == 1
    finally:
        await ex.stop()


async def test_two_executors_signing_concurrently_never_get_a_nonce_error(
    venue_harness: VenueHarness, local: LocalVenue
) -> None:
    h = venue_harness
    first, second = local.executor(), local.executor()
    for ex in (first, second):
        await ex.start(None)
    try:
        plans = []
        for ex in (first, second):
            for i in range(12):
                pos = CONTRACT.position(h, ex, position_id=f"nonce-{id(ex)}-{i}")
                plans.append((ex, CONTRACT.plan(h, ex, pos, ActionType.ADD, 0.01, urgency="low")))
        orders = await asyncio.gather(*(ex.place(plan) for ex, plan in plans))
        assert [o.reason for o in orders if o.state is not OrderState.WORKING] == []
        assert len(orders_of(local)) == len(plans)
        cancels = await asyncio.gather(
            *(ex.cancel(p.account, p.symbol, p.client_order_id) for ex, p in plans)
        )
        assert {o.state for o in cancels} == {OrderState.CANCELLED}
    finally:
        for ex in (first, second):
            await ex.stop()


async def _value(value: Any) -> Any:
    return value


async def test_a_send_that_reaches_the_venue_after_its_deadline_is_refused_and_fenced(
    venue_harness: VenueHarness, local: LocalVenue
) -> None:
    """The fence across replicas: an order action expires with its intent at the venue."""
    h = venue_harness
    stalled, other = local.executor(), local.executor()
    for ex in (stalled, other):
        await ex.start(None)
    try:
        pos = CONTRACT.position(h, stalled)
        plan = CONTRACT.plan(h, stalled, pos, ActionType.ADD, 0.2, urgency="critical")
        soon = datetime.now(UTC) + timedelta(milliseconds=300)
        plan = msgspec.structs.replace(plan, valid_until=soon)
        await stalled.net_position(plan.account, h.symbol)  # leverage and caches warm
        local.sim.faults.latency_s = 0.6  # the stalled replica's order arrives too late
        order = await stalled.place(plan)
        local.sim.faults.latency_s = 0.0
        assert order.state is OrderState.REJECTED
        assert order.reason.startswith("Action expired")
        assert await other.fence(plan.account, h.symbol, plan.client_order_id) is None
        assert orders_of(local) == []
        assert await other.net_position(plan.account, h.symbol) == 0
    finally:
        for ex in (stalled, other):
            await ex.stop()


async def test_fills_that_name_only_the_oid_reach_the_ledger_under_their_cloid(
    venue_harness: VenueHarness,
    local: LocalVenue,
    nats_url: str,
    js: JetStreamContext,
    topology: Topology,
    ledger: FakeLedger,
) -> None:
    h = venue_harness
    local.sim.engine.settings.cloid_on_fills = False  # as on older venue fills
    SUITE.open(h, ledger, "oid-1", 2 * h.depth * h.price / 0.5 * 1.0001)
    async with SUITE.replica(h, nats_url, topology) as running:
        iid = await SUITE.publish(js, topology, h, "oid-1", ActionType.ADD, 0.5, urgency="low")
        limit = await SUITE.working(ledger, iid)
        await h.set_price(h.symbol, limit * 0.999)  # part 1, live
        await wait_for(lambda: _value([f for f in ledger.fills if f.intent_id == iid]))
        await h.drop_feed(running.executor)
        await h.set_price(h.symbol, limit * 1.01)
        await h.set_price(h.symbol, limit * 0.999)  # part 2, found after the gap
        await h.restore_feed(running.executor)
        result = await SUITE.result(ledger, iid)
    assert all("cloid" not in f for f in local.sim.engine.account(local.master).fills)
    assert (result.status, result.fill_count) == (ExecutionStatus.SUCCESS, 2)
    assert abs(ledger.positions["oid-1"].size - result.filled_size) < 1e-9


async def test_a_nonce_another_process_used_is_signed_again_not_reported_as_a_failure(
    venue_harness: VenueHarness, local: LocalVenue
) -> None:
    """Replicas in two processes sharing one API wallet may pick the same millisecond."""
    h = venue_harness
    ex = local.executor()
    await ex.start(None)
    try:
        plan = CONTRACT.plan(h, ex, CONTRACT.position(h, ex), ActionType.ADD, 0.1, urgency="low")
        local.sim.faults.nonce_taken = 2  # the leverage update's nonce and the order's
        order = await ex.place(plan)
        assert order.state is OrderState.WORKING
        assert ex.client.nonce_clashes == 2
        assert len(orders_of(local)) == 1
    finally:
        await ex.stop()


async def test_every_resubscription_is_followed_by_a_gap(local: LocalVenue) -> None:
    ex = local.executor()
    seen = Recorder()
    ex.set_event_sink(seen)
    await ex.start(None)
    try:

        async def gaps() -> int:
            return len([e for e in seen.events if isinstance(e, VenueGap)])

        assert await gaps() == 1  # subscribed at start: ask about anything before
        for wanted in (2, 3):
            local.sim.drop_websockets()  # the venue drops the connection: no replay
            await wait_for(gaps, until=wanted.__le__, what=f"gap {wanted}")
    finally:
        await ex.stop()
