"""Fill deliveries lost in flight (a dropped connection) are applied in stream order anyway."""

from __future__ import annotations

from nats.aio.client import Client
from nats.js import JetStreamContext

from intentbus.bus import Publisher, Topology, ensure_consumer
from intentbus.ledger.service import ledger_consumer_specs
from intentbus.schemas import Side
from tests.connected.test_ledger_service import opened, position_at, running_ledger
from tests.ledger_messages import fill


async def test_a_fill_after_lost_deliveries_waits_for_them_in_stream_order(
    nats_url: str, topology: Topology, js: JetStreamContext, nc: Client, ledger_db: str
) -> None:
    publisher = Publisher(js, topology)
    # Order matters: buy 1 @ 100, sell 1 @ 200 (realises +100), buy 1 @ 300.
    await publisher.fill(fill(1, Side.BUY, 1.0, 100.0))
    await publisher.fill(fill(2, Side.SELL, 1.0, 200.0))
    await publisher.fill(fill(3, Side.BUY, 1.0, 300.0))
    # The first two are delivered to the ledger's durable and lost on the way (as when a
    # connection drops): the server sends them again only after the ack wait.
    _, spec = ledger_consumer_specs(topology)
    await ensure_consumer(js, spec)
    thief = await js.pull_subscribe_bind(durable=spec.durable, stream=spec.stream)
    lost = await thief.fetch(2, timeout=5)
    assert [m.metadata.sequence.stream for m in lost] == [1, 2]
    await thief.unsubscribe()

    async with running_ledger(nats_url, topology, await opened(ledger_db)) as ledger:
        position = await position_at(nc, topology, fills=3)
        assert ledger.fills.progress.seq == 3
    assert position.fills_applied == 3
    assert (position.size, position.avg_entry_price, position.realized_pnl_usd) == (
        1.0,
        300.0,
        100.0,
    )


async def test_fills_aged_out_of_the_stream_are_skipped_at_once(
    nats_url: str, topology: Topology, js: JetStreamContext, nc: Client, ledger_db: str
) -> None:
    publisher = Publisher(js, topology)
    for n in range(1, 4):
        await publisher.fill(fill(n, Side.BUY, 1.0, 100.0 * n))
    await js.purge_stream(topology.fills_stream, seq=3)  # 1 and 2 are gone
    async with running_ledger(nats_url, topology, await opened(ledger_db)) as ledger:
        position = await position_at(nc, topology, fills=3)
        assert ledger.fills.progress.seq == 3
    assert position.fills_applied == 1
    assert (position.size, position.avg_entry_price) == (1.0, 300.0)
