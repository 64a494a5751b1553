"""Read a stream in order with flat memory, and select intents from ``INTENTS``.

:func:`read_stream` walks a stream (optionally filtered, from a sequence or a time, up
to a sequence) through an ephemeral, unacknowledged consumer fetched in batches: at most
one batch is in memory at a time, however long the stream. If the consumer goes (a
server restart), the next one starts after the last sequence seen, like an ordered
consumer; nothing is read twice or skipped.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from intentbus.bus import Topology
from intentbus.bus.pulls import pull
from intentbus.schemas import ActionType, ExecutionIntent, decoder

_intent = decoder(ExecutionIntent)


async def read_stream(
    js: JetStreamContext,
    stream: str,
    subject: str | None = None,
    *,
    start_seq: int | None = None,
    start_time: datetime | None = None,
    end_seq: int | None = None,
    batch: int = 512,
    follow: bool = False,
) -> AsyncIterator[Msg]:
    """Yield the stream's messages in order; stop at ``end_seq`` or the end (unless ``follow``)."""
    info = await js.stream_info(stream)
    last = info.state.last_seq if end_seq is None else min(end_seq, info.state.last_seq)
    if not follow and (last == 0 or (start_seq or 0) > last):
        return
    next_seq = start_seq
    while True:
        config = ConsumerConfig(
            ack_policy=AckPolicy.NONE,
            filter_subject=subject,
            inactive_threshold=30.0,
            mem_storage=True,
            num_replicas=1,
        )
        if next_seq is not None:
            config.deliver_policy, config.opt_start_seq = DeliverPolicy.BY_START_SEQUENCE, next_seq
        elif start_time is not None:
            config.deliver_policy, config.opt_start_time = DeliverPolicy.BY_START_TIME, start_time
        sub = await js.pull_subscribe(subject or ">", stream=stream, config=config)
        try:
            while True:
                msgs = await pull(sub, batch, 1.0)  # what is pending now, else the next one
                if not msgs:
                    if follow:
                        continue
                    consumer = await sub.consumer_info()
                    if not consumer.num_pending:
                        return
                    continue
                for msg in msgs:
                    seq = msg.metadata.sequence.stream
                    if not follow and seq > last:
                        return
                    next_seq = seq + 1
                    yield msg
                if not follow and (next_seq or 0) > last:
                    return
                if not follow and msgs and msgs[-1].metadata.num_pending == 0:
                    return
        except NotFoundError:
            continue  # the consumer went away: start the next one after what we saw
        finally:
            with contextlib.suppress(Exception):  # the connection closed, or it is gone
                await sub.unsubscribe()


@dataclass(frozen=True, kw_only=True)
class Selection:
    """Which intents to take: a sequence or time range and venue/book/position/action."""

    venue: str | None = None
    book: str | None = None
    position: str | None = None
    actions: frozenset[ActionType] = frozenset()
    start_seq: int | None = None
    end_seq: int | None = None
    since: datetime | None = None
    until: datetime | None = None

    def subject(self, topology: Topology) -> str:
        """Return the narrowest stored-subject filter for the selection."""
        base = topology.intents_filter(self.venue, self.book if self.venue else None)
        if self.venue and self.book and self.position:
            return base.removesuffix(">") + f"*.{self.position}"
        return base

    def takes(self, intent: ExecutionIntent) -> bool:
        """Say whether a decoded intent is selected."""
        return (
            (self.venue is None or intent.token_chain == self.venue)
            and (self.book is None or intent.book_id == self.book)
            and (self.position is None or intent.position_id == self.position)
            and (not self.actions or intent.action in self.actions)
            and (self.until is None or intent.created_at <= self.until)
        )


@dataclass(frozen=True)
class Selected:
    """One selected intent and where it is stored."""

    seq: int
    intent: ExecutionIntent


async def selected_intents(
    js: JetStreamContext, topology: Topology, selection: Selection, *, batch: int = 512
) -> AsyncIterator[Selected]:
    """Yield the selected intents in stream order (messages that do not decode are passed)."""
    async for msg in read_stream(
        js,
        topology.intents_stream,
        selection.subject(topology),
        start_seq=selection.start_seq,
        start_time=selection.since,
        end_seq=selection.end_seq,
        batch=batch,
    ):
        try:
            intent = _intent.decode(msg.data)
        except Exception:
            continue  # refused by the executors too (see the dead letters)
        if selection.takes(intent):
            yield Selected(msg.metadata.sequence.stream, intent)


async def count_in_range(js: JetStreamContext, topology: Topology, selection: Selection) -> int:
    """Return how many stored messages the selection's range spans (for progress)."""
    info = await js.stream_info(topology.intents_stream)
    first = max(info.state.first_seq, selection.start_seq or 0)
    last = min(info.state.last_seq, selection.end_seq or info.state.last_seq)
    return max(0, last - first + 1)
