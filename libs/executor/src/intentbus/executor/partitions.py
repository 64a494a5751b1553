"""Split a venue's intent partitions among its executor replicas, one owner each.

Every ``heartbeat_s`` each replica, under one lock:

1. writes its member record (``EXEC_MEMBERS``, ``<venue>.<scope>.<owner>``, expiring
   ``ttl_s`` later) and reads every member record and lease of its venue and scope;
2. reports ``Lost`` for each partition whose lease is not its own any more (someone took
   it over after it stalled past the TTL), and renews the others by compare-and-set;
3. computes the assignment (:func:`assign`) over the live members: a partition it holds
   that is no longer its own is reported ``Released``; the runtime stops and drains its
   consumer and calls :meth:`PartitionOwnership.release`, which frees the lease;
4. takes each partition assigned to it whose lease (``EXEC_PARTITIONS``,
   ``<venue>.<scope>.p<N>``) is free, expired, or held by a member that is not live,
   by compare-and-set with the next generation, then moves the consumer: it reads the
   ack floor of the previous generation's consumer, creates
   ``exec-<venue>-<scope>-p<N>-g<G>`` starting at floor + 1, deletes the older
   consumers and reports ``Acquired``.

Guarantees: a lease has one owner at a time (compare-and-set). Every intent the old
owner had not acked comes back at once, in stream order, to the new owner only; intents
acked above the old ack floor come back too (the runtime handles them idempotently).
The old consumer is deleted, so a stalled old owner can neither fetch nor ack: its fetch
fails (see :func:`consumer_gone`) before it even learns of its ``Lost``. A deleted
generation cannot come back either: specs start ``BY_START_SEQUENCE`` with no sequence,
so ``ensure_consumer`` refuses to re-create one.

Runtime contract: iterate :meth:`PartitionOwnership.changes` from one task. On
``Acquired`` run a ``MessageConsumer`` on its spec; on ``Released`` stop it, let its
in-hand intents settle, then ``release()``; on ``Lost`` stop it at once (no release:
the new owner gets its unacked intents). A consumer whose fetch fails with
:func:`consumer_gone` was taken over: treat it as ``Lost`` (the event follows within a
round). Before exiting, stop every consumer, then call :meth:`PartitionOwnership.stop`.

Caveats: liveness compares ``expires_at`` with the local wall clock, so hosts need
clocks within a fraction of ``ttl_s`` (NTP). Owner ids must be unique per process
(:func:`default_owner`). A partition with no earlier consumer left (first ever, or its
consumers deleted by hand) starts at the beginning of the stream. Never delete the
``EXEC_PARTITIONS`` bucket while executors run: it holds the generations. Lease writes
are compare-and-set and not retried blindly (a retry after a lost reply would look like
a conflict): the next round re-reads and decides. A book named ``all`` would share the
venue-wide scope's names.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import msgspec
from nats.js import JetStreamContext
from nats.js.errors import KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from intentbus.bus import waits
from intentbus.bus.subjects import Topology, check_token
from intentbus.executor.partitions_io import api, move_consumer, open_bucket, scan
from intentbus.executor.partitions_model import (
    MEMBERS_BUCKET,
    PARTITIONS_BUCKET,
    Acquired,
    Change,
    LeaseRecord,
    Lost,
    MemberRecord,
    OwnershipSettings,
    Released,
    assign,
    consumer_gone,
    default_owner,
    lease_decoder,
    member_decoder,
    scope_of,
)

__all__ = [
    "Acquired",
    "Change",
    "Lost",
    "OwnershipSettings",
    "PartitionOwnership",
    "Released",
    "consumer_gone",
    "default_owner",
]

log = logging.getLogger(__name__)
_CLOSED = object()


@dataclass
class _Held:
    generation: int
    released_at: float | None = None  # monotonic time Released was reported


class PartitionOwnership:
    """Own a share of one venue's (or book's) intent partitions; see the module doc.

    Changes come from :meth:`changes`, an async iterator, in the order they happened.
    """

    def __init__(
        self,
        js: JetStreamContext,
        topology: Topology,
        *,
        venue: str,
        book: str | None = None,
        owner: str,
        settings: OwnershipSettings | None = None,
    ) -> None:
        self._js = js
        self._topology = topology
        self.venue = check_token("venue", venue)
        self.book = book
        self.scope = check_token("book", scope_of(book))
        self.owner = check_token("owner", owner)
        self.settings = settings or OwnershipSettings()
        self._prefix = f"{self.venue}.{self.scope}"
        self._held: dict[int, _Held] = {}
        self._changes: asyncio.Queue[Change | object] = asyncio.Queue()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
        self._members: KeyValue | None = None
        self._leases: KeyValue | None = None

    # -- lifecycle -----------------------------------------------------------------
    async def start(self, *, heartbeat: bool = True) -> None:
        """Provision the buckets and start heartbeating (``heartbeat=False``: only by
        explicit :meth:`tick` calls, for tests and tools)."""
        retention = self.settings.member_retention_s
        members = self._topology.bucket(MEMBERS_BUCKET)
        self._members = await open_bucket(self._js, members, ttl_s=retention)
        self._leases = await open_bucket(self._js, self._topology.bucket(PARTITIONS_BUCKET))
        if heartbeat:
            self._task = asyncio.create_task(self._run(), name=f"ownership-{self.owner}")

    async def stop(self) -> None:
        """Free every lease and leave, so others take over at once.

        Call it after the runtime stopped and drained all its partition consumers.
        """
        await self._halt()
        async with self._lock:
            for partition in sorted(self._held):
                await self._free(partition)
            with contextlib.suppress(Exception):
                await self._kv(self._members).delete(self._member_key)

    async def abort(self) -> None:
        """Stop heartbeating without releasing anything, as a crash would: the others
        take the partitions over once the leases expire."""
        await self._halt()

    async def _halt(self) -> None:
        # nats-py swallows a cancellation that lands in a publish's flush, so the loop
        # also checks ``_closing``; awaiting the task means no round runs after this.
        self._closing.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._changes.put_nowait(_CLOSED)

    # -- what the runtime uses -------------------------------------------------------
    async def changes(self, stop: asyncio.Event | None = None) -> AsyncIterator[Change]:
        """Yield ``Acquired``/``Released``/``Lost`` until ``stop`` is set or we stop."""
        stopped = asyncio.ensure_future(stop.wait() if stop else asyncio.Event().wait())
        try:
            while True:
                getter = asyncio.ensure_future(self._changes.get())
                await asyncio.wait({getter, stopped}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    return
                item = getter.result()
                if item is _CLOSED:
                    return
                assert isinstance(item, Acquired | Released | Lost)
                yield item
        finally:
            stopped.cancel()

    async def release(self, partition: int) -> None:
        """Free ``partition``'s lease: its consumer is stopped and drained.

        Also valid for a partition not reported ``Released`` (its consumer failed, say):
        if it is still ours by the assignment, it is taken again with a new generation.
        """
        async with self._lock:
            await self._free(partition)

    def owns(self, partition: int, generation: int | None = None) -> bool:
        """Tell whether this replica holds ``partition`` (in that generation), as of the
        last round; a stalled replica learns otherwise late, but its fetch fails."""
        held = self._held.get(partition)
        return held is not None and generation in (None, held.generation)

    def owned(self) -> dict[int, int]:
        """Return the partitions held now (including draining ones) and their generation."""
        return {p: held.generation for p, held in self._held.items()}

    # -- the round -----------------------------------------------------------------
    async def _run(self) -> None:
        period = self.settings.heartbeat_s
        while not self._closing.is_set():
            started = time.monotonic()
            try:
                await self.tick()
            except Exception:
                log.exception("partition ownership round failed for %s", self.owner)
            await waits.event_set(self._closing, started + period - time.monotonic())

    async def tick(self) -> None:
        """Heartbeat, renew, detect losses, release and take: one round (module doc)."""
        async with self._lock:
            if self._closing.is_set():
                return
            members, leases = self._kv(self._members), self._kv(self._leases)
            now = time.time()
            alive = MemberRecord(owner=self.owner, expires_at=now + self.settings.ttl_s)
            await api(lambda: members.put(self._member_key, msgspec.json.encode(alive)))
            live = {self.owner} | {
                record.owner
                for record, _ in (await scan(members, self._prefix, member_decoder)).values()
                if record.expires_at > now
            }
            found = await scan(leases, self._prefix, lease_decoder)
            current = {int(key.rsplit(".p", 1)[1]): value for key, value in found.items()}
            await self._renew(current, now)
            mine = {
                p
                for p, owner in assign(live, self.settings.partitions, self._prefix).items()
                if owner == self.owner
            }
            for partition, held in sorted(self._held.items()):
                if partition not in mine and held.released_at is None:
                    held.released_at = time.monotonic()
                    self._changes.put_nowait(Released(partition, held.generation))
                elif held.released_at is not None and (
                    time.monotonic() - held.released_at > self.settings.drain_timeout_s
                ):
                    log.warning("partition %d not released in time: freeing it", partition)
                    await self._free(partition)
            for partition in sorted(mine - self._held.keys()):
                lease = current.get(partition)
                if lease is None or self._takeable(lease[0], live, now):
                    await self._take(partition, lease)

    async def _renew(self, current: dict[int, tuple[LeaseRecord, int]], now: float) -> None:
        leases = self._kv(self._leases)
        for partition, held in sorted(self._held.items()):
            record, revision = current.get(partition, (LeaseRecord(), 0))
            if record.owner != self.owner or record.generation != held.generation:
                del self._held[partition]
                self._changes.put_nowait(Lost(partition, held.generation))
                log.warning("lost partition %d (generation %d)", partition, held.generation)
                continue
            renewed = msgspec.structs.replace(record, expires_at=now + self.settings.ttl_s)
            try:
                await leases.update(
                    self._lease_key(partition), msgspec.json.encode(renewed), last=revision
                )
            except Exception:  # a write in between or a timeout: the next round decides
                log.warning("could not renew partition %d", partition, exc_info=True)

    def _takeable(self, lease: LeaseRecord, live: set[str], now: float) -> bool:
        if lease.owner == "" or lease.expires_at <= now:
            return True
        # A lease in our own name we do not hold is an earlier incarnation's: take it over.
        return lease.owner == self.owner or lease.owner not in live

    async def _take(self, partition: int, lease: tuple[LeaseRecord, int] | None) -> None:
        leases = self._kv(self._leases)
        key = self._lease_key(partition)
        before = lease[0] if lease else LeaseRecord()
        generation = before.generation + 1
        record = LeaseRecord(
            owner=self.owner,
            generation=generation,
            expires_at=time.time() + self.settings.ttl_s,
            consumer_generation=before.consumer_generation,
        )
        try:
            if lease is None:
                revision = await leases.create(key, msgspec.json.encode(record))
            else:
                revision = await leases.update(key, msgspec.json.encode(record), last=lease[1])
        except KeyWrongLastSequenceError:
            return  # someone else was faster
        try:
            spec = await move_consumer(
                self._js,
                self._topology,
                self.settings,
                venue=self.venue,
                book=self.book,
                scope=self.scope,
                partition=partition,
                generation=generation,
                earlier={before.generation, before.consumer_generation},
            )
            ready = msgspec.structs.replace(record, consumer_generation=generation)
            await leases.update(key, msgspec.json.encode(ready), last=revision)
        except Exception:
            log.exception("could not take partition %d over; freeing it", partition)
            await self._unlease(partition, generation)
            return
        self._held[partition] = _Held(generation)
        log.info("acquired partition %d (generation %d)", partition, generation)
        self._changes.put_nowait(Acquired(partition, generation, spec))

    async def _free(self, partition: int) -> None:
        """Forget ``partition`` and mark our lease of it free."""
        held = self._held.pop(partition, None)
        if held is not None:
            await self._unlease(partition, held.generation)

    async def _unlease(self, partition: int, generation: int) -> None:
        """Mark our lease of ``partition`` free, its generation kept for the next taker."""
        leases, key = self._kv(self._leases), self._lease_key(partition)
        for _ in range(3):  # re-read on a concurrent write (our renewal timed out, say)
            try:
                entry = await leases.get(key)
                record = lease_decoder.decode(entry.value or b"{}")
                if record.owner != self.owner or record.generation != generation:
                    return  # not ours any more
                free = msgspec.structs.replace(record, owner="", expires_at=0.0)
                await leases.update(key, msgspec.json.encode(free), last=entry.revision)
                log.info("released partition %d (generation %d)", partition, generation)
                return
            except KeyWrongLastSequenceError:
                continue
            except Exception:  # unreachable bucket: the lease expires by itself
                log.warning("could not free partition %d", partition, exc_info=True)
                return

    # -- helpers ---------------------------------------------------------------------
    @property
    def _member_key(self) -> str:
        return f"{self._prefix}.{self.owner}"

    def _lease_key(self, partition: int) -> str:
        return f"{self._prefix}.p{partition}"

    @staticmethod
    def _kv(bucket: KeyValue | None) -> KeyValue:
        if bucket is None:
            raise RuntimeError("PartitionOwnership.start() was not called")
        return bucket
