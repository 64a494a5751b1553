"""The executor runtime: own partitions of a venue's intents, take them in, follow orders.

Intents are stored by partition (a server-side hash of the position id). Each replica
owns some partitions (:mod:`intentbus.executor.partitions`) and runs one durable
consumer per owned partition, its messages handled per position in stream order by the
:class:`~intentbus.executor.intake.IntentIntake`; one
:class:`~intentbus.executor.follower.OrderFollower` per replica follows the orders. A
partition taken over from a dead replica starts at the old consumer's ack floor, so the
intents it left unacked come back at once, in order, to the new owner only; the new
owner adopts the partition's working orders and asks the venue about them first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from functools import partial

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from intentbus.bus import (
    Disposition,
    MessageConsumer,
    PositionClient,
    PositionReads,
    Publisher,
    Replies,
    Topology,
    check_token,
    provision,
    waits,
)
from intentbus.bus.control import HaltStore, HaltView, HeartbeatLoop
from intentbus.bus.streams import with_api_retries
from intentbus.executor.base import BaseExecutor, VenueContext
from intentbus.executor.claims import ClaimStore
from intentbus.executor.follower import OrderFollower
from intentbus.executor.guards import Guard, RiskCaps
from intentbus.executor.halt_sweep import HaltSweep
from intentbus.executor.intake import IntentIntake
from intentbus.executor.kv import ensure_bucket
from intentbus.executor.orders import WorkingOrderStore
from intentbus.executor.partitions import (
    Acquired,
    Lost,
    OwnershipSettings,
    PartitionOwnership,
    default_owner,
)
from intentbus.executor.reconcile import Reconciler
from intentbus.executor.settings import (
    CLAIMS_BUCKET,
    ORDERS_BUCKET,
    RuntimeSettings,
    RuntimeStats,
)
from intentbus.executor.traced import TracedVenue
from intentbus.schemas import ExecutionIntent

log = logging.getLogger(__name__)

__all__ = ["CLAIMS_BUCKET", "ORDERS_BUCKET", "ExecutorRuntime", "RuntimeSettings", "RuntimeStats"]


class ExecutorRuntime:
    """Run one venue executor replica."""

    def __init__(
        self,
        nc: Client,
        js: JetStreamContext,
        topology: Topology,
        executor: BaseExecutor,
        *,
        book: str | None = None,
        settings: RuntimeSettings | None = None,
        ownership: OwnershipSettings | None = None,
        owner: str | None = None,
        caps: RiskCaps | None = None,
    ) -> None:
        self.venue = check_token("venue", executor.venue)
        self.book = check_token("book", book) if book is not None else None
        self.owner = owner or default_owner()
        self.settings = settings or RuntimeSettings()
        self.stats = RuntimeStats()
        self._nc = nc
        self._js = js
        self._topology = topology
        self._executor = TracedVenue(executor)  # a span and a duration per venue call
        self._ownership = PartitionOwnership(
            js,
            topology,
            venue=self.venue,
            book=self.book,
            owner=self.owner,
            settings=ownership or OwnershipSettings(),
        )
        self._replies = Replies(nc)
        self._publisher = Publisher(js, topology, replies=self._replies)
        self._follower: OrderFollower | None = None
        self._intake: IntentIntake | None = None
        self._orders: WorkingOrderStore | None = None
        self._consumers: dict[int, tuple[asyncio.Event, asyncio.Task[None]]] = {}
        self._caps = caps or RiskCaps()
        self._halt: HaltStore | None = None
        self._heartbeat: HeartbeatLoop | None = None
        self._halt_sweep = HaltSweep(self.venue, self.stats)
        self._reconciler: Reconciler | None = None

    @property
    def follower(self) -> OrderFollower:
        """Return the order follower (after :meth:`run` started)."""
        if self._follower is None:
            raise RuntimeError("the runtime is not started")
        return self._follower

    @property
    def partitions(self) -> list[int]:
        """Return the partitions this replica consumes now."""
        return sorted(self._consumers)

    async def _start(self) -> None:
        await provision(self._js, self._topology)
        bucket = self._topology.bucket
        claims_kv = await ensure_bucket(self._js, bucket(CLAIMS_BUCKET))
        claims = ClaimStore(
            claims_kv, replies=self._replies, bucket=bucket(CLAIMS_BUCKET), nc=self._nc
        )
        orders = WorkingOrderStore(await ensure_bucket(self._js, bucket(ORDERS_BUCKET)))
        self._orders = orders
        follower = OrderFollower(
            self._executor,
            self._publisher,
            claims,
            orders,
            owner=self.owner,
            settings=self.settings,
            stats=self.stats,
        )
        self._follower = follower
        self._halt = await HaltStore.open(self._js, self._topology)
        self._halt_sweep.bind(self._halt, follower)
        self._halt.on_change(self._halt_sweep.switch_changed)
        await self._halt.watch()  # the switches are known before any intent is taken
        self._intake = IntentIntake(
            self._executor,
            self._publisher,
            # the reads of position lanes that reach them together share one request
            PositionReads(PositionClient(self._nc, self._topology, replies=self._replies)),
            claims,
            orders,
            follower,
            owner=self.owner,
            settings=self.settings,
            stats=self.stats,
            guard=Guard(self._halt, self._caps, self.stats),
            on_error=self._last_error,
        )
        self._reconciler = Reconciler(
            self._executor,
            self._js,
            self._topology,
            PositionClient(self._nc, self._topology),
            follower,
            venue=self.venue,
            book=self.book,
            busy=self._intake.busy,
            settings=self.settings,
            stats=self.stats,
        )
        follower.on_gap = partial(self._reconciler.request, "reconnect")
        self._executor.set_event_sink(follower.on_event)
        await self._executor.start(
            VenueContext(nc=self._nc, js=self._js, topology=self._topology, replies=self._replies)
        )
        await self._ownership.start()
        self._heartbeat = HeartbeatLoop(
            self._js,
            self._topology,
            service="executor",
            instance=self.owner,
            venue=self.venue,
            book=self.book or "",
            interval_s=self.settings.heartbeat_s,
            distribution="intentbus-executor",
        )
        await self._heartbeat.start()

    async def run(self, stop: asyncio.Event) -> None:
        """Own partitions, consume and follow until ``stop`` is set; then hand everything over."""
        await self._start()
        follower = self.follower
        following = asyncio.Event()
        follow = asyncio.create_task(follower.run(following))
        reconciled = False
        try:
            async for change in self._ownership.changes(stop):
                if isinstance(change, Acquired):
                    await self._acquired(change.partition, change)
                    if self._reconciler is not None and not reconciled:
                        reconciled = True  # once, after the first partitions are acquired
                        self._reconciler.request("start")
                elif isinstance(change, Lost):  # taken over: the lease is not ours to free
                    await self._released(change.partition, hand_over=False)
                else:
                    await self._released(change.partition)
        finally:
            # All at once: each consumer finishes its pending fetch before it returns.
            await asyncio.gather(
                *(self._released(p, hand_over=False) for p in list(self._consumers))
            )
            if self._reconciler is not None:
                await self._reconciler.stop()
            with contextlib.suppress(Exception):
                await self._ownership.stop()
            for closing in (self._heartbeat, self._halt):
                if closing is not None:
                    await closing.stop()
            following.set()
            await follow
            with contextlib.suppress(Exception):
                await self._executor.stop()

    @property
    def reconciler(self) -> Reconciler:
        """Return the reconciler (after :meth:`run` started)."""
        if self._reconciler is None:
            raise RuntimeError("the runtime is not started")
        return self._reconciler

    @property
    def halt(self) -> HaltView:
        """Return the halt switches as this replica sees them (after :meth:`run` started)."""
        if self._halt is None:
            raise RuntimeError("the runtime is not started")
        return self._halt

    def _last_error(self, error: str) -> None:
        if self._heartbeat is not None:
            self._heartbeat.last_error = error[:500]

    async def _acquired(self, partition: int, change: Acquired) -> None:
        """Adopt the partition's working orders, then consume its intents."""
        follower = self.follower
        # Read-your-writes covers what the previous owner published.
        last = []
        for stream in (self._topology.results_stream, self._topology.fills_stream):
            info = await with_api_retries(partial(self._js.stream_info, stream))
            last.append(info.state.last_seq)
        follower.raise_floor(*last)
        assert self._orders is not None
        for working in await self._orders.in_partition(self.venue, partition):
            if follower.tracked(working.plan.client_order_id) is None:
                self.stats.adopted += 1
                await follower.follow(working, None)
        # a switch set while no one followed them
        self._halt_sweep.sweep("adopted under a halt switch")
        done = asyncio.Event()
        consumer: MessageConsumer[ExecutionIntent] = MessageConsumer(
            self._js,
            self._topology,
            change.spec,
            ExecutionIntent,
            partial(self._deliver, partition=partition),
            key_of=lambda intent: intent.position_id,
            batch=self.settings.batch,
            fetch_timeout_s=self.settings.fetch_timeout_s,
        )
        task = asyncio.create_task(self._consume(consumer, done, partition))
        self._consumers[partition] = (done, task)

    async def _deliver(self, intent: ExecutionIntent, msg: Msg, partition: int) -> Disposition:
        assert self._intake is not None
        return await self._intake.deliver(
            intent, msg, partition, lambda: partition in self._consumers
        )

    async def _consume(
        self, consumer: MessageConsumer[ExecutionIntent], done: asyncio.Event, partition: int
    ) -> None:
        delay = self.settings.retry_s
        while not done.is_set():
            try:
                await consumer.run(done)
            except Exception as exc:
                # A server restart, a timeout, or a consumer deleted by the replica that
                # took the partition over (then the ownership reports it lost, which sets
                # ``done``): retry until one of them is known, never stop consuming alone.
                log.warning("consumer of partition %d failed (%r); restarting it", partition, exc)
                self._last_error(f"consumer of partition {partition}: {exc!r}")
            await waits.event_set(done, delay)  # ended early: the connection closed
            delay = min(delay * 2, self.settings.retry_max_s)

    async def _released(self, partition: int, *, hand_over: bool = True) -> None:
        """Drain the partition's consumer, stop following its orders, hand it over."""
        found = self._consumers.pop(partition, None)
        if found is not None:
            done, task = found
            done.set()
            await task
        self.follower.forget(partition)
        if hand_over:
            await self._ownership.release(partition)
