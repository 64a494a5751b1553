"""Per-position order across replicas: a lease and a cursor in one KV record.

One record per position (bucket ``EXEC_CURSORS``, key = position id, :class:`Slot`):

- the lease (``owner``, ``intent_id``, ``lease_seq``, ``expires_at``; ``owner`` empty
  when free) says which replica works on the position. A replica takes it with
  ``update(last=revision)`` (or ``create``) only when it is free, its own leftover or
  older than its TTL (a replica that died or hung), so exactly one contender wins;
- the cursor: ``intent_seq`` is the highest ``INTENTS`` stream sequence of the position
  already handled, ``results_seq`` the ``RESULTS`` sequence of its last result. An intent
  below ``intent_seq`` arrived after a later one ran and is skipped as superseded (never
  executed late); ``results_seq`` is the read-your-writes floor of the next ledger read.

Taking the lease returns the cursor (one compare-and-set; no read while this process'
copy of the record is current), and releasing it advances the cursor in the same write.
If the record changed meanwhile, the release re-reads it: still our lease -> free it;
taken over -> still advance the cursor (never back), keeping the new holder's lease.
"""

from __future__ import annotations

import time

import msgspec
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue


class Lease(msgspec.Struct, frozen=True, kw_only=True):
    """Say which replica works on a position, on which intent, until when."""

    owner: str
    intent_id: str
    intent_seq: int
    expires_at: float


class Cursor(msgspec.Struct, frozen=True, kw_only=True):
    """Say how far a position's intents and results have been handled."""

    intent_seq: int = 0
    results_seq: int = 0


