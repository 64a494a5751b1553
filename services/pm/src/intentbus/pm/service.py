"""The live PM: on each closed candle, plan every open position and publish the intents.

* Candles come from the ``CANDLES`` stream through a durable pull consumer named after
  the PM (``[pm] name``; one running PM per name), one candle at a time, acknowledged
  only after its intents are published and their results seen (or their deadline passed
  plus ``result_wait_s``). A restarted PM recreates the durable at the first candle it
  had not acknowledged and resumes there at once.
* Warm-up: before the first decision the PM folds every candle the stream holds before
  that point into its indicators (no planning), so the first decision uses a full EMA
  stack, and the features equal an uninterrupted run's. A fresh durable starts after the
  last candle stored: history warms the PM up, it is never traded on.
* Positions are read from the ledger (``PositionClient``) with read-your-writes: a
  position is read at least at the ``RESULTS`` sequence of its last result.
* Intent ids derive from (book, position, tick, action): a restarted PM that decides a
  tick again publishes the same ids, which the stream drops as duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from intentbus.bus import (
    BusSettings,
    LedgerError,
    LedgerUnavailable,
    PositionClient,
    Publisher,
    Topology,
    connect,
    provision,
)
from intentbus.pm.config import PMConfig
from intentbus.pm.engine import Refusal, TickEngine
from intentbus.pm.indicators import Features, FeatureTracker
from intentbus.pm.results import ResultsWatcher
from intentbus.pm.warmup import fold_stored, resume_point
from intentbus.schemas import ExecutionIntent, Position, decoder
from intentbus.schemas.candle import Candle

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class PMService:
    """Run the tick loop; the constructor does no I/O (``start`` connects)."""

    def __init__(
        self,
        settings: BusSettings,
        topology: Topology,
        config: PMConfig,
        *,
        clock: Clock = _utcnow,
        engine: TickEngine | None = None,
    ) -> None:
        self.settings = settings
        self.topology = topology
        self.config = config
        self._clock = clock
        self._engine = engine
        self._trackers: dict[tuple[str, str, str], FeatureTracker] = {}
        self._decoder = decoder(Candle)
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._results: ResultsWatcher | None = None
        self._sub: JetStreamContext.PullSubscription | None = None
        # The latest intents and refusals, for operators and tests (bounded).
        self.published: deque[ExecutionIntent] = deque(maxlen=10_000)
        self.refusals: deque[Refusal] = deque(maxlen=10_000)
        self.ticks = 0

    @property
    def durable(self) -> str:
        """Return the durable consumer name on the CANDLES stream."""
        return self.config.name

    async def start(self) -> None:
        """Connect, provision, follow results, warm up and bind the candle consumer."""
        engine = self._engine or TickEngine.from_config(self.config)
        self._engine = engine
        self._nc = await connect(self.settings)
        self._js = self._nc.jetstream()
        await provision(self._js, self.topology)
        lookback = self.config.max_ttl * 2 + timedelta(seconds=self.config.result_wait_s)
        self._results = ResultsWatcher(self._js, self.topology, {v for v, _ in self.config.markets})
        await self._results.start(self._clock() - lookback)
        start_seq = await self._warm_up()
        await self._bind(start_seq)

    def _filters(self) -> list[str]:
        return sorted(
            self.topology.candles_filter(venue, None, timeframe)
            for venue, timeframe in self.config.markets
        )

    async def _warm_up(self) -> int:
        """Fold stored candles up to where the durable resumes; return that sequence."""
        assert self._js is not None
        resume = await resume_point(self._js, self.topology, self.durable)

        def fold(msg: Msg) -> bool:
            candle = self._decode(msg)
            if candle is None:
                return False
            self._tracker(candle).update(candle)
            return True

        folded = await fold_stored(self._js, self.topology, resume, self._filters(), fold)
        log.info("warmed up on %d stored candles; resuming at sequence %d", folded, resume)
        return resume

    async def _bind(self, start_seq: int) -> None:
        assert self._js is not None
        config = ConsumerConfig(
            durable_name=self.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=max(start_seq, 1),
            ack_wait=60.0,
            max_ack_pending=1,
            filter_subjects=self._filters(),
        )
        # One PM per name: a restarted PM recreates its durable at the first candle it had
        # not acknowledged, so a candle in flight when it died comes back at once instead
        # of after the ack wait.
        with contextlib.suppress(NotFoundError):
            await self._js.delete_consumer(self.topology.candles_stream, self.durable)
        await self._js.add_consumer(self.topology.candles_stream, config=config)
        self._sub = await self._js.pull_subscribe_bind(
            self.durable, stream=self.topology.candles_stream
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Process candles until ``stop`` is set."""
        assert self._sub is not None
        while not stop.is_set():
            try:
                msgs = await self._sub.fetch(1, timeout=1.0)
            except NatsTimeoutError:
                continue
            for msg in msgs:
                await self._handle(msg, stop)

    async def stop(self) -> None:
        """Stop following results and close the connection.

        Everything the PM publishes is acknowledged before it goes on, so there is
        nothing to flush (a drain would wait on the pull subscription's fetch).
        """
        if self._results is not None:
            await self._results.stop()
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.close()

    def _decode(self, msg: Msg) -> Candle | None:
        try:
            return self._decoder.decode(msg.data)
        except msgspec.MsgspecError as exc:
            log.warning("refused candle at %s: %s", msg.subject, exc)
            return None

    def _tracker(self, candle: Candle) -> FeatureTracker:
        key = (candle.venue, candle.symbol, candle.timeframe)
        return self._trackers.setdefault(key, FeatureTracker(self.config.features))

    async def _handle(self, msg: Msg, stop: asyncio.Event) -> None:
        candle = self._decode(msg)
        if candle is None:
            await msg.term()
            return
        features = self._tracker(candle).update(candle)
        assert self._engine is not None
        if features is None or not features.warm or not self._engine.books_for(candle):
            await msg.ack()
            return
        while not stop.is_set():
            try:
                await self._tick(candle, features, msg)
                break
            except (LedgerUnavailable, LedgerError) as exc:
                # Reading positions failed (no ledger, or it has not caught up yet).
                log.warning("ledger not ready for tick %s: %s; retrying", candle.candle_id, exc)
                await msg.in_progress()
                await asyncio.sleep(1.0)
        else:
            return
        await msg.ack()
        self.ticks += 1

    async def _tick(self, candle: Candle, features: Features, msg: Msg) -> None:
        assert self._nc is not None
        assert self._js is not None
        assert self._results is not None
        assert self._engine is not None
        client = PositionClient(self._nc, self.topology)
        positions = await self._positions(client, candle.venue)
        plan = self._engine.plan(features, positions, self._clock())
        refused_open: set[str] = set()
        for opened in plan.opens:
            try:
                await client.open(opened)
            except LedgerError as exc:  # e.g. the book already has an open position there
                refused_open.add(opened.position_id)
                log.warning("ledger refused to open %s: %s", opened.position_id, exc)
        intents = []
        for intent in plan.intents:
            if intent.position_id in refused_open:
                plan.refusals.append(
                    Refusal(
                        book_id=intent.book_id,
                        position_id=intent.position_id,
                        action=intent.action,
                        intent_id=intent.intent_id,
                        reason="ledger_refused_open",
                        tick=f"{candle.timeframe}-{int(candle.open_time.timestamp())}",
                    )
                )
            else:
                intents.append(intent)
        for refusal in plan.refusals:
            log.info(
                "refused %s %s of %s: %s (tick %s)",
                refusal.action.value,
                refusal.intent_id,
                refusal.position_id,
                refusal.reason,
                refusal.tick,
            )
        self.refusals.extend(plan.refusals)
        publisher = Publisher(self._js, self.topology)
        for intent in intents:
            await publisher.intent(intent)
            self.published.append(intent)
        if intents:
            grace = timedelta(seconds=self.config.result_wait_s)
            until = max(i.valid_until for i in intents) + grace
            missing = await self._results.wait_for(
                [i.intent_id for i in intents], until, heartbeat=msg.in_progress
            )
            if missing:
                log.warning("no result by the deadline for %s", ", ".join(sorted(missing)))

    async def _positions(self, client: PositionClient, venue: str) -> list[Position]:
        """Return the venue's positions, each at least at the sequence of its last result."""
        assert self._results is not None
        reply = await client.list(venue=venue)
        fresh = []
        for position in reply.positions:
            needed = self._results.position_seq(position.position_id)
            if needed > reply.results_seq and not position.closed:
                again = await client.get(position.position_id, min_results_seq=needed)
                fresh.append(again or position)
            else:
                fresh.append(position)
        return fresh
