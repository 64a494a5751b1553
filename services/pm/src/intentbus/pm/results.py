"""Follow the RESULTS stream: which intents have their final result, at which sequence.

The PM waits for the results of a tick's intents before it acknowledges the candle, and
reads each position from the ledger at least at the sequence of that position's last
result (read-your-writes), so the next tick plans on a position that includes them.
Only final results count (``intentbus.result.*``); order updates on the same subjects
are passed over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta

import msgspec
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from intentbus.bus import Topology

log = logging.getLogger(__name__)
RESULT_TAG_PREFIX = "intentbus.result."
REMEMBERED = 100_000  # results kept (oldest forgotten first): far more than one lookback


class _ResultHead(msgspec.Struct):
    """The fields of any result version the PM needs (decoders ignore the rest)."""

    schema: str
    intent_id: str = ""
    position_id: str = ""
    status: str = ""


class ResultsWatcher:
    """Remember the stream sequence of each intent's final result, from ``since`` on."""

    def __init__(self, js: JetStreamContext, topology: Topology, venues: Iterable[str]) -> None:
        self._js = js
        self._topology = topology
        self._venues = sorted(set(venues))
        self._decoder = msgspec.json.Decoder(_ResultHead)
        self._done: dict[str, tuple[int, str]] = {}
        self._position_seq: dict[str, int] = {}
        self._changed = asyncio.Event()
        self._subs: list[object] = []

    async def start(self, since: datetime) -> None:
        """Subscribe (ordered, from ``since``) to every configured venue's results."""
        for venue in self._venues:
            sub = await self._js.subscribe(
                self._topology.results_filter(venue),
                stream=self._topology.results_stream,
                ordered_consumer=True,
                deliver_policy=DeliverPolicy.BY_START_TIME,
                config=ConsumerConfig(opt_start_time=since),
                cb=self._on_message,
            )
            self._subs.append(sub)

    async def stop(self) -> None:
        """Unsubscribe."""
        for sub in self._subs:
            unsubscribe = getattr(sub, "unsubscribe", None)
            if unsubscribe is not None:
                await unsubscribe()
        self._subs.clear()

    async def _on_message(self, msg: Msg) -> None:
        try:
            head = self._decoder.decode(msg.data)
        except msgspec.MsgspecError:
            return
        if not head.schema.startswith(RESULT_TAG_PREFIX) or not head.intent_id:
            return
        seq = msg.metadata.sequence.stream
        self._done[head.intent_id] = (seq, head.status)
        if len(self._done) > REMEMBERED:
            del self._done[next(iter(self._done))]
        if head.position_id:
            self._position_seq[head.position_id] = max(
                seq, self._position_seq.get(head.position_id, 0)
            )
        self._changed.set()

    def result_of(self, intent_id: str) -> tuple[int, str] | None:
        """Return (stream sequence, status) of the intent's final result, if seen."""
        return self._done.get(intent_id)

    def position_seq(self, position_id: str) -> int:
        """Return the sequence of the last result seen for the position (0: none)."""
        return self._position_seq.get(position_id, 0)

    async def wait_for(
        self,
        intent_ids: Iterable[str],
        until: datetime,
        heartbeat: Callable[[], Awaitable[None]] | None = None,
        heartbeat_s: float = 10.0,
    ) -> set[str]:
        """Wait until every intent has a result or ``until`` passes; return those missing."""
        wanted = set(intent_ids)
        beat = datetime.now(UTC)
        while True:
            # Cleared before the check, with no await between: a result that arrives
            # after the check sets the event again and wakes the wait below.
            self._changed.clear()
            missing = {i for i in wanted if i not in self._done}
            now = datetime.now(UTC)
            if not missing or now >= until:
                return missing
            if heartbeat is not None and now - beat >= timedelta(seconds=heartbeat_s):
                await heartbeat()
                beat = now
            left = min((until - now).total_seconds(), heartbeat_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=max(left, 0.01))
