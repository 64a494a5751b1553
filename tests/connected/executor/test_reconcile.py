"""Reconciliation: the venue's books against the ledger, at start and after a venue gap."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest_asyncio
from nats.aio.client import Client
from nats.js import JetStreamContext
from typer.testing import CliRunner, Result

from intentbus.bus import Publisher, Topology
from intentbus.command.app import build_app
from intentbus.executor.base import VenueContext
from intentbus.executor.prepare import prepare
from intentbus.executor.runtime import ExecutorRuntime
from intentbus.schemas import Drift, ExecutionPlan, ExecutionStatus, OrderState
from intentbus.testing import wait_for
from intentbus.testing.executor_harness import read_drifts
from intentbus.testing.fake_ledger import FakeLedger
from intentbus.venues.paper import PaperExecutor, PaperExecutorOptions
from tests.connected.executor.conftest import FAST, Runtimes, Venue
from tests.connected.executor.test_runtime import intent, results

QUICK = replace(FAST, reconcile_debounce_s=0.2)


@pytest_asyncio.fixture
async def paper(
    nc: Client, js: JetStreamContext, topology: Topology, venue: Venue
) -> AsyncIterator[PaperExecutor]:
    """A started paper executor for the test itself, to trade behind the ledger's back."""
    executor = PaperExecutor(PaperExecutorOptions(timeout_s=2.0))
    await executor.start(VenueContext(nc=nc, js=js, topology=topology))
    yield executor
    await executor.stop()


async def trade_at_venue(paper: PaperExecutor, ledger: FakeLedger, key: str) -> float:
    """Buy BTC for account ``main`` at the venue directly (the ledger never hears of it)."""
    plan = prepare(paper, intent("p1", urgency="high", intent_id=key), ledger.positions["p1"], 0.0)
    assert isinstance(plan, ExecutionPlan), plan
    placed = await paper.place(plan)
    assert placed.state is OrderState.FILLED
    return placed.filled_size


async def drifts(js: JetStreamContext, topology: Topology, n: int) -> list[Drift]:
    """Wait for ``n`` drift messages and return them in stream order."""

    async def probe() -> list[Drift]:
        return await read_drifts(js, topology)

    return await wait_for(probe, until=lambda d: len(d) >= n, what=f"{n} drift(s)")


async def reconciled(runtime: ExecutorRuntime, n: int) -> None:
    """Wait until the replica finished ``n`` reconciliations."""

    async def done() -> int:
        return runtime.stats.reconciliations

    await wait_for(done, until=lambda k: k >= n, what=f"{n} reconciliation(s)")


async def gap(runtime: ExecutorRuntime, executor: PaperExecutor) -> None:
    """Drop and restore the replica's venue feed (a reconnect: a VenueGap) and wait it out."""
    before = runtime.stats.reconciliations
    await executor.drop_feed()
    await executor.restore_feed()
    await reconciled(runtime, before + 1)


async def test_a_venue_position_the_ledger_lacks_is_drift_at_start(
    js: JetStreamContext,
    topology: Topology,
    venue: Venue,
    ledger: FakeLedger,
    paper: PaperExecutor,
    runtimes: Runtimes,
) -> None:
    ledger.open("p1", allocation_usd=1_000.0)
    held = await trade_at_venue(paper, ledger, "outside-1")
    async with runtimes(settings=QUICK):
        first, *_ = await drifts(js, topology, 1)
    assert (first.venue, first.book_id, first.account, first.symbol) == (
        "paper", "main", "main", "BTC",
    )  # fmt: skip
    assert first.position_id == "p1"
    assert first.ledger_size == 0.0
    assert first.venue_size == held == venue.net("main", "BTC") > 0
    assert first.difference == held
    assert first.reason == "start"
    assert not first.resolved


async def test_a_replica_started_before_the_ledger_reconciles_once_it_answers(
    js: JetStreamContext,
    topology: Topology,
    venue: Venue,
    ledger: FakeLedger,
    paper: PaperExecutor,
    runtimes: Runtimes,
) -> None:
    ledger.open("p1", allocation_usd=1_000.0)
    held = await trade_at_venue(paper, ledger, "outside-1")
    await ledger.stop_answering()
    async with runtimes(settings=QUICK) as running:

        async def put_off() -> int:
            return running.runtime.stats.reconcile_waits

        await wait_for(put_off, until=lambda n: n >= 1, what="a reconciliation put off")
        await ledger.start_answering()
        (drift,) = await drifts(js, topology, 1)
    assert (drift.reason, drift.venue_size, drift.ledger_size) == ("start", held, 0.0)


