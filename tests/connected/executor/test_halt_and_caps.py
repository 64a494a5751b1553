"""The halt switch and the risk caps in a running executor (paper venue, fake ledger)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from nats.aio.client import Client
from nats.js import JetStreamContext

from intentbus.bus import HaltStore, Publisher, Topology
from intentbus.bus.control import HaltView
from intentbus.executor.base import VenueContext
from intentbus.executor.guards import RiskCaps, RiskLimits
from intentbus.schemas import (
    ExecutionStatus,
    HaltMode,
    HaltSwitch,
    OrderState,
    SkipReason,
)
from intentbus.testing import wait_for
from intentbus.testing.executor_harness import read_updates
from intentbus.testing.fake_ledger import FakeLedger
from intentbus.venues.paper import PaperExecutor, PaperExecutorOptions
from tests.connected.executor.conftest import Runtimes, Venue
from tests.connected.executor.test_recovery import claimed
from tests.connected.executor.test_runtime import intent, results


def switch(mode: HaltMode, venue: str = "", book: str = "", reason: str = "test") -> HaltSwitch:
    """Return a switch set now by the tests."""
    return HaltSwitch(
        mode=mode, reason=reason, set_by="tests", set_at=datetime.now(UTC), venue=venue, book=book
    )


async def test_in_reducing_an_add_is_skipped_naming_the_switch_and_an_exit_executes(
    js: JetStreamContext, topology: Topology, venue: Venue, ledger: FakeLedger, runtimes: Runtimes
) -> None:
    ledger.open("p1", allocation_usd=1_000.0)
    publisher = Publisher(js, topology)
    halt = await HaltStore.open(js, topology)
    async with runtimes() as running:
        await publisher.intent(intent("p1", urgency="high"))
        (first,) = await results(js, topology, 1)
        assert first.status is ExecutionStatus.SUCCESS

        await halt.set(switch(HaltMode.REDUCING, venue="paper", reason="vol spike"))
        view = running.runtime.halt
        started = time.monotonic()
        await wait_for(
            lambda: _mode(view, "paper", "main"),
            until=lambda m: m is HaltMode.REDUCING,
            timeout_s=1.0,
            what="the switch at the running executor within one second",
        )
        assert time.monotonic() - started < 1.0

        add, exit_ = intent("p1", urgency="high"), intent("p1", "exit", 1.0, urgency="high")
        await publisher.intent(add)
        await publisher.intent(exit_)
        _, skipped, exited = await results(js, topology, 3)
    assert (skipped.intent_id, skipped.skip_reason) == (add.intent_id, SkipReason.HALT_SWITCH)
    detail = str(skipped.metadata["detail"])
    assert "halt switch venue paper is reducing: 'vol spike' (set by tests" in detail
    assert (exited.intent_id, exited.status) == (exit_.intent_id, ExecutionStatus.SUCCESS)
    assert venue.net("main", "BTC") == 0
    assert running.runtime.stats.refused == {SkipReason.HALT_SWITCH.value: 1}


async def _mode(view: HaltView, venue: str, book: str) -> HaltMode:
    found = view.effective(venue, book)
    return HaltMode.ACTIVE if found is None else found.mode


async def test_halted_lets_only_an_emergency_exit_through_and_only_on_its_book(
    js: JetStreamContext, topology: Topology, venue: Venue, ledger: FakeLedger, runtimes: Runtimes
) -> None:
    ledger.open("p1", allocation_usd=1_000.0, size=5.0)
    ledger.open("p2", book_id="other", allocation_usd=1_000.0)
    halt = await HaltStore.open(js, topology)
    await halt.set(switch(HaltMode.HALTED, book="main"))
    publisher = Publisher(js, topology)
    sent = [
        intent("p1", urgency="high"),
        intent("p1", "trim", 0.5, urgency="high"),
        intent("p1", "exit", 1.0, urgency="high"),
        intent("p2", book_id="other", urgency="high"),
    ]
    async with runtimes():
        for one in sent:
            await publisher.intent(one)
        found = {r.intent_id: r for r in await results(js, topology, 4)}
    assert [found[i.intent_id].skip_reason for i in sent[:3]] == [SkipReason.HALT_SWITCH] * 3
    assert found[sent[3].intent_id].status is ExecutionStatus.SUCCESS  # book other: active
    assert venue.orders("main") == []


async def test_an_emergency_exit_executes_while_halted(
    js: JetStreamContext, topology: Topology, venue: Venue, ledger: FakeLedger, runtimes: Runtimes
) -> None:
    ledger.open("p1", allocation_usd=1_000.0)
    halt = await HaltStore.open(js, topology)
    publisher = Publisher(js, topology)
    async with runtimes():
        await publisher.intent(intent("p1", urgency="high"))
        await results(js, topology, 1)
        await halt.set(switch(HaltMode.HALTED))
        await wait_for(lambda: _halt_seen(js, topology), what="switch written")
        add = intent("p1", urgency="high")
        emergency = intent("p1", "emergency_exit", 1.0)
        await publisher.intent(add)
        await publisher.intent(emergency)
        _, skipped, exited = await results(js, topology, 3)
    assert skipped.skip_reason == SkipReason.HALT_SWITCH
    assert exited.status is ExecutionStatus.SUCCESS
    assert venue.net("main", "BTC") == 0


async def _halt_seen(js: JetStreamContext, topology: Topology) -> bool:
    return bool(await (await HaltStore.open(js, topology)).load())


async def test_a_switch_change_cancels_the_working_orders_it_forbids(
    js: JetStreamContext, topology: Topology, venue: Venue, ledger: FakeLedger, runtimes: Runtimes
) -> None:
    ledger.open("p1", allocation_usd=40.0)
    halt = await HaltStore.open(js, topology)
    async with runtimes() as running:
        rest = intent("p1", urgency="low")  # rests below the market
        await Publisher(js, topology).intent(rest)
        await wait_for(lambda: read_updates(js, topology), what="the order resting")
        await halt.set(switch(HaltMode.REDUCING, reason="drawdown"))
        (result,) = await results(js, topology, 1)
    assert (result.intent_id, result.order_state) == (rest.intent_id, OrderState.CANCELLED)
    assert result.status is ExecutionStatus.CANCELLED
    assert running.runtime.stats.halt_cancels == 1


async def test_resume_lets_adds_through_again(
    js: JetStreamContext, topology: Topology, venue: Venue, ledger: FakeLedger, runtimes: Runtimes
) -> None:
    ledger.open("p1", allocation_usd=1_000.0)
    halt = await HaltStore.open(js, topology)
    await halt.set(switch(HaltMode.HALTED))
    await halt.set(switch(HaltMode.ACTIVE, reason="all clear"))
    async with runtimes():
        await Publisher(js, topology).intent(intent("p1", urgency="high"))
        (result,) = await results(js, topology, 1)
    assert result.status is ExecutionStatus.SUCCESS


async def test_max_intent_notional_skips_a_larger_add_and_counts_it(
    js: JetStreamContext, topology: Topology, venue: Venue, ledger: FakeLedger, runtimes: Runtimes
) -> None:
    ledger.open("p1", allocation_usd=1_000.0)
    caps = RiskCaps(venue=RiskLimits(max_intent_notional_usd=300.0))
    publisher = Publisher(js, topology)
    async with runtimes(caps=caps) as running:
        big, small = intent("p1", frac=0.5, urgency="high"), intent("p1", frac=0.2, urgency="high")
        await publisher.intent(big)
        await publisher.intent(small)
        first, second = await results(js, topology, 2)
    assert (first.intent_id, first.skip_reason) == (big.intent_id, SkipReason.RISK_INTENT_NOTIONAL)
    assert (second.intent_id, second.status) == (small.intent_id, ExecutionStatus.SUCCESS)
    assert running.runtime.stats.refused == {SkipReason.RISK_INTENT_NOTIONAL.value: 1}


async def test_max_position_notional_skips_the_add_that_would_exceed_it(
    js: JetStreamContext, topology: Topology, venue: Venue, ledger: FakeLedger, runtimes: Runtimes
) -> None:
    ledger.open("p1", allocation_usd=1_000.0)
    ledger.open("p2", book_id="free", allocation_usd=1_000.0)
    # the venue's limit is $700; book "free" overrides it
    caps = RiskCaps(
        venue=RiskLimits(max_position_notional_usd=700.0),
        books={"free": RiskLimits(max_position_notional_usd=5_000.0)},
    )
    publisher = Publisher(js, topology)
    async with runtimes(caps=caps) as running:
        sent = [
            intent("p1", frac=0.4, urgency="high"),  # $400: fine
            intent("p1", frac=0.4, urgency="high"),  # $400 + $400 > $700
            intent("p1", "trim", 0.5, urgency="high"),  # reductions are never capped
            intent("p2", book_id="free", frac=0.8, urgency="high"),
        ]
        for one in sent:
            await publisher.intent(one)
        found = {r.intent_id: r for r in await results(js, topology, 4)}
    assert found[sent[0].intent_id].status is ExecutionStatus.SUCCESS
    assert found[sent[1].intent_id].skip_reason == SkipReason.RISK_POSITION_NOTIONAL
    assert found[sent[2].intent_id].status is ExecutionStatus.SUCCESS
    assert found[sent[3].intent_id].status is ExecutionStatus.SUCCESS
    assert running.runtime.stats.refused == {SkipReason.RISK_POSITION_NOTIONAL.value: 1}


async def test_max_intents_per_minute_skips_the_excess_but_never_an_emergency_exit(
    js: JetStreamContext, topology: Topology, venue: Venue, ledger: FakeLedger, runtimes: Runtimes
) -> None:
    ledger.open("p1", allocation_usd=1_000.0)
    caps = RiskCaps.parse(["main:max_intents_per_minute=2"])
    publisher = Publisher(js, topology)
    async with runtimes(caps=caps) as running:
        sent = [
            intent("p1", frac=0.1, urgency="high"),
            intent("p1", frac=0.1, urgency="high"),
            intent("p1", frac=0.1, urgency="high"),
            intent("p1", "emergency_exit", 1.0),
        ]
        for one in sent:
            await publisher.intent(one)
        found = await results(js, topology, 4)
    assert [r.intent_id for r in found] == [i.intent_id for i in sent]
    assert [r.status for r in found] == [
        ExecutionStatus.SUCCESS,
        ExecutionStatus.SUCCESS,
        ExecutionStatus.SKIPPED,
        ExecutionStatus.SUCCESS,
    ]
    assert found[2].skip_reason == SkipReason.RISK_INTENT_RATE
    assert running.runtime.stats.refused == {SkipReason.RISK_INTENT_RATE.value: 1}
    assert venue.net("main", "BTC") == 0


async def test_a_claimed_unsent_add_resumed_under_a_halt_is_fenced_and_skipped(
    js: JetStreamContext,
    topology: Topology,
    venue: Venue,
    ledger: FakeLedger,
    nc: Client,
    runtimes: Runtimes,
) -> None:
    ledger.open("p1", allocation_usd=1_000.0)
    one = intent("p1", urgency="high")
    paper = PaperExecutor(PaperExecutorOptions(timeout_s=2.0))
    await paper.start(VenueContext(nc=nc, js=js, topology=topology))
    try:
        plan = await claimed(js, topology, paper, ledger, one)  # a replica crashed after it
        halt = await HaltStore.open(js, topology)
        await halt.set(switch(HaltMode.HALTED, reason="crash review"))
        await Publisher(js, topology).intent(one)
        async with runtimes():
            (result,) = await results(js, topology, 1)
        assert result.skip_reason == SkipReason.HALT_SWITCH
        assert "crash review" in str(result.metadata["detail"])
        late = await paper.place(plan)  # the stalled claimant wakes up and sends it: fenced
        assert late.filled_size == 0
        assert venue.net("main", "BTC") == 0
    finally:
        await paper.stop()
