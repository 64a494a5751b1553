"""The executor's working orders (KV bucket ``EXEC_ORDERS``): what it must follow.

One record per live order, key ``<venue>.<partition>.<intent_id>``, written right after
the venue accepted the order and deleted once its final result is published. Fills are
not stored here: after a crash the follower asks the venue for the order's fills again
and republishes them under their fill ids, which the stream and the ledger deduplicate.
A replica taking a partition over lists that partition's records and follows them.
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import partial

import msgspec
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from intentbus.bus import PermissionDenied
from intentbus.bus.kvread import snapshot, stream_of
from intentbus.bus.streams import with_api_retries
from intentbus.schemas import ExecutionIntent, ExecutionPlan


class WorkingOrder(msgspec.Struct, frozen=True, kw_only=True):
    """An order the executor follows until it is finished."""

    intent: ExecutionIntent
    plan: ExecutionPlan
    partition: int
    placed_at: datetime
    owner: str
    intent_seq: int = 0  # the intent's INTENTS stream sequence: newer intents supersede
    # W3C traceparent of the span that placed it: its fills and final result join the
    # intent's trace, whichever replica publishes them.
    traceparent: str | None = None

    @property
    def key(self) -> str:
        """Return the record's KV key."""
        return order_key(self.plan.venue, self.partition, self.intent.intent_id)


def order_key(venue: str, partition: int, intent_id: str) -> str:
    """Return the KV key of an intent's working order."""
    return f"{venue}.{partition}.{intent_id}"


log = logging.getLogger(__name__)
_decoder = msgspec.json.Decoder(WorkingOrder)


class WorkingOrderStore:
    """Keep working orders in one KV bucket."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv
        self._purge = True  # False once the server refused a purge

    async def put(self, order: WorkingOrder) -> None:
        """Record a working order (idempotent)."""
        await self._kv.put(order.key, msgspec.json.encode(order))

    async def delete(self, order: WorkingOrder) -> None:
        """Forget a finished order (idempotent), leaving no delete marker behind.

        A KV delete keeps one marker per key for ever, and a takeover reads a
        partition's markers with its live orders: removing the key's message from the
        bucket's stream keeps that read as short as the partition's live orders. Where
        the server refuses the purge (an older permission set), it deletes with a marker.
        """
        if self._purge:
            js, stream, pre = stream_of(self._kv)
            purge = partial(js.purge_stream, stream, subject=f"{pre}{order.key}")
            try:
                await with_api_retries(purge, attempts=1)
                return
            except PermissionDenied as exc:
                self._purge = False
                log.warning(
                    "%s: finished orders' records are deleted with a marker from now on; "
                    "allow $JS.API.STREAM.PURGE.%s to remove them (deploy/nats/auth.conf)",
                    exc, stream,
                )  # fmt: skip
        await self._kv.delete(order.key)

    async def get(self, venue: str, partition: int, intent_id: str) -> WorkingOrder | None:
        """Return one working order, or None."""
        try:
            entry = await self._kv.get(order_key(venue, partition, intent_id))
        except KeyNotFoundError:
            return None
        return _decoder.decode(entry.value) if entry.value else None

    async def in_partition(self, venue: str, partition: int) -> list[WorkingOrder]:
        """Return every working order of one partition of a venue (none missed)."""
        entries = await snapshot(self._kv, f"{venue}.{partition}.*")
        return [_decoder.decode(entry.value) for entry in entries.values() if entry.value]
