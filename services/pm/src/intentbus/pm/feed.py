"""The feed: publish closed candles and marks on the bus, into retained streams.

For each closed candle the feed publishes the mark (the close, on
``marks.<venue>.<symbol>``: the paper venue fills at the latest mark) and then the candle
(``candles.<venue>.<symbol>.<tf>``, ``Nats-Msg-Id`` = candle id, so a re-run of the same
file stores nothing twice). ``pace_s`` waits between candles (a demo); ``lockstep``
names the PM's durable consumer: the feed then publishes the next candle only once the
PM has acknowledged everything before it, and the PM acknowledges a candle only after
its intents' results, so each intent fills at its own candle's mark, as in a backtest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from intentbus.bus import Publisher, Topology
from intentbus.schemas import Mark
from intentbus.schemas.candle import Candle


@dataclass
class FeedStats:
    """What a feed run published."""

    candles: int = 0
    duplicates: int = 0
    last_seq: int = 0


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
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._js = js
        self._topology = topology
        self._publisher = Publisher(js, topology)
        self._pace_s = pace_s
        self._lockstep = lockstep
        self._poll_s = poll_s
        self._clock = clock

    async def publish(self, candle: Candle, stats: FeedStats) -> None:
        """Publish one candle's mark, then the candle."""
        mark = Mark(venue=candle.venue, symbol=candle.symbol, price=candle.close, at=self._clock())
        await self._publisher.mark(mark)
        ack = await self._publisher.candle(candle)
        stats.candles += 1
        stats.duplicates += int(bool(ack.duplicate))
        stats.last_seq = ack.seq

    async def run(self, candles: Iterable[Candle], stop: asyncio.Event | None = None) -> FeedStats:
        """Publish every candle in order (until ``stop`` is set) and return the counts."""
        stats = FeedStats()
        for candle in candles:
            if stop is not None and stop.is_set():
                break
            if self._lockstep:
                await self.wait_for_consumer(self._lockstep, stop)
            await self.publish(candle, stats)
            if self._pace_s:
                await asyncio.sleep(self._pace_s)
        if self._lockstep:
            await self.wait_for_consumer(self._lockstep, stop)
        return stats

    async def wait_for_consumer(self, durable: str, stop: asyncio.Event | None = None) -> None:
        """Wait until the durable exists and has acknowledged every candle it was given."""
        stream = self._topology.candles_stream
        while stop is None or not stop.is_set():
            try:
                info = await self._js.consumer_info(stream, durable)
            except NotFoundError:
                await asyncio.sleep(self._poll_s)
                continue
            if not info.num_pending and not info.num_ack_pending:
                return
            await asyncio.sleep(self._poll_s)
