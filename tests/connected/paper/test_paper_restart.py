"""Paper venue durability and feed: restarts, one server per name, gaps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from nats.aio.msg import Msg
from nats.js.kv import KeyValue

from intentbus.executor.base import VenueEvent, VenueGap
from intentbus.schemas import OrderState, Side
from intentbus.testing import wait_for
from intentbus.venues.paper import PaperVenueServer, VenueBusy
from intentbus.venues.paper.client import VenueError
from intentbus.venues.paper.feed import EventFeed
from intentbus.venues.paper.lease import LEASE_KEY, LeaseRecord
from intentbus.venues.paper.protocol import PaperEvent, PaperSubjects
from intentbus.venues.paper.records import JournalEntry
from tests.connected.paper.paper_support import Recorder, StartPaper, market, plan

EPOCH = datetime.fromtimestamp(0, UTC)


async def test_state_survives_a_server_restart(start_paper: StartPaper) -> None:
    paper = await start_paper(prices={"BTC": 110.0}, depths={"BTC": 0.5}, lot_size=0.01)
    ex = paper.executor
    resting = plan(size=1.0, price=100.0)
    await ex.place(resting)
    await paper.set_mark("BTC", 99.0)  # half of it fills before the restart
    before = await ex.fills_since("main", EPOCH)
    assert [f.size for f in before] == [0.5]
    await paper.server.stop()
    paper.server = await paper.new_server()
    assert paper.server.state.journal_seq > 0
    status = await paper.status(resting)  # the same executor, the new server
    assert (status.state, status.filled_size) == (OrderState.PARTIALLY_FILLED, 0.5)
    assert await ex.fills_since("main", EPOCH) == before
    assert await ex.net_position("main", "BTC") == 0.5
    again = await ex.place(resting)  # its client order id is still known
    assert again.venue_order_id == status.venue_order_id
    await paper.set_mark("BTC", 105.0)
    await paper.set_mark("BTC", 98.0)
    done = await paper.status(resting)
    assert (done.state, done.filled_size, done.avg_price) == (OrderState.FILLED, 1.0, 100.0)
    after = await ex.fills_since("main", EPOCH)
    assert len(after) == 2
    assert after[0] == before[0]
    assert len({f.venue_fill_id for f in after}) == 2  # fill ids do not repeat
    await paper.wait_events(resting.client_order_id, fills=2)
    assert paper.seen.gaps() == []  # event numbers went on where they stopped


async def test_fills_since_a_time_after_a_restart(start_paper: StartPaper) -> None:
    paper = await start_paper(prices={"BTC": 100.0})
    ex = paper.executor
    await ex.place(market(Side.BUY, 1.0, 101.0))
    middle = datetime.now(UTC)
    await ex.place(market(Side.BUY, 2.0, 101.0))
    await paper.server.stop()
    paper.server = await paper.new_server()
    fresh = await paper.new_executor()
    assert [f.size for f in await fresh.fills_since("main", EPOCH)] == [1.0, 2.0]
    assert [f.size for f in await fresh.fills_since("main", middle)] == [2.0]
    assert await fresh.fills_since("main", datetime.now(UTC)) == []
    assert await fresh.net_position("main", "BTC") == 3.0


async def test_a_second_server_for_one_name_is_refused(start_paper: StartPaper) -> None:
    paper = await start_paper(prices={"BTC": 100.0})
    rival = PaperVenueServer(paper.nc, paper.js, paper.topology, paper.config)
    with pytest.raises(VenueBusy, match="already served by"):
        await rival.start()
    order = market(Side.BUY, 1.0, 101.0)
    assert (await paper.executor.place(order)).state is OrderState.FILLED  # unharmed
    await paper.server.stop()
    successor = await paper.new_server()  # the lease was released: it starts at once
    assert (await paper.status(order)).filled_size == 1.0
    assert successor.owner != paper.server.owner


async def test_a_dropped_feed_reports_a_gap_and_fills_since_recovers(
    start_paper: StartPaper,
) -> None:
    paper = await start_paper(prices={"BTC": 110.0})
    ex = paper.executor
    resting = plan(size=1.0, price=100.0)
    await ex.place(resting)
    await paper.wait_events(resting.client_order_id, orders=1)
    await ex.drop_feed()
    await paper.set_mark("BTC", 99.0)
    assert (await paper.status(resting)).state is OrderState.FILLED
    assert paper.seen.fills() == []  # missed while the feed was down
    await ex.restore_feed()
    (gap,) = paper.seen.gaps()
    recovered = await ex.fills_since("main", gap.since)
    assert [f.client_order_id for f in recovered] == [resting.client_order_id]
    later = market(Side.BUY, 1.0, 111.0)
    await ex.place(later)
    await paper.wait_events(later.client_order_id, fills=1)  # live again
    assert len(paper.seen.gaps()) == 1


async def test_a_jump_in_event_numbers_is_a_gap(start_paper: StartPaper) -> None:
    paper = await start_paper(prices={"BTC": 100.0})
    order = market(Side.BUY, 1.0, 101.0)
    await paper.executor.place(order)
    await paper.wait_events(order.client_order_id, fills=1, orders=1)
    assert paper.seen.gaps() == []
    seq = paper.server.state.accounts["main"].event_seq
    subjects = PaperSubjects(paper.topology, paper.config.name)
    # Two events the executor never got: the next one it gets is seq + 3.
    jump = PaperEvent(account="main", seq=seq + 3, at=datetime.now(UTC))
    await paper.nc.publish(subjects.events("main"), msgspec.json.encode(jump))
    gaps = await wait_for(lambda: _gaps(paper.seen), until=bool, what="a VenueGap")
    assert "after" in gaps[0].reason


async def test_heartbeats_reveal_a_lost_last_event(start_paper: StartPaper) -> None:
    paper = await start_paper(prices={"BTC": 100.0})
    await paper.executor.place(market(Side.BUY, 1.0, 101.0))
    known = paper.server.state.accounts["main"].event_seq
    await paper.executor.place(market(Side.BUY, 1.0, 101.0))  # its events are not heard

    async def baselines() -> dict[str, int]:  # a feed that last heard event ``known``
        return {"main": known}

    seen = Recorder()
    feed = EventFeed(paper.nc, PaperSubjects(paper.topology, paper.config.name), baselines)
    feed.set_sink(seen)
    await feed.start()
    try:
        gaps = await wait_for(lambda: _gaps(seen), until=bool, what="a heartbeat gap")
    finally:
        await feed.stop()
    assert f"after {known}" in gaps[0].reason
    assert seen.fills() == []  # a heartbeat carries no event


async def test_a_failing_sink_gets_a_gap_to_recover_with(start_paper: StartPaper) -> None:
    paper = await start_paper(prices={"BTC": 100.0})
    failed: list[VenueEvent] = []

    async def flaky(event: VenueEvent) -> None:
        if not failed and not isinstance(event, VenueGap):
            failed.append(event)
            raise RuntimeError("the sink could not take it")
        await paper.seen(event)

    paper.executor.set_event_sink(flaky)
    order = market(Side.BUY, 1.0, 101.0)
    await paper.executor.place(order)
    gaps = await wait_for(lambda: _gaps(paper.seen), until=bool, what="a gap after a failure")
    assert gaps[0].reason == "the event sink failed"
    assert [f.client_order_id for f in await paper.executor.fills_since("main", gaps[0].since)] == [
        order.client_order_id
    ]


async def _gaps(seen: Recorder) -> list[VenueGap]:
    return list(seen.gaps())


async def test_a_dead_servers_lease_expires_and_a_live_one_does_not(
    start_paper: StartPaper,
) -> None:
    paper = await start_paper(prices={"BTC": 100.0}, lease_s=1.0)
    await paper.server.stop()
    subjects = PaperSubjects(paper.topology, paper.config.name)
    kv = await paper.js.key_value(subjects.bucket)
    ghost = LeaseRecord(owner="ghost", expires_at=datetime.now(UTC) + timedelta(minutes=1))
    await kv.put(LEASE_KEY, msgspec.json.encode(ghost))
    with pytest.raises(VenueBusy, match="ghost"):
        await paper.new_server()
    dead = LeaseRecord(owner="ghost", expires_at=datetime.now(UTC) - timedelta(seconds=1))
    await kv.put(LEASE_KEY, msgspec.json.encode(dead))
    server = await paper.new_server()
    held = await _lease(kv)
    assert held.owner == server.owner
    renewed = await wait_for(
        lambda: _lease(kv), until=lambda lease: lease.expires_at > held.expires_at, what="renewal"
    )
    assert renewed.owner == server.owner


async def test_a_second_writer_in_the_journal_halts_the_server(start_paper: StartPaper) -> None:
    paper = await start_paper(prices={"BTC": 100.0})
    first = market(Side.BUY, 1.0, 101.0)
    await paper.executor.place(first)
    subjects = PaperSubjects(paper.topology, paper.config.name)
    stranger = JournalEntry(at=datetime.now(UTC), order_count=99, fill_count=99)
    await paper.js.publish(subjects.journal_subject, msgspec.json.encode(stranger))
    with pytest.raises(VenueError, match="unavailable"):
        await paper.executor.place(market(Side.BUY, 1.0, 101.0))
    assert paper.server.halted.is_set()
    assert "another server wrote" in paper.server.halt_reason
    with pytest.raises(VenueError, match="halted"):
        await paper.executor.place(market(Side.BUY, 1.0, 101.0))
    with pytest.raises(VenueError, match="halted"):  # its view may be stale: no reads
        await paper.executor.net_position("main", "BTC")


async def _lease(kv: KeyValue) -> LeaseRecord:
    entry = await kv.get(LEASE_KEY)
    assert entry.value is not None
    return msgspec.json.decode(entry.value, type=LeaseRecord)


async def test_one_steps_events_of_an_account_arrive_as_one_message_in_order(
    start_paper: StartPaper,
) -> None:
    paper = await start_paper(prices={"BTC": 100.0})
    subjects = PaperSubjects(paper.topology, paper.config.name)
    heard: list[bytes] = []

    async def hear(msg: Msg) -> None:
        if b'"order"' in msg.data or b'"fill"' in msg.data:  # not a heartbeat
            heard.append(msg.data)

    sub = await paper.nc.subscribe(subjects.events("main"), cb=hear)
    await paper.nc.flush()
    order = market(Side.BUY, 1.0, 101.0)  # accepted and filled in one step
    await paper.executor.place(order)
    await paper.wait_events(order.client_order_id, fills=1, orders=1)

    async def count() -> int:
        return len(heard)

    await wait_for(count, until=bool, what="the step's message")
    await sub.unsubscribe()
    (one,) = heard
    events = msgspec.json.decode(one, type=list[PaperEvent])
    assert [e.seq for e in events] == list(range(events[0].seq, events[0].seq + len(events)))
    assert sorted(e.fill is not None for e in events) == [False, True]  # the order, its fill
    assert paper.seen.gaps() == []  # the feed took each event of the array in turn
