"""Apply one stream to the store exactly once, in stream order, a fetched batch per COMMIT.

The messages of one fetched batch are applied, one after another, in one transaction
that also stores each message's id and the stream sequence; they are settled only after
that commit, and the applied sequence that read-your-writes waits on advances only then.
An id already stored is acknowledged and changes nothing.

The ledger consumes every message of its stream, so sequences have no holes: a message
beyond the next one means deliveries were lost in flight (a dropped connection) and
would come back only after the ack wait. They are read from the stream and applied
first, in order (those aged out of the stream count as handled).

A :class:`~intentbus.ledger.applier.Waiting` result (its fills not applied yet) stops
the batch there; its message then waits for ``ready`` (bounded), is applied if ready,
else is nak'd for redelivery with everything after it: nothing is applied out of order.

If the store fails, the shared :class:`Halt` stops both streams (fail-stop): nothing of
the failed batch or after it is applied, those messages stay unacknowledged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import msgspec
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from intentbus.bus import Ack, ConsumerSpec, Disposition, MessageConsumer, Nak, Term, Topology
from intentbus.ledger.api import AppliedProgress
from intentbus.ledger.applier import (
    ApplyOne,
    Duplicate,
    Outcome,
    Rejected,
    Waiting,
    apply_message,
    apply_messages,
)
from intentbus.ledger.storage import Transactions
from intentbus.schemas import decoder

log = logging.getLogger(__name__)

REDELIVERY_S = 1.0
Ready = Callable[[Waiting], Awaitable[bool]]

_raw_decoder = decoder(msgspec.Raw)


class Halt:
    """Stop every consumer of the ledger at the first store failure."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.failure: BaseException | None = None

    def fail(self, exc: BaseException) -> None:
        """Record the first failure and stop."""
        if self.failure is None:
            self.failure = exc
        self.event.set()


