"""PaperVenueServer: a simulated venue that owns accounts and orders, served over NATS.

One server per venue name (a KV lease). It follows the venue's marks, rests and fills
orders (:mod:`intentbus.venues.paper.matching`), answers requests on
``<ns>.venue.paper.<name>.api.<op>`` (:mod:`intentbus.venues.paper.api`) and sends live
events on ``<ns>.venue.paper.<name>.events.<account>``. Every change is stored in the
journal before the request is answered and before its events go out; a restart
replays the journal, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

import msgspec
from nats.aio.client import Client
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext

from intentbus.bus import Topology
from intentbus.bus.control import HeartbeatLoop
from intentbus.schemas import Mark
from intentbus.venues.paper.api import ApiHandler
from intentbus.venues.paper.committer import Committer, Unavailable
from intentbus.venues.paper.config import PaperConfig
from intentbus.venues.paper.constants import MAX_ORDERS_PER_STEP
from intentbus.venues.paper.journal import Journal
from intentbus.venues.paper.lease import LeaseLost, VenueLease
from intentbus.venues.paper.marks import MarkBook
from intentbus.venues.paper.matching import Matcher
from intentbus.venues.paper.protocol import PaperEvent, PaperSubjects
from intentbus.venues.paper.records import JournalEntry, VenueState
from intentbus.venues.paper.step import Step

T = TypeVar("T")
log = logging.getLogger(__name__)
MAX_TIMER_WAIT_S = 1.0


class PaperVenueServer:
    """Serve one paper venue until :meth:`stop` (or until it halts on lost ownership)."""

    def __init__(
        self,
        nc: Client,
        js: JetStreamContext,
        topology: Topology,
        config: PaperConfig | None = None,
        *,
        owner: str | None = None,
    ) -> None:
        self.config = config or PaperConfig()
        self.subjects = PaperSubjects(topology, self.config.name)
        self.owner = owner or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.state = VenueState()
        self.matcher = Matcher(self.config)
        self.marks = MarkBook(self.config.name, self.config.prices, on_mark=self._on_mark)
        self.marks_applied: dict[str, int] = {}  # symbol -> marks matched so far
        self.halted = asyncio.Event()
        self.halt_reason = ""
        self._nc, self._js, self._topology = nc, js, topology
        self._journal = Journal(js, self.subjects)
        self._lease = VenueLease(js, self.subjects, self.owner, self.config.lease_s)
        self._api = ApiHandler(self)
        self._encoder = msgspec.json.Encoder()
        self._committer = Committer(
            self.state, self.name, self._journal, self._publish, self._applied
        )
        self._wake = asyncio.Event()
        self._sub: Subscription | None = None
        self._timer: asyncio.Task[None] | None = None
        self._beats: HeartbeatLoop | None = None
        self._serving = False

    @property
    def name(self) -> str:
        """Return the venue name."""
        return self.config.name

    async def start(self) -> None:
        """Take the lease, replay the journal, follow marks, then answer requests.

        Raise :class:`~intentbus.venues.paper.lease.VenueBusy` while another live server
        serves this venue name.
        """
        await self._lease.acquire()
        try:
            await self._journal.open()
            replayed = await self._journal.replay(self.state)
            for seen in self.state.marks.values():
                self.marks.seed(seen.symbol, seen.price, seen.at)
            self._serving = True
            self._committer.open()
            if self.config.follow_marks:
                await self.marks.follow(self._js, self._topology)
            self._sub = await self._nc.subscribe(self.subjects.api_filter, cb=self._api.handle)
            await self._nc.flush()
        except BaseException:
            await self.stop()
            raise
        self._timer = asyncio.create_task(self._tick(), name=f"paper-venue-{self.name}-timer")
        self._beats = HeartbeatLoop(
            self._js,
            self._topology,
            service="paper-venue",
            venue=self.name,
            distribution="intentbus-venue-paper",
        )
        await self._beats.start()
        log.info(
            "paper venue %s serving on %s (%d journal entries replayed, owner %s)",
            self.name,
            self.subjects.api_filter,
            replayed,
            self.owner,
        )

    async def stop(self) -> None:
        """Stop answering and following marks, finish the writes under way, release the lease."""
        self._serving = False
        if self._beats is not None:
            await self._beats.stop()
            self._beats = None
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
            self._timer = None
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None
        await self.marks.close()
        await self._committer.close(self.halt_reason or f"paper venue {self.name} stopped")
        await self._api.drain()
        async with self._committer.lock:
            with contextlib.suppress(Exception):
                await self._lease.release()

    # changing the state ----------------------------------------------------------------
    async def commit(self, build: Callable[[Step], T], *, group: bool = False) -> T:
        """Run ``build`` on a step; store its entry, apply it, then send its events.

        ``group``: it may share one journal entry with requests queued meanwhile. Raise
        :class:`~intentbus.venues.paper.committer.Unavailable` when the server is not
        serving or could not store the change (then nothing changed).
        """
        try:
            return await self._committer.commit(build, group=group)
        except Unavailable:
            if self._committer.conflict is not None and not self.halted.is_set():
                self._halt(self._committer.conflict)
            raise

    def _applied(self, entry: JournalEntry) -> None:
        if any(r.valid_until is not None and r.order.state.is_live for r in entry.orders):
            self._wake.set()  # the timer looks at the next expiry again

    async def _publish(self, events: Sequence[PaperEvent]) -> None:
        """Send one account's events of one step: one event as is, several as an array."""
        body = events[0] if len(events) == 1 else events
        with contextlib.suppress(Exception):  # a lossy feed: clients notice the gap
            await self._nc.publish(
                self.subjects.events(events[0].account), self._encoder.encode(body)
            )

    async def _on_mark(self, mark: Mark) -> None:
        if not self._serving:
            return
        try:
            await self.commit(lambda step: self.matcher.on_mark(step, mark))
        except Unavailable as exc:
            log.warning("paper venue %s: mark %r not applied: %s", self.name, mark, exc)
        self.marks_applied[mark.symbol] = self.marks_applied.get(mark.symbol, 0) + 1

    def _halt(self, reason: str) -> None:
        log.error("paper venue %s halts: %s", self.name, reason)
        self.halt_reason = f"paper venue {self.name} halted: {reason}"
        self._committer.refusal = self.halt_reason
        self._serving = False
        self.halted.set()
        if self._beats is not None:
            self._beats.last_error = self.halt_reason

    # timer: expiries, heartbeats, lease ------------------------------------------------
    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        renew_every = self.config.lease_s / 3
        next_renew = loop.time() + renew_every
        next_beat = loop.time()
        while self._serving:
            self._wake.clear()  # before looking: a later order wakes the wait below
            now = loop.time()
            try:
                due = await self._expire_due()
                if now >= next_beat:
                    await self._heartbeat()
                    next_beat = now + self.config.heartbeat_s
                if now >= next_renew:
                    await self._renew()
                    next_renew = now + renew_every
            except Exception:
                log.exception("paper venue %s: timer step failed", self.name)
                due = None
            wait = min(next_beat, next_renew) - loop.time()
            if due is not None:
                wait = min(wait, (due - datetime.now(UTC)).total_seconds())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(min(wait, MAX_TIMER_WAIT_S), 0.001))

    async def _expire_due(self) -> datetime | None:
        """Expire the orders that are due; return when the next one is (None: none, or
        the store is down: retried within a second)."""
        while (due := self._next_expiry()) is not None and due <= datetime.now(UTC):
            try:
                expired = await self.commit(self.matcher.expire)
            except Unavailable:
                return None
            if expired < MAX_ORDERS_PER_STEP:
                due = self._next_expiry()
                return None if due is not None and due <= datetime.now(UTC) else due
        return due

    def _next_expiry(self) -> datetime | None:
        times = [
            record.valid_until
            for symbol in self.state.symbols_with_live_orders()
            for record in self.state.live_orders(symbol)
            if record.valid_until is not None
        ]
        return min(times, default=None)

    async def _heartbeat(self) -> None:
        async with self._committer.lock:
            now = datetime.now(UTC)
            for account in self.state.accounts.values():
                beat = PaperEvent(account=account.account, seq=account.event_seq, at=now)
                await self._publish((beat,))

    async def _renew(self) -> None:
        try:
            await self._lease.renew()
        except LeaseLost as exc:
            self._halt(str(exc))
        except Exception as exc:
            log.warning("paper venue %s: lease renewal failed: %r", self.name, exc)
