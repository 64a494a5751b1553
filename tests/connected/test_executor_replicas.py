"""Two runtime replicas bound to one durable split the work; nothing trades twice or late."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from nats.aio.client import Client
from nats.js import JetStreamContext

from intentbus.bus import Publisher, Topology
from intentbus.executor.runtime import ExecutorRuntime, RuntimeSettings
from intentbus.schemas import ExecutionResult, ExecutionStatus, SkipReason, build_intent
from intentbus.testing import wait_for
from intentbus.testing.executor_harness import read_results, running
from intentbus.testing.fake_ledger import FakeLedger
from intentbus.venues.paper import PaperConfig, PaperExecutor
from intentbus.venues.paper.account import PaperAccount

CONFIG = PaperConfig(prices={"BTC": 100.0}, slippage_bps=0.0)
SETTINGS = RuntimeSettings(batch=1, ledger_retry_s=0.1, busy_retry_s=0.02)


@pytest_asyncio.fixture
async def ledger(nc: Client, js: JetStreamContext, topology: Topology) -> AsyncIterator[FakeLedger]:
    fake = FakeLedger(nc, js, topology)
    await fake.start()
    yield fake
    await fake.stop()


def _replicas(
    nc: Client, js: JetStreamContext, topology: Topology
) -> tuple[ExecutorRuntime, ExecutorRuntime]:
    a, b = (
        ExecutorRuntime(nc, js, topology, PaperExecutor(CONFIG), settings=SETTINGS, owner=name)
        for name in ("replica-a", "replica-b")
    )
    assert a.durable == b.durable == "executor-paper"
    return a, b


async def _results(js: JetStreamContext, topology: Topology, n: int) -> list[ExecutionResult]:
    found = await wait_for(
        lambda: read_results(js, topology),
        until=lambda r: len(r) >= n,
        timeout_s=30.0,
        what=f"{n} results",
    )
    return [result for _, result in found]


async def test_replicas_split_intents_and_execute_each_exactly_once(
    nc: Client, js: JetStreamContext, topology: Topology, ledger: FakeLedger
) -> None:
    n = 40
    intents = []
    for i in range(n):
        ledger.open(f"p{i}", allocation_usd=1_000.0)
        intents.append(
            build_intent(
                action="add",
                size_frac=0.5,
                position_id=f"p{i}",
                token_contract="BTC",
                token_chain="paper",
                book_id="main",
            )
        )
    publisher = Publisher(js, topology)
    for intent in intents:
        await publisher.intent(intent)
    a, b = _replicas(nc, js, topology)
    async with running(a, b):
        results = await _results(js, topology, n)
    assert sorted(r.intent_id for r in results) == sorted(i.intent_id for i in intents)
    assert all(r.status is ExecutionStatus.SUCCESS for r in results)
    orders = await PaperAccount(await js.key_value(topology.bucket("PAPER_paper"))).orders()
    assert len(orders) == n
    assert {o.client_order_id for o in orders} == {r.client_order_id for r in results}
    assert a.stats.executed + b.stats.executed == n
    assert a.stats.executed > 0
    assert b.stats.executed > 0
    assert len(await read_results(js, topology)) == n


async def test_replicas_keep_each_position_in_publish_order(
    nc: Client, js: JetStreamContext, topology: Topology, ledger: FakeLedger
) -> None:
    positions = [f"q{i}" for i in range(8)]
    order: dict[str, int] = {}
    publisher = Publisher(js, topology)
    for pid in positions:
        ledger.open(pid, allocation_usd=1_000.0)
    for action, frac in (("add", 0.3), ("add", 0.3), ("exit", 1.0)):
        for pid in positions:
            intent = build_intent(
                action=action,
                size_frac=frac,
                position_id=pid,
                token_contract="BTC",
                token_chain="paper",
                book_id="main",
                urgency="critical",
            )
            order[intent.intent_id] = len(order)
            await publisher.intent(intent)
    a, b = _replicas(nc, js, topology)
    async with running(a, b):
        results = await _results(js, topology, len(order))
    assert len({r.intent_id for r in results}) == len(order)
    for pid in positions:
        ran = [
            order[r.intent_id]
            for r in results
            if r.position_id == pid and r.skip_reason != SkipReason.SUPERSEDED
        ]
        assert ran == sorted(ran), f"{pid} ran out of publish order: {ran}"
    for result in results:
        assert result.status in (ExecutionStatus.SUCCESS, ExecutionStatus.SKIPPED)
    book = await PaperAccount(await js.key_value(topology.bucket("PAPER_paper"))).book("BTC")
    assert book.size == 0.0
    assert await ledger.wait_applied(len(order), 5.0)
    assert all(ledger.positions[pid].size == 0.0 for pid in positions)
