"""The feed polls the local Hyperliquid venue: closed candles to CANDLES, mids to MARKS.

The venue builds ``candleSnapshot`` from its recorded mids (a backfilled price path
plus the live mid); the feed reads it through the SDK's ``Info`` over real HTTP and
publishes on the session's nats-server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from intentbus.bus import Topology
from intentbus.cli.processes import ServiceProcesses
from intentbus.pm.feed import CandleFeed, FeedStats
from intentbus.pm.hyperliquid import HyperliquidCandleSource
from intentbus.schemas import Mark, decode
from intentbus.schemas.candle import Candle
from intentbus.testing import wait_for
from intentbus.venues.hyperliquid.local import LocalVenue
from intentbus.venues.hyperliquid.sim.matching import now_ms

pytestmark = pytest.mark.timeout(120)

MINUTE_MS = 60_000
# four mids a minute over the six minutes before the current one
PATH = [65_000.0 + 10.0 * ((7 * n) % 11) for n in range(24)]


async def stored_candles(js: JetStreamContext, topology: Topology) -> list[tuple[Candle, datetime]]:
    """Return every stored candle with the time the stream stored it."""
    info = await js.stream_info(topology.candles_stream)
    found = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1) if info.state.messages else []:
        msg = await js.get_msg(topology.candles_stream, seq)
        assert msg.time is not None
        found.append((decode(msg.data or b"", Candle), msg.time))
    return found


async def latest_mark(js: JetStreamContext, topology: Topology) -> float | None:
    try:
        msg = await js.get_last_msg(
            topology.marks_stream, topology.marks_subject("hyperliquid", "BTC")
        )
    except NotFoundError:
        return None
    return decode(msg.data or b"", Mark).price


def held(at: list[datetime | None]) -> Callable[[], datetime]:
    """A clock at ``at[0]``, or the real one once the test sets it to None."""
    return lambda: at[0] or datetime.now(UTC)


async def test_feed_publishes_closed_candles_and_mids_once_across_a_restart(
    local: LocalVenue, js: JetStreamContext, topology: Topology
) -> None:
    current = now_ms() - now_ms() % MINUTE_MS  # the open minute when the path was laid
    first_bar = current - 6 * MINUTE_MS
    local.sim.backfill("BTC", PATH, start_ms=first_bar, step_ms=MINUTE_MS // 4)
    since = _at(first_bar - 4 * MINUTE_MS)
    # the feed's clock: only the first 3 bars have closed, the 4th is open
    clock: list[datetime | None] = [_at(first_bar + 3 * MINUTE_MS + 30_000)]
    source = HyperliquidCandleSource(local.sim.url, clock=held(clock))
    feed = CandleFeed(js, topology)
    stop, stats = asyncio.Event(), FeedStats()
    run = asyncio.create_task(
        feed.follow(source, "BTC", "1m", since=since, poll_s=0.05, stop=stop, stats=stats)
    )

    async def candles() -> list[tuple[Candle, datetime]]:
        return await stored_candles(js, topology)

    three = await wait_for(candles, until=lambda c: len(c) >= 3, what="3 closed candles")
    await wait_for(_polls(stats, 3), what="three more polls")
    stored = await candles()
    opened = [int(c.open_time.timestamp() * 1000) for c, _ in stored]
    assert opened == [first_bar, first_bar + MINUTE_MS, first_bar + 2 * MINUTE_MS], opened
    first = stored[0][0]
    assert (first.venue, first.symbol, first.timeframe) == ("hyperliquid", "BTC", "1m")
    assert (first.open, first.high, first.low, first.close) == (
        PATH[0], max(PATH[:4]), min(PATH[:4]), PATH[3]
    )  # fmt: skip
    assert first.close_time - first.open_time == timedelta(minutes=1)
    assert len(three) == 3
    assert await latest_mark(js, topology) == 65_000.0  # the live mid (backfill moves none)

    clock[0] = None  # time passes: the other bars close, the live one stays open
    stored = await wait_for(candles, until=lambda c: len(c) >= 6, what="6 closed candles")
    local.set_mid("BTC", 65_432.0)
    await wait_for(lambda: latest_mark(js, topology), until=lambda p: p == 65_432.0, what="mark")
    stop.set()
    first_stats = await run
    assert first_stats.errors == 0
    stored = await candles()
    opened = [int(c.open_time.timestamp() * 1000) for c, _ in stored]
    assert opened[:6] == [first_bar + n * MINUTE_MS for n in range(6)]
    assert opened == sorted(set(opened))
    for candle, at in stored:  # never an open candle: each was stored after it closed
        assert candle.close_time <= at, (candle, at)
    assert len(stored) == first_stats.candles

    # a restart (from as far back) publishes nothing stored already
    again, again_stats = asyncio.Event(), FeedStats()
    second = asyncio.create_task(
        CandleFeed(js, topology).follow(
            HyperliquidCandleSource(local.sim.url),
            "BTC",
            "1m",
            since=since,
            poll_s=0.05,
            stop=again,
            stats=again_stats,
        )
    )
    await wait_for(_polls(again_stats, 2), what="two polls after the restart")
    again.set()
    await second
    after = await candles()
    assert [c for c, _ in after[: len(stored)]] == [c for c, _ in stored]
    reopened = [c.open_time for c, _ in after]
    assert reopened == sorted(set(reopened))  # a bar closing meanwhile may be added, once
    assert again_stats.duplicates == 0
    assert again_stats.candles == len(after) - len(stored)
    assert again_stats.marks >= 2


def _polls(stats: FeedStats, more: int) -> Callable[[], Awaitable[bool]]:
    """A probe true once ``stats`` counted ``more`` polls beyond now."""
    target = stats.polls + more

    async def probe() -> bool:
        return stats.polls >= target

    return probe


async def test_intentbus_feed_hyperliquid_command_polls_the_venue_and_resumes(
    local: LocalVenue, js: JetStreamContext, topology: Topology, nats_url: str, tmp_path: Path
) -> None:
    current = now_ms() - now_ms() % MINUTE_MS
    first_bar = current - 6 * MINUTE_MS
    local.sim.backfill("BTC", PATH, start_ms=first_bar, step_ms=MINUTE_MS // 4)
    args = [
        "feed", "--hyperliquid", local.sim.url, "--symbol", "BTC", "--interval", "1m",
        "--poll", "0.1", "--backfill", "10",
        "--nats-url", nats_url, "--namespace", topology.namespace,
    ]  # fmt: skip

    async def candles() -> list[tuple[Candle, datetime]]:
        return await stored_candles(js, topology)

    async def marked_since(moment: datetime) -> bool:
        try:
            subject = topology.marks_subject("hyperliquid", "BTC")
            msg = await js.get_last_msg(topology.marks_stream, subject)
        except NotFoundError:
            return False
        return decode(msg.data or b"", Mark).at > moment

    with ServiceProcesses(tmp_path) as processes:
        processes.start("feed", *args)
        stored = await wait_for(
            candles, until=lambda c: len(c) >= 6, timeout_s=60, what="6 candles from the command"
        )
        assert await latest_mark(js, topology) == 65_000.0
        assert await asyncio.to_thread(processes.stop, "feed") == 0, processes.log_tail("feed")
        assert "candles published (0 already stored)" in processes.log_tail("feed")
        stored = await candles()
        opened = [int(c.open_time.timestamp() * 1000) for c, _ in stored]
        assert opened[:6] == [first_bar + n * MINUTE_MS for n in range(6)]

        restarted = datetime.now(UTC)
        processes.start("again", *args)
        await wait_for(lambda: marked_since(restarted), timeout_s=60, what="a poll after restart")
        polled = datetime.now(UTC)  # a poll publishes its mark, then its candles
        await wait_for(lambda: marked_since(polled), timeout_s=60, what="a second poll")
        assert await asyncio.to_thread(processes.stop, "again") == 0, processes.log_tail("again")
    after = await candles()
    assert [c for c, _ in after[: len(stored)]] == [c for c, _ in stored]
    reopened = [c.open_time for c, _ in after]
    assert reopened == sorted(set(reopened))
    for candle, at in after:
        assert candle.close_time <= at


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)
