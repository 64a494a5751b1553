"""Declarative, idempotent provisioning of streams, consumers and KV buckets."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    KeyValueConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
    SubjectTransform,
)
from nats.js.errors import NotFoundError

from intentbus.bus import refusals
from intentbus.bus.subjects import Topology

DAY = 24 * 3600.0
T = TypeVar("T")


def _env_float(name: str, default: float) -> float:
    # A byte limit reserves that much of the server's store up front, so the default is
    # age-only; operators bound bytes per deployment with INTENTBUS_STREAM_MAX_BYTES.
    raw = os.environ.get(name)
    return default if raw is None or raw == "" else float(raw)


def replica_count() -> int:
    """Return how many servers keep each stream and bucket: ``NATS_REPLICAS``, default 1.

    A 3-node cluster runs R3 (``NATS_REPLICAS=3``): one node may die without losing or
    stopping anything. A single server must stay at 1.
    """
    raw = os.environ.get("NATS_REPLICAS") or "1"
    try:
        count = int(raw)
    except ValueError:
        count = 0
    if not 1 <= count <= 5:
        raise ValueError(f"NATS_REPLICAS must be a whole number from 1 to 5, not {raw!r}")
    return count


def bucket_config(name: str, *, history: int = 1, ttl_s: float | None = None) -> KeyValueConfig:
    """Return the config of a file-stored KV bucket at the deployment's replica count."""
    return KeyValueConfig(
        bucket=name, history=history, ttl=ttl_s, storage=StorageType.FILE, replicas=replica_count()
    )


@dataclass(frozen=True, kw_only=True)
class StreamSpec:
    """Declare one stream; provisioning makes the server's config match it."""

    name: str
    subjects: tuple[str, ...]
    max_age_s: float = field(
        default_factory=lambda: _env_float("INTENTBUS_STREAM_MAX_AGE_S", 30 * DAY)
    )
    max_bytes: int = field(
        default_factory=lambda: int(_env_float("INTENTBUS_STREAM_MAX_BYTES", -1))
    )
    duplicate_window_s: float = 2 * 3600.0
    max_msgs_per_subject: int = -1
    description: str = ""
    subject_transform: tuple[str, str] | None = None
    replicas: int = field(default_factory=replica_count)

    def config(self) -> StreamConfig:
        """Return the nats-py stream config."""
        return StreamConfig(
            name=self.name,
            description=self.description or None,
            subjects=list(self.subjects),
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            max_age=self.max_age_s,
            max_bytes=self.max_bytes,
            max_msgs_per_subject=self.max_msgs_per_subject,
            duplicate_window=self.duplicate_window_s,
            num_replicas=self.replicas,
            subject_transform=(
                SubjectTransform(src=self.subject_transform[0], dest=self.subject_transform[1])
                if self.subject_transform
                else None
            ),
        )


@dataclass(frozen=True, kw_only=True)
class ConsumerSpec:
    """Declare one durable pull consumer."""

    stream: str
    durable: str
    filter_subjects: tuple[str, ...]
    ack_wait_s: float = 30.0
    max_deliver: int = 20
    max_ack_pending: int = 1_000
    deliver_policy: DeliverPolicy = DeliverPolicy.ALL
    backoff_s: tuple[float, ...] = field(default=())

    def config(self) -> ConsumerConfig:
        """Return the nats-py consumer config."""
        single = len(self.filter_subjects) == 1
        # A name makes nats-py create it on $JS.API.CONSUMER.CREATE.<stream>.<name>.<filter>,
        # so a user's permissions can bound the subjects its consumers read.
        return ConsumerConfig(
            name=self.durable,
            durable_name=self.durable,
            deliver_policy=self.deliver_policy,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait_s,
            max_deliver=self.max_deliver,
            max_ack_pending=self.max_ack_pending,
            filter_subject=self.filter_subjects[0] if single else None,
            filter_subjects=None if single else list(self.filter_subjects),
            backoff=list(self.backoff_s) or None,
        )


