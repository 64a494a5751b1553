"""The paper venue's live feed on the client side: events to the sink, gaps noticed.

Events are core NATS messages (lossy). Each carries its account's event sequence
number; the feed compares it with the last one seen (the server's numbers at start are
the baseline) and, when one is missing, tells the sink with a :class:`VenueGap` before
passing the next event on. Heartbeats repeat the current number, so a lost last event
is noticed too.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from intentbus.executor.base import EventSink, VenueEvent, VenueGap
from intentbus.venues.paper.protocol import PaperEvent, PaperSubjects

log = logging.getLogger(__name__)
Baselines = Callable[[], Awaitable[dict[str, int]]]


class EventFeed:
    """Subscribe to every account's events of one paper venue; detect gaps."""

    def __init__(self, nc: Client, subjects: PaperSubjects, baselines: Baselines) -> None:
        self._nc = nc
        self._subjects = subjects
        self._baselines = baselines
        # one event, or an array of one account's events of one venue step
        self._decoder = msgspec.json.Decoder(PaperEvent | list[PaperEvent])
        self._sink: EventSink | None = None
        self._sub: Subscription | None = None
        self._seqs: dict[str, int] = {}
        self._last_at: dict[str, datetime] = {}
        self._ready = False
        self._started_at = datetime.now(UTC)

    def set_sink(self, sink: EventSink) -> None:
        """Route events and gaps to ``sink``."""
        self._sink = sink

    @property
    def running(self) -> bool:
        """Say whether the feed is subscribed."""
        return self._sub is not None

    async def start(self) -> None:
        """Subscribe, then take the server's current sequence numbers as the baseline."""
        self._ready = False
        self._started_at = datetime.now(UTC)
        self._sub = await self._nc.subscribe(self._subjects.events_filter, cb=self._on_msg)
        await self._nc.flush()
        try:
            baselines = await self._baselines()
        except Exception as exc:  # no baseline: a jump is noticed from the next event on
            log.warning("paper feed: no event numbers from the venue (%r)", exc)
            baselines = {}
        for account, seq in baselines.items():
            self._seqs[account] = max(self._seqs.get(account, 0), seq)
        self._ready = True

    async def stop(self) -> None:
        """Unsubscribe (events sent meanwhile are lost, as on a dropped WebSocket)."""
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    def since(self) -> datetime:
        """Return when the feed last heard from the venue (the start if never)."""
        return max(self._last_at.values(), default=self._started_at)

    async def resume(self, reason: str) -> None:
        """Subscribe again after :meth:`stop` and report the gap since the last event."""
        since = self.since()
        self._seqs.clear()
        await self.start()
        await self._emit(VenueGap(since=since, reason=reason))

    async def _on_msg(self, msg: Msg) -> None:
        try:
            decoded = self._decoder.decode(msg.data)
        except msgspec.MsgspecError:
            log.warning("paper feed: ignoring an invalid event on %s", msg.subject)
            return
        for event in decoded if isinstance(decoded, list) else (decoded,):
            await self._on_event(event)

    async def _on_event(self, event: PaperEvent) -> None:
        account = event.account
        last = self._seqs.get(account, 0)
        heartbeat = event.order is None and event.fill is None
        missing = event.seq > last if heartbeat else event.seq > last + 1
        if self._ready and missing:
            since = self._last_at.get(account, self._started_at)
            reason = f"account {account}: event {event.seq} after {last}"
            await self._emit(VenueGap(since=since, reason=reason))
        self._seqs[account] = max(last, event.seq)
        self._last_at[account] = event.at
        item = event.order or event.fill
        if item is not None and not await self._emit(item):
            # The sink lost it: tell it to ask the venue again, as after a lost event.
            await self._emit(VenueGap(since=event.at, reason="the event sink failed"))

    async def _emit(self, event: VenueEvent) -> bool:
        if self._sink is None:
            return True
        try:
            await self._sink(event)
        except Exception:
            log.exception("paper feed: the event sink failed on %r", event)
            return False
        return True
