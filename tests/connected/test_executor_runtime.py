"""The executor runtime with the paper venue and a fake ledger on a real nats-server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest_asyncio
from nats.aio.client import Client
from nats.js import JetStreamContext

from intentbus.bus import Publisher, Topology
from intentbus.executor.runtime import ExecutorRuntime, RuntimeSettings
from intentbus.schemas import (
    ExecutionIntent,
    ExecutionResult,
    ExecutionStatus,
    Side,
    SkipReason,
    build_intent,
    encode,
    result_id_for,
)
from intentbus.testing import wait_for
from intentbus.testing.executor_harness import read_dead_letters, read_results, running
from intentbus.testing.fake_ledger import FakeLedger
from intentbus.venues.paper import PaperConfig, PaperExecutor
from intentbus.venues.paper.account import PaperAccount, PaperOrder

FAST = RuntimeSettings(ledger_retry_s=0.1, busy_retry_s=0.02)


@pytest_asyncio.fixture
async def ledger(nc: Client, js: JetStreamContext, topology: Topology) -> AsyncIterator[FakeLedger]:
    fake = FakeLedger(nc, js, topology)
    await fake.start()
    yield fake
    await fake.stop()


def _runtime(nc: Client, js: JetStreamContext, topology: Topology, **kw: object) -> ExecutorRuntime:
    paper = PaperExecutor(PaperConfig(prices={"BTC": 100.0, "ETH": 20.0}, slippage_bps=0.0))
    return ExecutorRuntime(nc, js, topology, paper, settings=FAST, **kw)  # type: ignore[arg-type]


def _intent(
    position_id: str, action: str = "add", frac: float = 0.5, **kw: object
) -> ExecutionIntent:
    return build_intent(
        action=action,
        size_frac=frac,
        position_id=position_id,
        token_contract=str(kw.pop("token_contract", "BTC")),
        token_chain="paper",
        book_id=str(kw.pop("book_id", "main")),
        **kw,  # type: ignore[arg-type]
    )


async def _results(js: JetStreamContext, topology: Topology, n: int) -> list[ExecutionResult]:
    async def probe() -> list[tuple[str, ExecutionResult]]:
        return await read_results(js, topology)

    found = await wait_for(probe, until=lambda r: len(r) >= n, what=f"{n} result(s)")
    return [result for _, result in found]


async def _orders(js: JetStreamContext, topology: Topology) -> list[PaperOrder]:
    return await PaperAccount(await js.key_value(topology.bucket("PAPER_paper"))).orders()


async def test_intent_round_trip_to_a_result(
    nc: Client, js: JetStreamContext, topology: Topology, ledger: FakeLedger
) -> None:
    runtime = _runtime(nc, js, topology)
    intent = _intent("p1", book_id="alpha")
    ledger.open("p1", book_id="alpha", allocation_usd=10_000.0)
    async with running(runtime):
        await Publisher(js, topology).intent(intent)
        stored = await wait_for(lambda: read_results(js, topology), what="the result")
    subject, result = stored[0]
    assert subject == topology.results_subject("paper", "alpha")
    assert result.result_id == result_id_for(intent.intent_id)
    assert (result.intent_id, result.position_id, result.venue, result.book_id) == (
        intent.intent_id,
        "p1",
        "paper",
        "alpha",
    )
    assert result.status is ExecutionStatus.SUCCESS
    assert result.side is Side.BUY
    assert result.tokens_bought == 50.0
    assert result.tokens_sold == 0.0
    assert result.price == 100.0
    assert result.fees_usd is not None
    assert result.fees_usd > 0
    assert result.slippage_bps == 0.0
    assert result.plan is not None
    assert result.client_order_id == result.plan.client_order_id
    orders = await _orders(js, topology)
    assert [o.order_id for o in orders] == [result.tx_hash]
    info = await js.consumer_info(topology.intents_stream, runtime.durable)
    assert info.num_ack_pending == 0
    assert info.num_pending == 0


async def test_add_then_exit_back_to_back_ends_flat(
    nc: Client, js: JetStreamContext, topology: Topology, ledger: FakeLedger
) -> None:
    ledger.open("p1", allocation_usd=1_000.0)
    runtime = _runtime(nc, js, topology)
    publisher = Publisher(js, topology)
    add, exit_ = _intent("p1", "add", 0.5), _intent("p1", "exit", 1.0, urgency="critical")
    await publisher.intent(add)
    await publisher.intent(exit_)
    async with running(runtime):
        first, second = await _results(js, topology, 2)
    assert (first.intent_id, second.intent_id) == (add.intent_id, exit_.intent_id)
    assert first.status is ExecutionStatus.SUCCESS
    assert second.status is ExecutionStatus.SUCCESS
    assert second.tokens_sold == first.tokens_bought == 5.0
    account = PaperAccount(await js.key_value(topology.bucket("PAPER_paper")))
    assert (await account.book("BTC")).size == 0.0
    assert await ledger.wait_applied(2, 5.0)
    assert ledger.positions["p1"].size == 0.0


async def test_invalid_messages_are_dead_lettered_and_the_loop_goes_on(
    nc: Client, js: JetStreamContext, topology: Topology, ledger: FakeLedger
) -> None:
    ledger.open("p1")
    runtime = _runtime(nc, js, topology)
    publisher = Publisher(js, topology)
    subject = topology.intents_subject("paper", "main")
    bad = json.loads(encode(_intent("p1")))
    bad["size_frac"] = 1.5
    await publisher.raw(subject, b"{not json", "garbage-1")
    await publisher.raw(subject, json.dumps(bad).encode(), bad["intent_id"])
    good = _intent("p1")
    await publisher.intent(good)
    async with running(runtime):
        (result,) = await _results(js, topology, 1)
        letters = await wait_for(
            lambda: read_dead_letters(js, topology), until=lambda d: len(d) == 2
        )
    assert result.intent_id == good.intent_id
    assert result.status is ExecutionStatus.SUCCESS
    assert letters[0].payload == "{not json"
    assert "invalid message" in letters[0].error
    assert "size_frac" in letters[1].error
    assert json.loads(letters[1].payload)["size_frac"] == 1.5
    assert len(await _orders(js, topology)) == 1


async def test_expired_intent_is_skipped_and_never_traded(
    nc: Client, js: JetStreamContext, topology: Topology, ledger: FakeLedger
) -> None:
    ledger.open("p1")
    stale = _intent("p1", created_at=datetime.now(UTC) - timedelta(minutes=5))
    await Publisher(js, topology).intent(stale)
    async with running(_runtime(nc, js, topology)):
        (result,) = await _results(js, topology, 1)
    assert result.status is ExecutionStatus.SKIPPED
    assert result.skip_reason == SkipReason.EXPIRED
    assert await _orders(js, topology) == []


async def test_venue_skips_and_unknown_positions_become_skipped_results(
    nc: Client, js: JetStreamContext, topology: Topology, ledger: FakeLedger
) -> None:
    ledger.open("p1", allocation_usd=100.0)
    ledger.open("p2", token_contract="DOGE")
    publisher = Publisher(js, topology)
    intents = [
        _intent("ghost"),
        _intent("p1", frac=0.01),  # $1 < $10
        _intent("p1", "reclaim", reduce_only=True),
        _intent("p1", "trim"),
        _intent("p2", token_contract="DOGE"),
    ]
    for intent in intents:
        await publisher.intent(intent)
    async with running(_runtime(nc, js, topology)):
        results = await _results(js, topology, len(intents))
    reasons = {r.intent_id: r.skip_reason for r in results}
    assert [reasons[i.intent_id] for i in intents] == [
        SkipReason.UNKNOWN_POSITION,
        SkipReason.BELOW_MIN_NOTIONAL,
        SkipReason.REDUCE_ONLY,
        SkipReason.NO_POSITION,
        SkipReason.NO_MARK,
    ]
    assert all(r.status is ExecutionStatus.SKIPPED for r in results)
    assert await _orders(js, topology) == []


async def test_ledger_down_makes_the_intent_wait_not_vanish(
    nc: Client, js: JetStreamContext, topology: Topology, ledger: FakeLedger
) -> None:
    ledger.open("p1")
    await ledger.stop_answering()
    runtime = _runtime(nc, js, topology)
    await Publisher(js, topology).intent(_intent("p1"))
    async with running(runtime):

        async def retried() -> int:
            return runtime.stats.retried

        await wait_for(retried, until=lambda n: n >= 2, what="retries while the ledger is down")
        assert await read_results(js, topology) == []
        await ledger.start_answering()
        (result,) = await _results(js, topology, 1)
    assert result.status is ExecutionStatus.SUCCESS
