"""The executor runtime with the paper venue server and a fake ledger on a real nats-server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from nats.js import JetStreamContext

from intentbus.bus import Publisher, Topology
from intentbus.schemas import (
    ExecutionIntent,
    ExecutionResult,
    ExecutionStatus,
    OrderState,
    Side,
    SkipReason,
    build_intent,
    encode,
    result_id_for,
)
from intentbus.testing import wait_for
from intentbus.testing.executor_harness import (
    read_dead_letters,
    read_fills,
    read_results,
    read_updates,
)
from intentbus.testing.fake_ledger import FakeLedger
from tests.connected.executor.conftest import Runtimes, Venue


def intent(
    position_id: str, action: str = "add", frac: float = 0.5, **kw: object
) -> ExecutionIntent:
    """Return an intent on the paper venue (book ``main``, BTC unless said)."""
    return build_intent(
        action=action,
        size_frac=frac,
        position_id=position_id,
        token_contract=str(kw.pop("token_contract", "BTC")),
        token_chain="paper",
        book_id=str(kw.pop("book_id", "main")),
        **kw,  # type: ignore[arg-type]
    )


async def results(js: JetStreamContext, topology: Topology, n: int) -> list[ExecutionResult]:
    """Wait for ``n`` final results and return them in stream order."""

    async def probe() -> list[ExecutionResult]:
        return [r for _, r in await read_results(js, topology)]

    return await wait_for(probe, until=lambda r: len(r) >= n, what=f"{n} result(s)")


async def consumers_idle(js: JetStreamContext, topology: Topology) -> bool:
    """Say whether every intent consumer has nothing pending and nothing unacked."""
    infos = await js.consumers_info(topology.intents_stream)
    return all(i.num_pending == 0 and i.num_ack_pending == 0 for i in infos)


async def test_an_intent_that_fills_at_once_gives_a_fill_and_a_final_result(
    js: JetStreamContext, topology: Topology, venue: Venue, ledger: FakeLedger, runtimes: Runtimes
) -> None:
    ledger.open("p1", book_id="alpha", allocation_usd=10_000.0)
    add = intent("p1", book_id="alpha", urgency="high")
    async with runtimes():
        await Publisher(js, topology).intent(add)
        (result,) = await results(js, topology, 1)
        await wait_for(lambda: consumers_idle(js, topology), what="intents acked")
    fills = await read_fills(js, topology)
    assert result.result_id == result_id_for(add.intent_id)
    assert (result.status, result.order_state, result.side) == (
        ExecutionStatus.SUCCESS,
        OrderState.FILLED,
        Side.BUY,
    )
    assert result.filled_size == 50.0  # 10,000 x 0.5 / 100
    assert result.avg_price == 100.0
    assert result.fees_usd > 0
    assert result.account == "alpha"
    assert [f.intent_id for f in fills] == [add.intent_id]
    assert result.fill_count == 1
    assert result.last_fill_seq > 0
    assert fills[0].size == 50.0
    assert venue.net("alpha", "BTC") == 50.0
    assert ledger.positions["p1"].size == 50.0


async def test_skips_are_final_results_with_their_reason(
    js: JetStreamContext, topology: Topology, venue: Venue, ledger: FakeLedger, runtimes: Runtimes
) -> None:
    ledger.open("p1", allocation_usd=100.0)
    publisher = Publisher(js, topology)
    sent = [
        intent("p1", frac=0.01),  # $1 < $10 minimum
        intent("p1", "reclaim", 0.5, reduce_only=True),
        intent("p1", "exit", 1.0),  # nothing held
        intent("ghost"),  # the ledger does not know it
        intent("p1", token_contract="NOPE"),  # no such symbol at the venue
    ]
    async with runtimes():
        for one in sent:
            await publisher.intent(one)
        found = await results(js, topology, len(sent))
    reasons = {r.intent_id: r.skip_reason for r in found}
    assert [reasons[i.intent_id] for i in sent] == [
        SkipReason.BELOW_MIN_NOTIONAL,
        SkipReason.REDUCE_ONLY,
        SkipReason.NO_POSITION,
        SkipReason.UNKNOWN_POSITION,
        SkipReason.POSITION_MISMATCH,
    ]
    assert all(r.status is ExecutionStatus.SKIPPED for r in found)
    assert venue.orders("main") == []


async def test_an_expired_intent_is_skipped_and_never_traded(
    js: JetStreamContext, topology: Topology, venue: Venue, ledger: FakeLedger, runtimes: Runtimes
) -> None:
    ledger.open("p1")
    stale = intent("p1", created_at=datetime.now(UTC) - timedelta(minutes=5))
    await Publisher(js, topology).intent(stale)
    async with runtimes():
        (result,) = await results(js, topology, 1)
    assert result.skip_reason == SkipReason.EXPIRED
    assert venue.orders("main") == []


async def test_invalid_messages_are_dead_lettered_and_the_next_intent_executes(
    js: JetStreamContext, topology: Topology, venue: Venue, ledger: FakeLedger, runtimes: Runtimes
) -> None:
    ledger.open("p1")
    good = intent("p1", urgency="high")
    elsewhere = intent("p1", book_id="other")
    raw = json.loads(encode(intent("p1")))
    raw["size_frac"] = 7.0
    async with runtimes():
        await js.publish(topology.intents_subject("paper", "main", "p1"), b"{not json")
        await js.publish(topology.intents_subject("paper", "main", "p1"), json.dumps(raw).encode())
        # a valid intent whose subject names another book than its body
        await js.publish(topology.intents_subject("paper", "main", "p1"), encode(elsewhere))
        await Publisher(js, topology).intent(good)
        (result,) = await results(js, topology, 1)
        letters = await wait_for(
            lambda: read_dead_letters(js, topology), until=lambda d: len(d) == 3
        )
    assert result.intent_id == good.intent_id
    assert result.status is ExecutionStatus.SUCCESS
    assert "size_frac" in letters[1].error
    assert "arrived on" in letters[2].error


async def test_a_128_character_intent_id_trades_and_its_messages_are_valid(
    js: JetStreamContext, topology: Topology, venue: Venue, ledger: FakeLedger, runtimes: Runtimes
) -> None:
    # Found: a valid 128-character intent id gave a 132-character result id; the result
    # was published unvalidated and dead-lettered by the ledger after the venue traded.
    ledger.open("p" * 128)
    longest = intent("p" * 128, intent_id="i" * 128, urgency="high")
    async with runtimes():
        await Publisher(js, topology).intent(longest)
        (result,) = await results(js, topology, 1)
    assert result.status is ExecutionStatus.SUCCESS
    assert len(result.result_id) <= 128
    assert await read_dead_letters(js, topology) == []
    assert [f.intent_id for f in ledger.fills] == [longest.intent_id]
    assert ledger.positions["p" * 128].size == result.filled_size > 0


async def test_a_resting_limit_is_not_success_and_its_later_fill_reaches_the_ledger(
    js: JetStreamContext, topology: Topology, venue: Venue, ledger: FakeLedger, runtimes: Runtimes
) -> None:
    # Found: a GTC limit that rests was reported `success` with nothing filled, and a
    # later fill had no path to the ledger.
    ledger.open("p1", allocation_usd=40.0)  # 0.2 BTC: below the 0.5 depth, one fill
    add = intent("p1", urgency="low")
    async with runtimes():
        await Publisher(js, topology).intent(add)
        updates = await wait_for(lambda: read_updates(js, topology), what="order update")
        assert await read_results(js, topology) == []  # resting: no final result yet
        assert updates[0].order_state is OrderState.WORKING
        assert updates[0].price is not None
        await venue.mark("BTC", updates[0].price * 0.999)
        (result,) = await results(js, topology, 1)
    assert (result.status, result.order_state) == (ExecutionStatus.SUCCESS, OrderState.FILLED)
    assert ledger.positions["p1"].size == result.filled_size == 0.2


async def test_a_position_waits_for_the_ledger_in_its_lane_without_redeliveries(
    js: JetStreamContext, topology: Topology, venue: Venue, ledger: FakeLedger, runtimes: Runtimes
) -> None:
    # Found: blocked intents were sent back every 50 ms (958 redeliveries pending).
    ledger.open("p1", allocation_usd=1_000.0)
    first, second = intent("p1", urgency="high"), intent("p1", "trim", 0.5, urgency="high")
    await ledger.stop_answering()
    async with runtimes() as running:
        publisher = Publisher(js, topology)
        await publisher.intent(first)
        await publisher.intent(second)

        async def waits() -> int:
            return running.runtime.stats.waits

        await wait_for(waits, until=lambda n: n >= 5, what="the lane waiting on the ledger")
        infos = await js.consumers_info(topology.intents_stream)
        assert sum(i.num_redelivered or 0 for i in infos) == 0
        assert await read_results(js, topology) == []
        await ledger.start_answering()
        done = await results(js, topology, 2)
    assert [r.intent_id for r in done] == [first.intent_id, second.intent_id]
    assert done[1].filled_size == done[0].filled_size / 2
    assert running.runtime.stats.waits < 40  # backoff, not a busy loop


async def test_an_add_then_exit_published_together_leave_the_account_flat(
    js: JetStreamContext, topology: Topology, venue: Venue, ledger: FakeLedger, runtimes: Runtimes
) -> None:
    ledger.open("p1", allocation_usd=1_000.0)
    add, exit_ = intent("p1", urgency="high"), intent("p1", "exit", 1.0, urgency="critical")
    publisher = Publisher(js, topology)
    await publisher.intent(add)
    await publisher.intent(exit_)
    async with runtimes():
        first, second = await results(js, topology, 2)
    assert (first.intent_id, second.intent_id) == (add.intent_id, exit_.intent_id)
    assert second.filled_size == first.filled_size == 5.0
    assert venue.net("main", "BTC") == 0
    assert ledger.positions["p1"].size == 0