class Slot(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A position's record: its cursor and its lease (``owner`` empty: free).

    The cursor fields come first and keep their names: a cursor-only record written by
    an earlier version reads as a free slot with that cursor.
    """

    intent_seq: int = 0
    results_seq: int = 0
    owner: str = ""
    intent_id: str = ""
    lease_seq: int = 0
    expires_at: float = 0.0

    @property
    def cursor(self) -> Cursor:
        """Return the cursor part."""
        return Cursor(intent_seq=self.intent_seq, results_seq=self.results_seq)

    def lease(self) -> Lease | None:
        """Return the lease part, or None when free."""
        if not self.owner:
            return None
        return Lease(
            owner=self.owner,
            intent_id=self.intent_id,
            intent_seq=self.lease_seq,
            expires_at=self.expires_at,
        )

    def free_for(self, owner: str, now: float) -> bool:
        """Say whether ``owner`` may take the lease (free, its own leftover, or stale)."""
        return not self.owner or self.owner == owner or self.expires_at <= now


class Held(msgspec.Struct, frozen=True, kw_only=True):
    """A lease this replica holds: the record's revision and the cursor it read."""

    revision: int
    slot: Slot

    @property
    def cursor(self) -> Cursor:
        """Return the position's cursor as of taking the lease."""
        return self.slot.cursor


_slot_decoder = msgspec.json.Decoder(Slot)
_FREE = Slot()


class PositionSlots:
    """Take and release position leases and read and advance cursors, in one record each."""

    def __init__(self, kv: KeyValue, *, ttl_s: float) -> None:
        self._kv = kv
        self._ttl_s = ttl_s
        # The last record this instance wrote or read per position, with its revision:
        # a guess a failed compare-and-set corrects.
        self._known: dict[str, tuple[Slot, int]] = {}

    async def _read(self, position_id: str) -> tuple[Slot, int | None]:
        try:
            entry = await self._kv.get(position_id)
        except KeyNotFoundError:
            self._known.pop(position_id, None)
            return _FREE, None
        if not entry.value or entry.revision is None:
            self._known.pop(position_id, None)
            return _FREE, None
        slot = _slot_decoder.decode(entry.value)
        self._known[position_id] = (slot, entry.revision)
        return slot, entry.revision

    async def _write(self, position_id: str, slot: Slot, revision: int | None) -> int:
        """Compare-and-set; raise ``KeyWrongLastSequenceError`` when stale."""
        payload = msgspec.json.encode(slot)
        if revision is None:
            new_revision = await self._kv.create(position_id, payload)
        else:
            new_revision = await self._kv.update(position_id, payload, last=revision)
        self._known[position_id] = (slot, new_revision)
        return new_revision

    async def acquire(
        self, position_id: str, owner: str, intent_id: str, intent_seq: int
    ) -> Held | None:
        """Take the lease and return it with the cursor; None while another replica holds it."""
        known = self._known.get(position_id)
        if known is not None and not known[0].free_for(owner, time.time()):
            known = None  # our copy says held: only a fresh read can tell it was freed
        revision: int | None
        for attempt in range(2):
            if attempt == 0 and known is not None:
                current, revision = known[0], known[1]
            else:
                current, revision = await self._read(position_id)
            if not current.free_for(owner, time.time()):
                return None
            taken = msgspec.structs.replace(
                current,
                owner=owner,
                intent_id=intent_id,
                lease_seq=intent_seq,
                expires_at=time.time() + self._ttl_s,
            )
            try:
                new_revision = await self._write(position_id, taken, revision)
            except KeyWrongLastSequenceError:
                if attempt == 0 and known is not None:
                    continue  # our copy was stale: read and decide again
                return None  # changed meanwhile: the caller retries soon
            return Held(revision=new_revision, slot=taken)
        return None

    async def release(self, position_id: str, held: Held, advance: Cursor | None = None) -> None:
        """Free the lease if it is still ours and advance the cursor (never back).

        One write while nobody else touched the record; otherwise re-read: still our
        lease (another replica only advanced the cursor) -> free it; taken over -> only
        advance the cursor, keeping the new holder's lease.
        """
        current: Slot = held.slot
        revision: int | None = held.revision
        while True:
            ours = (
                current.owner == held.slot.owner
                and current.intent_id == held.slot.intent_id
                and current.lease_seq == held.slot.lease_seq
            )
            wanted = msgspec.structs.replace(
                Slot() if ours else current,
                intent_seq=max(current.intent_seq, advance.intent_seq if advance else 0),
                results_seq=max(current.results_seq, advance.results_seq if advance else 0),
            )
            if wanted == current and revision is not None:
                return
            try:
                await self._write(position_id, wanted, revision)
            except KeyWrongLastSequenceError:
                current, revision = await self._read(position_id)
                continue
            return

    async def holder(self, position_id: str) -> Lease | None:
        """Return the current lease of a position, if any."""
        slot, _ = await self._read(position_id)
        return slot.lease()

    async def cursor(self, position_id: str) -> Cursor:
        """Return the cursor of a position (zeros when none)."""
        slot, _ = await self._read(position_id)
        return slot.cursor

    async def advance(self, position_id: str, *, intent_seq: int, results_seq: int) -> Cursor:
        """Move the cursor forward (never back), keeping the lease as it is; return it."""
        while True:
            current, revision = await self._read(position_id)
            wanted = msgspec.structs.replace(
                current,
                intent_seq=max(current.intent_seq, intent_seq),
                results_seq=max(current.results_seq, results_seq),
            )
            if wanted == current and revision is not None:
                return current.cursor
            try:
                await self._write(position_id, wanted, revision)
            except KeyWrongLastSequenceError:
                continue
            return wanted.cursor


class LeaseStore:
    """The lease part of the position records (for operators and tests)."""

    def __init__(self, kv: KeyValue, *, ttl_s: float) -> None:
        self._slots = PositionSlots(kv, ttl_s=ttl_s)
        self._held: dict[tuple[str, int], Held] = {}

    async def acquire(
        self, position_id: str, owner: str, intent_id: str, intent_seq: int
    ) -> int | None:
        """Take the lease; return its revision, or None while another live replica holds it."""
        held = await self._slots.acquire(position_id, owner, intent_id, intent_seq)
        if held is None:
            return None
        self._held[(position_id, held.revision)] = held
        return held.revision

    async def holder(self, position_id: str) -> Lease | None:
        """Return the current lease of a position, if any."""
        return await self._slots.holder(position_id)

    async def release(self, position_id: str, revision: int) -> None:
        """Free the lease if it is still ours (a takeover since then keeps the new owner's)."""
        held = self._held.pop((position_id, revision), None)
        if held is not None:
            await self._slots.release(position_id, held)


class CursorStore:
    """The cursor part of the position records (for operators and tests)."""

    def __init__(self, kv: KeyValue) -> None:
        self._slots = PositionSlots(kv, ttl_s=0.0)

    async def get(self, position_id: str) -> Cursor:
        """Return the cursor of a position (zeros when none)."""
        return await self._slots.cursor(position_id)

    async def advance(self, position_id: str, *, intent_seq: int, results_seq: int) -> Cursor:
        """Move the cursor forward (never back) and return it."""
        return await self._slots.advance(
            position_id, intent_seq=intent_seq, results_seq=results_seq
        )
