"""The feed: publish closed candles and marks on the bus, into retained streams.

For each closed candle the feed publishes the mark (the close, on
``marks.<venue>.<symbol>``: the paper venue fills at the latest mark) and then the candle
(``candles.<venue>.<symbol>.<tf>``, ``Nats-Msg-Id`` = candle id, so a re-run of the same
file stores nothing twice). ``pace_s`` waits between candles (a demo); ``lockstep``
names the PM's durable consumer: the feed then publishes the next candle only once the
PM has acknowledged everything before it, and the PM acknowledges a candle only after
its intents' results, so each intent fills at its own candle's mark, as in a backtest.

:meth:`CandleFeed.follow` polls a venue's API instead (a
:class:`~intentbus.pm.sources.VenueCandleSource`): on each poll the venue's current mids
as marks, then the candles closed since the last one published. It resumes after the
last candle stored on the subject, so a restart publishes nothing twice (and the
``Nats-Msg-Id`` dedup catches an overlap within the stream's window).

In lockstep the feed also waits (at most ``mark_wait_s``) until every consumer of the
MARKS stream that follows the symbol has been sent the new mark before it publishes the
candle: the venue and its executors follow marks on their own subscriptions, and an
intent must not reach them before the mark of its candle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from intentbus.bus import Publisher, Topology
from intentbus.pm.sources import SourceError, VenueCandleSource
from intentbus.pm.warmup import subject_matches
from intentbus.schemas import Mark, decode
from intentbus.schemas.candle import Candle, timeframe_duration

log = logging.getLogger(__name__)


@dataclass
class FeedStats:
    """What a feed run published."""

    candles: int = 0
    duplicates: int = 0
    last_seq: int = 0
    marks: int = 0
    polls: int = 0  # venue polls answered
    errors: int = 0  # venue polls that failed (logged, retried at the next poll)


class CandleFeed:
    """Publish candles and marks; the constructor does no I/O."""

    def __init__(
        self,
        js: JetStreamContext,
        topology: Topology,
        *,
        pace_s: float = 0.0,
        lockstep: str | None = None,
        poll_s: float = 0.02,
        mark_wait_s: float = 2.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._js = js
        self._topology = topology
        self._publisher = Publisher(js, topology)
        self._pace_s = pace_s
        self._lockstep = lockstep
        self._poll_s = poll_s
        self._mark_wait_s = mark_wait_s
        self._clock = clock

    async def publish(self, candle: Candle, stats: FeedStats) -> None:
        """Publish one candle's mark, then the candle."""
        mark = Mark(venue=candle.venue, symbol=candle.symbol, price=candle.close, at=self._clock())
        sent = await self._publisher.mark(mark)
        if self._lockstep:
            subject = self._topology.marks_subject(candle.venue, candle.symbol)
            await self.wait_for_mark_delivery(subject, sent.seq)
        ack = await self._publisher.candle(candle)
        stats.candles += 1
        stats.duplicates += int(bool(ack.duplicate))
        stats.last_seq = ack.seq

    async def run(self, candles: Iterable[Candle], stop: asyncio.Event | None = None) -> FeedStats:
        """Publish every candle in order (until ``stop`` is set) and return the counts."""
        stats = FeedStats()
        if self._lockstep:
            await self.wait_for_consumer(self._lockstep, 0, "", stop)
        for candle in candles:
            if stop is not None and stop.is_set():
                break
            await self.publish(candle, stats)
            if self._lockstep:
                subject = self._topology.candles_subject(
                    candle.venue, candle.symbol, candle.timeframe
                )
                await self.wait_for_consumer(self._lockstep, stats.last_seq, subject, stop)
            if self._pace_s:
                await asyncio.sleep(self._pace_s)
        return stats

    async def follow(
        self,
        source: VenueCandleSource,
        symbol: str,
        timeframe: str,
        *,
        since: datetime,
        poll_s: float = 10.0,
        stop: asyncio.Event | None = None,
        stats: FeedStats | None = None,
    ) -> FeedStats:
        """Poll ``source`` until ``stop``: marks of ``symbol``, then its newly closed candles.

        Candles start after the last one stored on the subject, or at ``since`` when
        none is. A failed poll is logged and counted, and retried at the next one.
        """
        stats = stats if stats is not None else FeedStats()
        stop = stop if stop is not None else asyncio.Event()
        step = timeframe_duration(timeframe)
        last = await self.last_stored(source.venue, symbol, timeframe)
        start = last.open_time + step if last is not None else since
        while not stop.is_set():
            try:
                mids = await asyncio.to_thread(source.marks, [symbol])
                candles = await asyncio.to_thread(source.history, symbol, timeframe, start)
            except SourceError as exc:
                stats.errors += 1
                log.warning("feed: %s poll failed: %s", source.venue, exc)
            else:
                for coin, price in mids.items():
                    mark = Mark(venue=source.venue, symbol=coin, price=price, at=self._clock())
                    await self._publisher.mark(mark)
                    stats.marks += 1
                for candle in candles:
                    if candle.open_time < start:
                        continue
                    ack = await self._publisher.candle(candle)
                    stats.candles += 1
                    stats.duplicates += int(bool(ack.duplicate))
                    stats.last_seq = ack.seq
                    start = candle.open_time + step
                stats.polls += 1
            with contextlib.suppress(TimeoutError):  # the poll interval, or stop
                await asyncio.wait_for(stop.wait(), poll_s)
        return stats

    async def last_stored(self, venue: str, symbol: str, timeframe: str) -> Candle | None:
        """Return the last candle stored on the subject of (venue, symbol, timeframe)."""
        subject = self._topology.candles_subject(venue, symbol, timeframe)
        try:
            msg = await self._js.get_last_msg(self._topology.candles_stream, subject)
        except NotFoundError:
            return None
        return decode(msg.data or b"", Candle)

    async def wait_for_mark_delivery(self, subject: str, seq: int) -> bool:
        """Wait until every MARKS consumer following ``subject`` was sent sequence ``seq``.

        Bounded by ``mark_wait_s`` (a consumer left behind by a dead process must not stop
        the feed); return whether every one got it.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._mark_wait_s
        while True:
            consumers = await self._js.consumers_info(self._topology.marks_stream)
            behind = [
                info
                for info in consumers
                if _follows(info.config.filter_subject, info.config.filter_subjects, subject)
                and (info.delivered is None or (info.delivered.stream_seq or 0) < seq)
            ]
            if not behind:
                return True
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(self._poll_s)

    async def wait_for_consumer(
        self, durable: str, seq: int, subject: str, stop: asyncio.Event | None = None
    ) -> None:
        """Wait until the durable exists and has acknowledged the candle stored at ``seq``.

        The ack floor is the test (a candle the durable's filters do not take is not
        waited for): right after a publish, a consumer's pending count may not include
        the new message yet, so "nothing pending" alone could let the next candle go early.
        """
        stream = self._topology.candles_stream
        while stop is None or not stop.is_set():
            try:
                info = await self._js.consumer_info(stream, durable)
            except NotFoundError:
                await asyncio.sleep(self._poll_s)
                continue
            config = info.config
            if not subject or not _follows(config.filter_subject, config.filter_subjects, subject):
                return
            floor = info.ack_floor.stream_seq if info.ack_floor else 0
            if (floor or 0) >= seq:
                return
            await asyncio.sleep(self._poll_s)


def _follows(single: str | None, several: list[str] | None, subject: str) -> bool:
    """Say whether a consumer with these filters receives ``subject`` (no filter: all)."""
    filters = [f for f in [single, *(several or [])] if f]
    return not filters or any(subject_matches(f, subject) for f in filters)
