"""Deliveries lost in flight (a dropped connection) are applied in stream order anyway."""

from __future__ import annotations

from pathlib import Path

from nats.aio.client import Client
from nats.js import JetStreamContext

from intentbus.bus import PositionClient, Publisher, Topology, ensure_consumer
from intentbus.ledger.service import ledger_consumer_spec
from intentbus.schemas import Side
from tests.connected.test_ledger_service import _open, _result, running_ledger


async def test_a_result_after_lost_deliveries_waits_for_them_in_stream_order(
    nats_url: str, topology: Topology, js: JetStreamContext, nc: Client, tmp_path: Path
) -> None:
    publisher = Publisher(js, topology)
    # Order matters: buy 1 @ 100, sell 1 @ 200 (realises +100), buy 1 @ 300.
    await publisher.result(_result(1, Side.BUY, 1.0, 100.0, fees=0.0))
    await publisher.result(_result(2, Side.SELL, 1.0, 200.0, fees=0.0))
    await publisher.result(_result(3, Side.BUY, 1.0, 300.0, fees=0.0))
    # The first two are delivered to the ledger's durable and lost on the way (as when a
    # connection drops): the server sends them again only after the ack wait.
    spec = ledger_consumer_spec(topology)
    await ensure_consumer(js, spec)
    thief = await js.pull_subscribe_bind(durable=spec.durable, stream=spec.stream)
    lost = await thief.fetch(2, timeout=5)
    assert [m.metadata.sequence.stream for m in lost] == [1, 2]
    await thief.unsubscribe()

    async with running_ledger(nats_url, topology, tmp_path / "ledger.sqlite3") as ledger:
        client = PositionClient(nc, topology)
        await client.open(_open())
        position = await client.get("p1", min_results_seq=3)
        assert ledger.progress.seq == 3
    assert position is not None
    assert position.results_applied == 3
    assert position.size == 1.0
    assert position.avg_entry_price == 300.0
    assert position.realized_pnl_usd == 100.0


async def test_results_aged_out_of_the_stream_are_skipped_at_once(
    nats_url: str, topology: Topology, js: JetStreamContext, nc: Client, tmp_path: Path
) -> None:
    publisher = Publisher(js, topology)
    for n in range(1, 4):
        await publisher.result(_result(n, Side.BUY, 1.0, 100.0 * n, fees=0.0))
    await js.purge_stream(topology.results_stream, seq=3)  # 1 and 2 are gone
    async with running_ledger(nats_url, topology, tmp_path / "ledger.sqlite3") as ledger:
        client = PositionClient(nc, topology)
        await client.open(_open())
        position = await client.get("p1", min_results_seq=3)
        assert ledger.progress.seq == 3
    assert position is not None
    assert position.results_applied == 1
    assert position.size == 1.0
    assert position.avg_entry_price == 300.0
