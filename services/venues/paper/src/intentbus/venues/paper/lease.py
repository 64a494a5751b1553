"""One server per paper venue name: a lease in the venue's KV bucket (``PAPER_<name>``).

The key ``lease`` names its owner and when it expires. A server takes it at start
(refused while another owner's lease is live), renews it by compare-and-set, and
releases it at stop (so a successor starts at once). A server whose renewal finds
another owner has lost the venue and halts; the journal's expected-last-sequence check
stops its writes even before it notices.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import msgspec
from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from intentbus.bus.streams import bucket_config, with_api_retries
from intentbus.venues.paper.protocol import PaperSubjects

LEASE_KEY = "lease"
_RELEASED = datetime.fromtimestamp(0, UTC)


class VenueBusy(RuntimeError):
    """Raise when another live server holds the venue name."""


class LeaseLost(RuntimeError):
    """Raise when another server took the lease over."""


class LeaseRecord(msgspec.Struct, frozen=True, kw_only=True):
    """Who serves the venue, until when."""

    owner: str
    expires_at: datetime


async def open_bucket(js: JetStreamContext, name: str) -> KeyValue:
    """Return the bucket ``name``, creating it (file storage) if it does not exist."""

    async def open_or_create() -> KeyValue:
        try:
            return await js.key_value(name)
        except BucketNotFoundError:
            config = bucket_config(name)
            return await js.create_key_value(config=config)

    return await with_api_retries(open_or_create)


class VenueLease:
    """Take, renew and release the lease of one paper venue name."""

    def __init__(self, js: JetStreamContext, subjects: PaperSubjects, owner: str, ttl_s: float):
        self._js = js
        self._subjects = subjects
        self.owner = owner
        self.ttl_s = ttl_s
        self._kv: KeyValue | None = None
        self._revision: int | None = None
        self._decoder = msgspec.json.Decoder(LeaseRecord)

    async def acquire(self) -> None:
        """Take the lease; raise :class:`VenueBusy` while another live server holds it."""
        self._kv = kv = await open_bucket(self._js, self._subjects.bucket)
        try:
            entry = await kv.get(LEASE_KEY)
        except KeyNotFoundError:
            entry = None
        payload = self._payload()
        if entry is None or not entry.value:
            try:
                self._revision = await kv.create(LEASE_KEY, payload)
                return
            except KeyWrongLastSequenceError:
                raise VenueBusy(self._busy_text(None)) from None
        held = self._decoder.decode(entry.value)
        if held.owner != self.owner and held.expires_at > datetime.now(UTC):
            raise VenueBusy(self._busy_text(held))
        try:
            self._revision = await kv.update(LEASE_KEY, payload, last=entry.revision)
        except KeyWrongLastSequenceError:
            raise VenueBusy(self._busy_text(None)) from None

    async def renew(self) -> None:
        """Extend the lease; raise :class:`LeaseLost` if another server took it."""
        if self._kv is None:
            raise RuntimeError("the lease was not acquired")
        try:
            self._revision = await self._kv.update(LEASE_KEY, self._payload(), last=self._revision)
        except KeyWrongLastSequenceError:
            raise LeaseLost(f"another server took over paper venue {self._subjects.name}") from None

    async def release(self) -> None:
        """Give the lease up (a successor may start at once)."""
        if self._kv is None or self._revision is None:
            return
        released = msgspec.json.encode(LeaseRecord(owner=self.owner, expires_at=_RELEASED))
        # Someone else holding it now means nothing of ours is left to release.
        with contextlib.suppress(KeyWrongLastSequenceError):
            await self._kv.update(LEASE_KEY, released, last=self._revision)
        self._revision = None

    def _payload(self) -> bytes:
        expires = datetime.now(UTC) + timedelta(seconds=self.ttl_s)
        return msgspec.json.encode(LeaseRecord(owner=self.owner, expires_at=expires))

    def _busy_text(self, held: LeaseRecord | None) -> str:
        who = f"{held.owner} (lease until {held.expires_at.isoformat()})" if held else "another"
        return (
            f"paper venue {self._subjects.name!r} is already served by {who} server; "
            f"stop it first, or wait {self.ttl_s:g}s after it died"
        )