async def test_equal_books_publish_no_drift(
    js: JetStreamContext,
    topology: Topology,
    venue: Venue,
    ledger: FakeLedger,
    paper: PaperExecutor,
    runtimes: Runtimes,
) -> None:
    ledger.open("p1", allocation_usd=1_000.0)
    held = await trade_at_venue(paper, ledger, "outside-1")
    ledger.open("p1", allocation_usd=1_000.0, size=held)  # the ledger knows it
    async with runtimes(settings=QUICK) as running:
        await reconciled(running.runtime, 1)
        assert isinstance(running.executor, PaperExecutor)
        await gap(running.runtime, running.executor)
        assert running.runtime.stats.drifts == 0
    assert await read_drifts(js, topology) == []


async def test_a_trade_missed_during_a_venue_gap_is_drift_after_the_reconnect(
    js: JetStreamContext,
    topology: Topology,
    venue: Venue,
    ledger: FakeLedger,
    paper: PaperExecutor,
    runtimes: Runtimes,
) -> None:
    ledger.open("p1", allocation_usd=1_000.0)
    held = await trade_at_venue(paper, ledger, "outside-1")
    ledger.open("p1", allocation_usd=1_000.0, size=held)
    async with runtimes(settings=QUICK) as running:
        executor = running.executor
        assert isinstance(executor, PaperExecutor)
        await reconciled(running.runtime, 1)
        assert await read_drifts(js, topology) == []
        await executor.drop_feed()
        more = await trade_at_venue(paper, ledger, "outside-2")
        await executor.restore_feed()
        (found,) = await drifts(js, topology, 1)
    assert found.reason == "reconnect"
    assert (found.account, found.symbol, found.position_id) == ("main", "BTC", "p1")
    assert found.ledger_size == held
    assert found.venue_size == held + more == venue.net("main", "BTC")
    assert abs(found.difference - more) < 1e-9


async def _invoke(*args: str) -> Result:
    """Run ``intentbus ARGS`` in a thread (the command runs its own event loop)."""
    return await asyncio.to_thread(CliRunner().invoke, build_app(), list(args))


async def _positions_json(nats_url: str, topology: Topology) -> dict[str, Any]:
    shown = await _invoke("positions", "--json", "--nats-url", nats_url,
                          "--namespace", topology.namespace)  # fmt: skip
    assert shown.exit_code == 0, shown.output
    rows: list[dict[str, Any]] = json.loads(shown.stdout)
    return {row["position_id"]: row for row in rows}


async def test_drift_shows_in_positions_until_a_reconciliation_resolves_it(
    nats_url: str,
    js: JetStreamContext,
    topology: Topology,
    venue: Venue,
    ledger: FakeLedger,
    paper: PaperExecutor,
    runtimes: Runtimes,
) -> None:
    ledger.open("p1", allocation_usd=1_000.0)
    held = await trade_at_venue(paper, ledger, "outside-1")
    async with runtimes(settings=QUICK) as running:
        executor = running.executor
        assert isinstance(executor, PaperExecutor)
        await drifts(js, topology, 1)
        shown = (await _positions_json(nats_url, topology))["p1"]["drift"]
        assert shown is not None
        assert (shown["venue_size"], shown["ledger_size"]) == (held, 0.0)
        assert shown["resolved"] is False
        ledger.open("p1", allocation_usd=1_000.0, size=held)  # the ledger catches up
        before = len(await read_drifts(js, topology))
        await gap(running.runtime, executor)
        found = await drifts(js, topology, before + 1)
    last = found[-1]
    assert last.resolved
    assert last.reason == "reconnect"
    assert last.venue_size == last.ledger_size == held
    assert all(not d.resolved for d in found[:-1])
    assert (await _positions_json(nats_url, topology))["p1"]["drift"] is None


async def test_trading_through_the_replica_leaves_no_drift(
    js: JetStreamContext,
    topology: Topology,
    venue: Venue,
    ledger: FakeLedger,
    runtimes: Runtimes,
) -> None:
    ledger.open("p1", allocation_usd=1_000.0)
    async with runtimes(settings=QUICK) as running:
        executor = running.executor
        assert isinstance(executor, PaperExecutor)
        await Publisher(js, topology).intent(intent("p1", urgency="high"))
        (result,) = await results(js, topology, 1)
        assert result.status is ExecutionStatus.SUCCESS
        await gap(running.runtime, executor)  # the ledger read includes the replica's fills
        assert running.runtime.stats.drifts == 0
    assert venue.net("main", "BTC") == ledger.positions["p1"].size > 0
    assert await read_drifts(js, topology) == []
