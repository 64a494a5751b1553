"""The paper venue's journal: a JetStream stream of every state change, in order.

Each :class:`~intentbus.venues.paper.records.JournalEntry` is one message; it is
published with ``Nats-Expected-Last-Sequence`` set to the last entry this server knows,
so a second writer (a stalled server that lost its lease) can never append: its write
fails with :class:`JournalConflict` and it halts. Kept forever (no age limit): the
journal *is* the venue's state, replayed at start.
"""

from __future__ import annotations

from functools import partial

import msgspec
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.errors import APIError

from intentbus.bus import StreamSpec, ensure_stream
from intentbus.bus.streams import with_api_retries
from intentbus.venues.paper.protocol import PaperSubjects
from intentbus.venues.paper.records import JournalEntry, VenueState

WRONG_LAST_SEQUENCE = 10071
REPLAY_WAIT_S = 5.0


class JournalConflict(RuntimeError):
    """Raise when another writer appended to the journal: this server must stop writing."""


class JournalUnavailable(RuntimeError):
    """Raise when an entry could not be stored (nothing changed)."""


class Journal:
    """Append entries to, and replay, one paper venue's journal stream."""

    def __init__(self, js: JetStreamContext, subjects: PaperSubjects) -> None:
        self._js = js
        self._subjects = subjects
        self._encoder = msgspec.json.Encoder()
        self._decoder = msgspec.json.Decoder(JournalEntry)

    async def open(self) -> None:
        """Create the stream if needed (idempotent)."""
        spec = StreamSpec(
            name=self._subjects.journal_stream,
            subjects=(self._subjects.journal_subject,),
            max_age_s=0.0,
            max_bytes=-1,
            description=f"Journal of paper venue {self._subjects.name}",
        )
        await with_api_retries(partial(ensure_stream, self._js, spec))

    async def replay(self, state: VenueState) -> int:
        """Apply every stored entry to ``state``; return how many there were."""
        info = await with_api_retries(partial(self._js.stream_info, self._subjects.journal_stream))
        last = info.state.last_seq
        if last == 0:
            return 0
        sub = await self._js.subscribe(
            self._subjects.journal_subject,
            stream=self._subjects.journal_stream,
            ordered_consumer=True,
        )
        count = 0
        try:
            while state.journal_seq < last:
                msg = await sub.next_msg(timeout=REPLAY_WAIT_S)
                state.apply(self._decoder.decode(msg.data), msg.metadata.sequence.stream)
                count += 1
        finally:
            await sub.unsubscribe()
        return count

    async def append(self, entry: JournalEntry, last_seq: int) -> int:
        """Store ``entry`` after the entry at ``last_seq``; return its sequence number."""
        headers = {"Nats-Expected-Last-Sequence": str(last_seq)}
        payload = self._encoder.encode(entry)
        try:
            ack = await self._js.publish(
                self._subjects.journal_subject,
                payload,
                stream=self._subjects.journal_stream,
                headers=headers,
            )
        except APIError as exc:
            if exc.err_code == WRONG_LAST_SEQUENCE:
                raise JournalConflict(
                    f"another server wrote to the journal of paper venue "
                    f"{self._subjects.name} (expected last entry {last_seq})"
                ) from None
            raise
        except (NatsTimeoutError, TimeoutError):
            # Stored or not? Look: the entry after ``last_seq`` is either ours or absent.
            return await self._settle(payload, last_seq)
        return ack.seq

    async def _settle(self, payload: bytes, last_seq: int) -> int:
        """Return the sequence of ``payload`` if it was stored after ``last_seq``; else raise."""
        info = await self._js.stream_info(self._subjects.journal_stream)
        stored = info.state.last_seq
        if stored == last_seq:
            raise JournalUnavailable("the journal did not confirm the write (not stored)")
        if stored == last_seq + 1:
            raw = await self._js.get_msg(self._subjects.journal_stream, seq=stored)
            if raw.data == payload:
                return stored
        raise JournalConflict(
            f"the journal of paper venue {self._subjects.name} holds entries this server "
            f"did not write (expected {last_seq}, found {stored})"
        )
