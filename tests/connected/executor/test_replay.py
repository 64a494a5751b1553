"""``replay``: what-if under changed venue rules, redrive's guards, flat memory."""

from __future__ import annotations

import asyncio
import gc
import json
import time

import psutil
from nats.aio.client import Client
from nats.js import JetStreamContext
from typer.testing import CliRunner

from intentbus.bus import HaltStore, Publisher, Topology
from intentbus.cli.reader import Selection
from intentbus.cli.replay import run_what_if
from intentbus.cli.whatif import Change, Exporter
from intentbus.command.app import build_app
from intentbus.schemas import (
    ExecutionIntent,
    ExecutionStatus,
    HaltMode,
    SkipReason,
    build_intent,
    decode,
    encode,
)
from intentbus.testing.fake_ledger import FakeLedger
from intentbus.venues.paper import PaperConfig
from intentbus.venues.paper.server import PaperVenueServer
from tests.connected.executor.conftest import PRICES, Runtimes, Venue
from tests.connected.executor.test_halt_and_caps import switch
from tests.connected.executor.test_runtime import intent, results

runner = CliRunner()


async def _recorded_run(
    js: JetStreamContext, topology: Topology, ledger: FakeLedger, runtimes: Runtimes
) -> list[str]:
    """Run six intents on p1 (allocation $1,000 at BTC 100); return their ids in order."""
    ledger.open("p1", allocation_usd=1_000.0)
    sent = [
        intent("p1", frac=0.05, urgency="high"),  # $50
        intent("p1", frac=0.2, urgency="high"),  # $200
        intent("p1", frac=0.1, urgency="high"),  # $100
        intent("p1", frac=0.005, urgency="high"),  # $5: below the $10 minimum
        intent("p1", "trim", 0.5, urgency="high"),  # half of 3.5 BTC: $175
        intent("p1", "exit", 1.0, urgency="high"),
    ]
    publisher = Publisher(js, topology)
    async with runtimes():
        for one in sent:
            await publisher.intent(one)
        found = await results(js, topology, len(sent))
    assert [r.status for r in found].count(ExecutionStatus.SUCCESS) == 5
    assert found[3].skip_reason == SkipReason.BELOW_MIN_NOTIONAL
    return [i.intent_id for i in sent]


async def test_what_if_after_raising_min_notional_reports_exactly_the_intents_that_change(
    nc: Client,
    js: JetStreamContext,
    topology: Topology,
    venue: Venue,
    ledger: FakeLedger,
    runtimes: Runtimes,
) -> None:
    ids = await _recorded_run(js, topology, ledger, runtimes)
    await venue.server.stop()
    raised = PaperConfig(
        prices=PRICES, slippage_bps=0.0, lot_size=0.01, heartbeat_s=0.2, min_notional_usd=120.0
    )
    server = PaperVenueServer(nc, js, topology, raised)
    await server.start()
    rows: list[str] = []

    class Lines:
        def write(self, text: str) -> None:
            rows.append(text)

    try:
        report = await run_what_if(
            nc,
            js,
            topology,
            Selection(venue="paper"),
            exporter=Exporter(Lines(), "jsonl"),  # type: ignore[arg-type]
        )
    finally:
        await server.stop()
    changed = {row.intent_id: row for row in report.changed}
    assert set(changed) == {ids[0], ids[2]}
    assert all(row.change is Change.NEW_SKIP for row in changed.values())
    assert all(row.now == "skip below_min_notional" for row in changed.values())
    assert report.total == 6
    assert report.changes[Change.UNCHANGED] == 4
    assert report.sentences() == ["below_min_notional would now skip 2 intent(s)"]
    exported = [json.loads(line) for line in rows]
    assert [r["intent_id"] for r in exported] == ids
    assert [r["change"] for r in exported].count("new_skip") == 2


async def test_what_if_with_unchanged_rules_changes_nothing(
    nc: Client,
    js: JetStreamContext,
    topology: Topology,
    venue: Venue,
    ledger: FakeLedger,
    runtimes: Runtimes,
) -> None:
    await _recorded_run(js, topology, ledger, runtimes)
    report = await run_what_if(nc, js, topology, Selection(venue="paper", book="main"))
    assert report.changed == []
    assert report.changes[Change.UNCHANGED] == 6


def _invoke(args: list[str]) -> tuple[int, str]:
    result = runner.invoke(build_app(), args)
    return result.exit_code, result.output


