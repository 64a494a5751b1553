"""The JetStream half of partition ownership: buckets, scans and consumer takeover.

See :mod:`intentbus.executor.partitions` for the protocol.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

import msgspec
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from nats.js.errors import BucketNotFoundError, NotFoundError
from nats.js.kv import KeyValue

from intentbus.bus.kvread import snapshot
from intentbus.bus.streams import ConsumerSpec, bucket_config, with_api_retries
from intentbus.bus.subjects import Topology
from intentbus.executor.partitions_model import OwnershipSettings, consumer_name

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


async def api(call: Callable[[], Awaitable[T]]) -> T:
    """Run a JetStream API call with a few quick retries on timeouts (~1 s in all)."""
    return await with_api_retries(call, attempts=4, first_delay_s=0.1)


async def open_bucket(js: JetStreamContext, name: str, *, ttl_s: float | None = None) -> KeyValue:
    """Return the KV bucket ``name`` (history 1), creating it with ``ttl_s`` if missing."""

    async def open_or_create() -> KeyValue:
        try:
            return await js.key_value(name)
        except BucketNotFoundError:
            config = bucket_config(name, ttl_s=ttl_s)
            return await js.create_key_value(config=config)

    return await api(open_or_create)


async def scan(
    bucket: KeyValue, prefix: str, decoder: msgspec.json.Decoder[R]
) -> dict[str, tuple[R, int]]:
    """Return the current (record, revision) of every live key under ``prefix``.

    Every key the bucket holds is read (:func:`intentbus.bus.kvread.snapshot`): a key
    missed would read as a lease lost or a member gone.
    """
    found: dict[str, tuple[R, int]] = {}
    for key, entry in (await snapshot(bucket, f"{prefix}.>")).items():
        try:
            found[key] = (decoder.decode(entry.value or b""), entry.revision or 0)
        except msgspec.DecodeError:
            log.warning("ignoring malformed record %s", key)
    return found


async def move_consumer(
    js: JetStreamContext,
    topology: Topology,
    settings: OwnershipSettings,
    *,
    venue: str,
    book: str | None,
    scope: str,
    partition: int,
    generation: int,
    earlier: set[int],
) -> ConsumerSpec:
    """Create ``generation``'s consumer at the newest earlier one's ack floor + 1 (at the
    stream's beginning when none is left), then delete every ``earlier`` consumer.

    The spec starts ``BY_START_SEQUENCE`` without a sequence, so ``ensure_consumer`` on a
    deleted generation fails instead of re-creating it from the beginning.
    """
    stream = topology.intents_stream
    start, older = 1, list[str]()
    for old in sorted(earlier - {0}, reverse=True):
        name = consumer_name(venue, scope, partition, old)
        try:
            info = await api(partial(js.consumer_info, stream, name))
        except NotFoundError:
            continue
        if not older:  # the newest existing generation holds the progress
            start = info.ack_floor.stream_seq + 1
        older.append(name)
    if earlier - {0} and not older:
        log.warning("partition %d: no earlier consumer left, starting over", partition)
    spec = ConsumerSpec(
        stream=stream,
        durable=consumer_name(venue, scope, partition, generation),
        filter_subjects=(topology.intents_partition_filter(venue, partition, book),),
        ack_wait_s=settings.ack_wait_s,
        max_deliver=settings.max_deliver,
        max_ack_pending=settings.max_ack_pending,
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
    )
    config = spec.config()
    config.opt_start_seq = start
    await api(lambda: js.add_consumer(stream, config=config))
    for name in older:
        with contextlib.suppress(NotFoundError):
            await api(partial(js.delete_consumer, stream, name))
    return spec