class OrderedApplier:
    """Consume one stream's durable and apply each message once, in stream order."""

    def __init__(
        self,
        *,
        spec: ConsumerSpec,
        store: Transactions,
        apply: ApplyOne,
        halt: Halt,
        progress: AppliedProgress,
        ready: Ready | None = None,
    ) -> None:
        self.spec = spec
        self.progress = progress
        self.applied = 0
        self.duplicates = 0
        self.rejected = 0
        self.waits = 0
        self.batches = 0
        self._store = store
        self._apply = apply
        self._halt = halt
        self._ready = ready
        self._js: JetStreamContext | None = None
        self._committed: dict[int, Outcome] = {}  # this batch: stream seq -> its outcome
        self._stalled = False  # this batch: a result waited in vain, nak the rest at once

    def consumer(self, js: JetStreamContext, topology: Topology) -> MessageConsumer[msgspec.Raw]:
        """Return the consumer loop of this stream."""
        self._js = js
        return MessageConsumer(
            js, topology, self.spec, msgspec.Raw, self.on_message, before_batch=self.before_batch
        )

    async def before_batch(self, msgs: list[Msg]) -> None:
        """Apply a fetched batch in one transaction, before any of it is settled.

        Messages that are not JSON are left out: the consumer dead-letters them without
        calling :meth:`on_message`. The batch stops at a gap or a waiting result.
        """
        self._committed.clear()
        self._stalled = False
        if self._halt.failure is not None:
            return
        batch: list[tuple[bytes, int]] = []
        next_seq = self.progress.seq + 1
        for msg in msgs:
            seq = msg.metadata.sequence.stream
            if seq > next_seq:
                break  # earlier messages were lost in flight: on_message fills the gap first
            try:
                _raw_decoder.decode(msg.data)
            except msgspec.MsgspecError:
                continue
            batch.append((msg.data, seq))
            next_seq = max(next_seq, seq + 1)
        if not batch:
            return
        try:
            outcomes = await apply_messages(self._store, self._apply, batch)
        except Exception as exc:
            log.exception(
                "could not apply a batch of %d from %s; halting", len(batch), self.spec.stream
            )
            self._halt.fail(exc)
            return
        self.batches += 1
        self._committed = {
            seq: outcome
            for (_, seq), outcome in zip(batch, outcomes, strict=False)
            if not isinstance(outcome, Waiting)
        }

    async def on_message(self, _raw: msgspec.Raw, msg: Msg) -> Disposition:
        """Settle a message: its batch's outcome, or apply it (and any gap) now."""
        if self._halt.failure is not None:
            return Nak(delay_s=REDELIVERY_S, reason="ledger halted")
        seq = msg.metadata.sequence.stream
        outcome: Outcome | None = self._committed.pop(seq, None)  # committed with its batch
        if outcome is None:
            if self._stalled:
                return Nak(delay_s=REDELIVERY_S, reason="behind a result waiting for its fills")
            try:
                missing = await self._read_gap(seq)
            except Exception as exc:  # the stream cannot be read now: try again later
                return Nak(delay_s=REDELIVERY_S, reason=f"cannot fill a gap: {exc!r}")
            for gap_seq, data in [*missing, (seq, msg.data)]:
                outcome = await self._apply_when_ready(data, gap_seq)
                if outcome is None:
                    return Nak(delay_s=REDELIVERY_S, reason="ledger halted")
                if isinstance(outcome, Waiting):
                    self._stalled = True
                    log.warning(
                        "result %s waits for FILLS seq %d (applied %d); redelivering",
                        outcome.result_id, outcome.wanted_fills_seq, outcome.applied_fills_seq,
                    )  # fmt: skip
                    return Nak(delay_s=REDELIVERY_S, reason="waiting for fills")
                if gap_seq != seq:
                    self._count(outcome)
                    await self.progress.advance(gap_seq)
        await self.progress.advance(seq)
        if outcome is None:  # unreachable: the loop above ends with this message's outcome
            return Nak(delay_s=REDELIVERY_S, reason="not applied")
        if isinstance(outcome, Rejected):
            self.rejected += 1
            log.warning("rejected %s seq %d: %s", msg.subject, seq, outcome.error)
            return Term(outcome.error)
        self._count(outcome)
        return Ack()

    async def _apply_when_ready(self, data: bytes, seq: int) -> Outcome | None:
        """Apply one message; a waiting result waits (bounded) for ``ready``, then retries.

        Return ``None`` when the store failed (the ledger halts).
        """
        waited = False
        while True:
            try:
                outcome = await apply_message(self._store, self._apply, data, seq)
            except Exception as exc:
                log.exception("could not apply %s seq %d; halting", self.spec.stream, seq)
                self._halt.fail(exc)
                return None
            if not isinstance(outcome, Waiting) or waited or self._ready is None:
                return outcome
            self.waits += 1
            waited = True
            if not await self._ready(outcome):
                return outcome

    async def _read_gap(self, seq: int) -> list[tuple[int, bytes]]:
        """Read the messages before ``seq`` not handled yet (lost in flight) from the stream."""
        missing: list[tuple[int, bytes]] = []
        if self._js is None or seq <= self.progress.seq + 1:
            return missing
        stream = self.spec.stream
        first = (await self._js.stream_info(stream)).state.first_seq
        start = self.progress.seq + 1
        if first - 1 >= start:  # aged out of the stream: nothing left to apply, skip at once
            missing.append((min(first - 1, seq - 1), b""))
            start = first
        for gap_seq in range(start, seq):
            try:
                raw = await self._js.get_msg(stream, gap_seq)
            except NotFoundError:
                missing.append((gap_seq, b""))
                continue
            missing.append((gap_seq, raw.data or b""))
        if missing:
            log.warning("filled %s %d-%d lost in flight", stream, missing[0][0], missing[-1][0])
        return missing

    def _count(self, outcome: Outcome) -> None:
        # A rejected gap message is counted (and dead-lettered) when it is redelivered.
        if isinstance(outcome, Duplicate):
            self.duplicates += 1
        elif not isinstance(outcome, Rejected | Waiting):
            self.applied += 1