def core_streams(topology: Topology) -> tuple[StreamSpec, ...]:
    """Return the streams every intentbus system has."""
    return (
        StreamSpec(
            name=topology.intents_stream,
            subjects=(topology.intents_published_filter(),),
            subject_transform=topology.intents_partition_transform(),
            description="Execution intents, by venue, book, partition and position",
        ),
        StreamSpec(
            name=topology.results_stream,
            subjects=(topology.results_filter(),),
            description="Order updates and final results, by venue and book",
        ),
        StreamSpec(
            name=topology.fills_stream,
            subjects=(topology.fills_filter(),),
            description="Venue fills, by venue and book",
        ),
        StreamSpec(
            name=topology.dead_letter_stream,
            subjects=(topology.dead_letter_filter(),),
            description="Messages consumers refused, with the error",
        ),
        StreamSpec(
            name=topology.marks_stream,
            subjects=(topology.marks_filter(),),
            max_msgs_per_subject=1,
            duplicate_window_s=60.0,
            description="Latest mark price per venue and symbol",
        ),
        StreamSpec(
            name=topology.candles_stream,
            subjects=(topology.candles_filter(),),
            description="Closed candles by venue, symbol and timeframe (PM warm-up, replay)",
        ),
        StreamSpec(
            name=topology.drift_stream,
            subjects=(topology.drift_filter(),),
            description="Reconciliation drift (venue vs ledger) by venue, book and symbol",
        ),
    )


async def ensure_stream(js: JetStreamContext, spec: StreamSpec) -> bool:
    """Create the stream or bring its config in line; return True when anything changed."""
    wanted = spec.config()
    try:
        info = await js.stream_info(spec.name)
    except NotFoundError:
        await js.add_stream(config=wanted)
        return True
    current = info.config
    if _stream_matches(current, wanted):
        return False
    # A process started without NATS_REPLICAS must never shrink a cluster's R3 stream:
    # the replica count is chosen at creation (change it by hand: nats stream edit).
    wanted.num_replicas = current.num_replicas
    await js.update_stream(config=wanted)
    return True


def _stream_matches(current: StreamConfig, wanted: StreamConfig) -> bool:
    keys = (
        "subjects",
        "max_age",
        "max_bytes",
        "max_msgs_per_subject",
        "duplicate_window",
        "storage",
        "retention",
        "discard",
    )
    if _transform(current) != _transform(wanted):
        return False
    return all(
        _normalise(getattr(current, key)) == _normalise(getattr(wanted, key)) for key in keys
    )


def _transform(config: StreamConfig) -> tuple[str, str] | None:
    found = config.subject_transform
    return (found.src, found.dest) if found is not None else None


def _normalise(value: object) -> object:
    if isinstance(value, list):
        return sorted(value)
    if isinstance(value, float):
        return round(value, 3)
    return value


async def ensure_consumer(js: JetStreamContext, spec: ConsumerSpec) -> bool:
    """Create the durable consumer or update it; return True when anything changed.

    ``pull_subscribe(durable=...)`` silently ignores a changed config, so the durable is
    always (re)declared here through ``add_consumer``, which updates in place.
    """
    wanted = spec.config()
    try:
        info = await js.consumer_info(spec.stream, spec.durable)
    except NotFoundError:
        await js.add_consumer(spec.stream, config=wanted)
        return True
    current = info.config
    keys = ("filter_subject", "filter_subjects", "ack_wait", "max_deliver", "max_ack_pending")
    if all(_normalise(getattr(current, k)) == _normalise(getattr(wanted, k)) for k in keys):
        return False
    await js.add_consumer(spec.stream, config=wanted)
    return True


async def with_api_retries(
    call: Callable[[], Awaitable[T]], *, attempts: int = 8, first_delay_s: float = 0.25
) -> T:
    """Run a JetStream API call, retrying with backoff when it times out.

    A server just started or restarted, or a busy machine, can leave a request without an
    answer; a service starting beside its server waits for it instead of dying. A request
    the server refused (no permission) raises :class:`PermissionDenied` at once.
    """
    for attempt in range(attempts):
        before = refusals.mark()
        try:
            return await call()
        except (NatsTimeoutError, TimeoutError):
            refused = refusals.since(before)
            if refused is not None and refused.subject.startswith(("$js.", "$kv.")):
                raise refusals.PermissionDenied(refused) from None
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(min(first_delay_s * 2**attempt, 5.0))
    raise AssertionError("unreachable: the last attempt returns or raises")


async def provision(js: JetStreamContext, topology: Topology) -> list[str]:
    """Provision the core streams; return the names of those created or changed."""
    changed = []
    for spec in core_streams(topology):
        if await with_api_retries(partial(ensure_stream, js, spec)):
            changed.append(spec.name)
    return changed
