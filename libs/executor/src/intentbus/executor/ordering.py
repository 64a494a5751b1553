"""Per-position order across replicas: a lease and a cursor in KV.

Lease (bucket ``EXEC_LEASES``, key = position id): created before a replica works on
an intent of the position, deleted after. A lease older than its TTL belongs to a
replica that died or hung: another replica takes it over with ``update(last=revision)``,
so exactly one of several contenders wins.

Cursor (bucket ``EXEC_CURSORS``, key = position id): ``intent_seq`` is the highest
``INTENTS`` stream sequence of the position already handled, ``results_seq`` the
``RESULTS`` sequence of its last result. An intent below ``intent_seq`` arrived after a
later one ran and is skipped as superseded (never executed late); ``results_seq`` is the
read-your-writes floor of the next ledger read.
"""

from __future__ import annotations

import contextlib
import time

import msgspec
from nats.js.errors import APIError, KeyNotFoundError, KeyWrongLastSequenceError
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


_lease_decoder = msgspec.json.Decoder(Lease)
_cursor_decoder = msgspec.json.Decoder(Cursor)


class LeaseStore:
    """Acquire and release position leases."""

    def __init__(self, kv: KeyValue, *, ttl_s: float) -> None:
        self._kv = kv
        self._ttl_s = ttl_s

    async def acquire(
        self, position_id: str, owner: str, intent_id: str, intent_seq: int
    ) -> int | None:
        """Take the lease; return its revision, or None while another live replica holds it."""
        lease = Lease(
            owner=owner,
            intent_id=intent_id,
            intent_seq=intent_seq,
            expires_at=time.time() + self._ttl_s,
        )
        payload = msgspec.json.encode(lease)
        try:
            return await self._kv.create(position_id, payload)
        except KeyWrongLastSequenceError:
            pass
        try:
            entry = await self._kv.get(position_id)
        except KeyNotFoundError:
            return None  # released meanwhile: the caller retries soon
        held = _lease_decoder.decode(entry.value or b"{}")
        # Our own leftover (a handler of this process that could not release) or a stale one.
        if held.owner != owner and held.expires_at > time.time():
            return None
        try:
            return await self._kv.update(position_id, payload, last=entry.revision)
        except KeyWrongLastSequenceError:
            return None

    async def holder(self, position_id: str) -> Lease | None:
        """Return the current lease of a position, if any."""
        try:
            entry = await self._kv.get(position_id)
        except KeyNotFoundError:
            return None
        return _lease_decoder.decode(entry.value) if entry.value else None

    async def release(self, position_id: str, revision: int) -> None:
        """Delete the lease if it is still ours (a takeover since then keeps the new owner's)."""
        with contextlib.suppress(APIError):  # taken over meanwhile: not ours to delete
            await self._kv.delete(position_id, last=revision)


class CursorStore:
    """Read and advance per-position cursors."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    async def get(self, position_id: str) -> Cursor:
        """Return the cursor of a position (zeros when none)."""
        try:
            entry = await self._kv.get(position_id)
        except KeyNotFoundError:
            return Cursor()
        return _cursor_decoder.decode(entry.value) if entry.value else Cursor()

    async def advance(self, position_id: str, *, intent_seq: int, results_seq: int) -> Cursor:
        """Move the cursor forward (never back) and return it."""
        while True:
            try:
                entry = await self._kv.get(position_id)
                current = _cursor_decoder.decode(entry.value) if entry.value else Cursor()
                revision: int | None = entry.revision
            except KeyNotFoundError:
                current, revision = Cursor(), None
            wanted = Cursor(
                intent_seq=max(current.intent_seq, intent_seq),
                results_seq=max(current.results_seq, results_seq),
            )
            if wanted == current and revision is not None:
                return current
            payload = msgspec.json.encode(wanted)
            try:
                if revision is None:
                    await self._kv.create(position_id, payload)
                else:
                    await self._kv.update(position_id, payload, last=revision)
                return wanted
            except KeyWrongLastSequenceError:
                continue
