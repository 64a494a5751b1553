"""A durable pull-consumer loop: decode, handle, then ack, nak with delay, or terminate.

A message that cannot be decoded or validated is copied to the dead-letter subject with
its error and terminated, and the loop goes on. A handler that keeps failing is
dead-lettered on its last delivery, so nothing disappears silently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

import msgspec
from nats.aio.msg import Msg
from nats.errors import ConnectionClosedError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.errors import ServiceUnavailableError

from intentbus import telemetry
from intentbus.bus.observe import ConsumeObserver
from intentbus.bus.publisher import publish_with_id
from intentbus.bus.pulls import pull
from intentbus.bus.streams import ConsumerSpec, ensure_consumer
from intentbus.bus.subjects import Topology
from intentbus.bus.waits import event_set
from intentbus.schemas import DeadLetter, decoder, encode

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ack:
    """Acknowledge: the message is done."""


@dataclass(frozen=True)
class Nak:
    """Ask for redelivery after ``delay_s``."""

    delay_s: float = 1.0
    reason: str = ""


@dataclass(frozen=True)
class Term:
    """Stop redelivery and dead-letter the message with ``error``."""

    error: str


Disposition = Ack | Nak | Term
Handler = Callable[[T, Msg], Awaitable[Disposition]]
KeyOf = Callable[[T], str]
# Awaited on each fetched batch before any of its messages is handled (the ledger
# commits a whole batch this way, then settles each message).
BatchHook = Callable[[list[Msg]], Awaitable[None]]


class MessageConsumer(Generic[T]):
    """Consume one durable pull consumer with a typed decoder built once.

    Messages that share a key (``key_of``) are handled one after another in stream
    order; different keys run concurrently, and the next batch is fetched while earlier
    ones are still being handled (at most ``batch`` messages in hand at once), a key's
    new messages queued behind its earlier ones. Under a backlog (the last pull was
    answered in full) the next pull waits until a quarter of ``batch`` is free or a key
    has run out of work: every settle would otherwise cost a pull request of one
    message. Without ``key_of`` each fetched batch is handled in order before the next
    fetch.
    """

    def __init__(
        self,
        js: JetStreamContext,
        topology: Topology,
        spec: ConsumerSpec,
        message_type: type[T],
        handler: Handler[T],
        *,
        key_of: KeyOf[T] | None = None,
        batch: int = 100,
        fetch_timeout_s: float = 0.5,
        before_batch: BatchHook | None = None,
    ) -> None:
        self._js = js
        self._topology = topology
        self._spec = spec
        self._decoder = decoder(message_type)
        self._handler = handler
        self._key_of = key_of
        self._batch = batch
        self._fetch_timeout_s = fetch_timeout_s
        self._before_batch = before_batch
        self.dead_lettered = 0
        self.handled = 0
        # keyed mode: messages fetched and not settled yet, and each key's last lane
        self._in_hand = 0
        self._tails: dict[str, asyncio.Task[None]] = {}
        self._room = asyncio.Event()
        self._min_pull = max(1, batch // 4)
        self._idle_key = False  # a key's lane ran out of work since the last pull
        self._backlog = False  # the last pull was answered in full: more is waiting
        self.pulls = 0
        self._observer = ConsumeObserver(spec)

    @property
    def spec(self) -> ConsumerSpec:
        """Return the consumer's declaration."""
        return self._spec

    async def run(self, stop: asyncio.Event) -> None:
        """Fetch and handle until ``stop`` is set."""
        await ensure_consumer(self._js, self._spec)
        sub = await self._js.pull_subscribe_bind(
            durable=self._spec.durable, stream=self._spec.stream
        )
        unavailable = 0
        try:
            while not stop.is_set():
                room = self._batch - self._in_hand
                small = room < self._min_pull and self._backlog and not self._idle_key
                if room <= 0 or small:
                    self._room.clear()  # keyed mode: wait until more is settled
                    await self._room.wait()
                    continue
                self._idle_key = False
                self.pulls += 1
                try:
                    msgs = await pull(sub, room, self._fetch_timeout_s)
                    self._backlog = len(msgs) >= room
                except (NatsTimeoutError, TimeoutError):
                    continue
                except ConnectionClosedError:
                    return
                except ServiceUnavailableError:
                    # No leader answered for the consumer: a cluster is electing one after
                    # a node died. Wait and fetch again (a deleted consumer stops its owner
                    # through ``stop``).
                    if not unavailable:
                        log.warning("consumer %s has no leader; waiting", self._spec.durable)
                    unavailable += 1
                    await event_set(stop, self._fetch_timeout_s)
                    continue
                unavailable = 0
                if msgs:
                    await self._handle_batch(msgs)
        finally:
            if self._tails:  # let every fetched message be settled
                await asyncio.gather(*self._tails.values(), return_exceptions=True)
            try:
                await sub.unsubscribe()
            except Exception:  # connection may already be closed at shutdown
                log.debug("unsubscribe failed", exc_info=True)

    async def _handle_batch(self, msgs: list[Msg]) -> None:
        self._observer.fetched(msgs)
        if self._before_batch is not None:
            await self._before_batch(msgs)
        decoded: list[tuple[Msg, T]] = []
        for msg in msgs:
            try:
                decoded.append((msg, self._decoder.decode(msg.data)))
            except msgspec.MsgspecError as exc:
                await self._dead_letter(msg, f"invalid message: {exc}")
        if self._key_of is None:
            for msg, item in decoded:
                await self._handle_one(msg, item)
            return
        lanes: dict[str, list[tuple[Msg, T]]] = {}
        for msg, item in decoded:
            lanes.setdefault(self._key_of(item), []).append((msg, item))
        for key, lane in lanes.items():
            self._in_hand += len(lane)
            task = asyncio.create_task(self._run_lane(key, lane, self._tails.get(key)))
            self._tails[key] = task

    async def _run_lane(
        self, key: str, lane: list[tuple[Msg, T]], after: asyncio.Task[None] | None
    ) -> None:
        try:
            if after is not None:  # the key's earlier messages first, in stream order
                await asyncio.wait([after])
            for msg, item in lane:
                try:
                    await self._handle_one(msg, item)
                except Exception:  # settling failed (connection lost): redelivered later
                    log.exception("could not settle %s", msg.subject)
                finally:
                    self._in_hand -= 1
                    self._room.set()
        finally:
            if self._tails.get(key) is asyncio.current_task():
                del self._tails[key]
                self._idle_key = True  # its next messages may be in the stream: pull
                self._room.set()

    async def _handle_one(self, msg: Msg, item: T) -> None:
        with self._observer.handling(msg, item) as span:
            try:
                outcome = await self._handler(item, msg)
            except Exception as exc:
                log.exception("handler failed on %s", msg.subject)
                telemetry.set_outcome(span, error=f"handler failed: {exc!r}")
                if msg.metadata.num_delivered >= self._spec.max_deliver:
                    await self._dead_letter(msg, f"handler failed on last delivery: {exc!r}")
                else:
                    await msg.nak(delay=min(2.0**msg.metadata.num_delivered, 30.0))
                return
            self.handled += 1
            self._observer.settled(span, outcome)
            if isinstance(outcome, Ack):
                await msg.ack()
            elif isinstance(outcome, Nak):
                await msg.nak(delay=outcome.delay_s)
            else:
                await self._dead_letter(msg, outcome.error)

    async def _dead_letter(self, msg: Msg, error: str) -> None:
        meta = msg.metadata
        letter = DeadLetter(
            subject=msg.subject,
            stream=meta.stream,
            stream_seq=meta.sequence.stream,
            consumer=meta.consumer or self._spec.durable,
            error=telemetry.scrub(error),
            received_at=datetime.now(UTC),
            payload=msg.data.decode("utf-8", errors="replace"),
            headers=dict(msg.headers or {}),
        )
        subject = self._topology.dead_letter_subject(meta.stream, self._spec.durable)
        try:
            msg_id = f"dl-{meta.stream}-{meta.sequence.stream}"
            await publish_with_id(self._js, subject, encode(letter), msg_id, kind="dead_letter")
        except Exception:
            log.exception("could not dead-letter %s; leaving it for redelivery", msg.subject)
            self._observer.dead_lettered(msg, error, stored=False)
            await msg.nak(delay=5.0)
            return
        self.dead_lettered += 1
        self._observer.dead_lettered(msg, error)
        await msg.term()