async def test_redrive_without_the_flag_or_the_confirmation_changes_nothing(
    nats_url: str, js: JetStreamContext, topology: Topology
) -> None:
    publisher = Publisher(js, topology)
    for n in range(3):
        await publisher.intent(intent(f"p{n}"))
    before = (await js.stream_info(topology.intents_stream)).state.last_seq
    base = ["replay", "--mode", "redrive", "--nats-url", nats_url]
    base += ["--namespace", topology.namespace]
    code, out = await asyncio.to_thread(_invoke, base)
    assert code == 2
    assert "Nothing was published" in out
    code, out = await asyncio.to_thread(_invoke, [*base, "--execute", "--confirm", "yes"])
    assert code == 2
    assert "nothing was published" in out
    assert (await js.stream_info(topology.intents_stream)).state.last_seq == before

    halt = await HaltStore.open(js, topology)
    await halt.set(switch(HaltMode.REDUCING, venue="paper", reason="incident"))
    code, out = await asyncio.to_thread(_invoke, [*base, "--execute", "--confirm", "redrive 3"])
    assert code == 2
    assert "refused" in out
    assert (await js.stream_info(topology.intents_stream)).state.last_seq == before

    await halt.set(switch(HaltMode.ACTIVE, venue="paper", reason="over"))
    args = [*base, "--execute", "--confirm", "redrive 3", "--run-id", "r1", "--ttl", "30"]
    code, out = await asyncio.to_thread(_invoke, args)
    assert code == 0, out
    assert (await js.stream_info(topology.intents_stream)).state.last_seq == before + 3
    originals = [
        decode((await js.get_msg(topology.intents_stream, seq)).data or b"", ExecutionIntent)
        for seq in range(1, before + 4)
    ]
    for old, new in zip(originals[:3], originals[3:], strict=True):
        assert new.intent_id != old.intent_id
        assert f"redrive_of={old.intent_id}" in new.reason_codes
        assert new.created_at > old.created_at
        assert (new.valid_until - new.created_at).total_seconds() == 30
    # the same run again publishes nothing new (its ids are derived from the run)
    code, out = await asyncio.to_thread(_invoke, [*args[:-4], "--run-id", "r1", "--to-seq", "3"])
    assert code == 0, out
    assert (await js.stream_info(topology.intents_stream)).state.last_seq == before + 3


async def test_what_if_over_100k_intents_keeps_flat_memory(
    nc: Client, js: JetStreamContext, topology: Topology, ledger: FakeLedger, venue: Venue
) -> None:
    ledger.open("p1", allocation_usd=1_000.0)
    subject = topology.intents_subject("paper", "main", "p1")
    template = build_intent(
        action="add",
        size_frac=0.5,
        position_id="p1",
        token_contract="BTC",
        token_chain="paper",
        book_id="main",
    )
    raw = encode(template)
    total = 100_000
    for start in range(0, total, 2_000):
        acks = [
            await js.publish_async(
                subject, raw.replace(template.intent_id.encode(), f"i{n:07d}".encode())
            )
            for n in range(start, start + 2_000)
        ]
        await asyncio.gather(*acks)
    assert (await js.stream_info(topology.intents_stream)).state.messages == total

    process = psutil.Process()
    seen = 0
    rss_after_warmup = 0
    rss_peak = 0

    class Count:
        def write(self, text: str) -> None:
            nonlocal seen, rss_after_warmup, rss_peak
            seen += 1
            if seen == 10_000:
                gc.collect()
                rss_after_warmup = process.memory_info().rss
            elif seen > 10_000 and seen % 1_000 == 0:
                rss_peak = max(rss_peak, process.memory_info().rss)

    started = time.monotonic()
    report = await run_what_if(
        nc,
        js,
        topology,
        Selection(venue="paper"),
        exporter=Exporter(Count(), "jsonl"),  # type: ignore[arg-type]
    )
    elapsed = time.monotonic() - started
    assert report.total == seen == total
    assert report.changes[Change.NO_RECORD] == total
    # 90,000 more intents after the warm-up add less than 16 MB of RSS (holding the
    # intents and rows would take well over 100 MB)
    growth = rss_peak - rss_after_warmup
    assert growth < 16 * 1024 * 1024, (growth, rss_after_warmup)
    print(f"what-if: {total / elapsed:,.0f} intents/s, RSS growth {growth / 1e6:.1f} MB")
