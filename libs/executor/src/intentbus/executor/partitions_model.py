"""The pure half of partition ownership: settings, change events, records, assignment.

See :mod:`intentbus.executor.partitions` for the protocol; nothing here does I/O.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import msgspec
from nats.errors import NoRespondersError
from nats.js.errors import APIError, NotFoundError, ServiceUnavailableError

from intentbus.bus.streams import ConsumerSpec
from intentbus.bus.subjects import INTENT_PARTITIONS

# KV buckets (under the topology's namespace, through ``Topology.bucket``).
MEMBERS_BUCKET = "EXEC_MEMBERS"  # key <venue>.<scope>.<owner>: MemberRecord
PARTITIONS_BUCKET = "EXEC_PARTITIONS"  # key <venue>.<scope>.p<N>: LeaseRecord
ALL_BOOKS = "all"  # the scope of a venue-wide executor (book=None)


@dataclass(frozen=True, kw_only=True)
class OwnershipSettings:
    """Timing of heartbeats and leases, and the config of the partition consumers.

    A killed replica's partitions move after ``ttl_s`` plus at most one ``heartbeat_s``
    (~3.5 s with the defaults). The consumer fields match ``RuntimeSettings``'s.
    """

    heartbeat_s: float = 0.5
    ttl_s: float = 3.0
    # A Released partition the runtime has not release()d after this long is freed
    # anyway: its new owner deletes the old consumer, which fences the stuck one.
    drain_timeout_s: float = 30.0
    # Records of members gone without a graceful stop age out of the bucket after this.
    member_retention_s: float = 3600.0
    partitions: int = INTENT_PARTITIONS
    ack_wait_s: float = 30.0
    max_deliver: int = 1_000
    max_ack_pending: int = 1_000

    def __post_init__(self) -> None:
        if not 0 < 2 * self.heartbeat_s <= self.ttl_s:
            raise ValueError("need 0 < heartbeat_s <= ttl_s / 2")
        if self.member_retention_s < 10 * self.ttl_s:
            raise ValueError("member_retention_s must be at least 10 * ttl_s")


@dataclass(frozen=True)
class Acquired:
    """This replica owns ``partition`` now: consume ``spec`` (generation ``generation``)."""

    partition: int
    generation: int
    spec: ConsumerSpec


@dataclass(frozen=True)
class Released:
    """Stop consuming ``partition``, drain, then call ``release(partition)``."""

    partition: int
    generation: int


@dataclass(frozen=True)
class Lost:
    """Another replica took ``partition`` over: stop its consumer now (no release)."""

    partition: int
    generation: int


Change = Acquired | Released | Lost


class MemberRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A replica's heartbeat: live until ``expires_at`` (unix seconds)."""

    owner: str
    expires_at: float


class LeaseRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A partition's lease; ``owner == ""`` when free. The key is never deleted.

    ``generation`` grows by one at every take; ``consumer_generation`` is the newest
    generation whose consumer was created (it is behind ``generation`` only while a take
    is under way, or when a taker died before creating its consumer).
    """

    owner: str = ""
    generation: int = 0
    expires_at: float = 0.0
    consumer_generation: int = 0


member_decoder = msgspec.json.Decoder(MemberRecord)
lease_decoder = msgspec.json.Decoder(LeaseRecord)


def scope_of(book: str | None) -> str:
    """Return the scope token of a venue-wide (``all``) or one-book executor."""
    return ALL_BOOKS if book is None else book


def consumer_name(venue: str, scope: str, partition: int, generation: int) -> str:
    """Return the durable name of a partition's consumer of one generation.

    At most 5 + 64 + 1 + 64 + 4 + 2 + 20 characters: well within NATS's 255.
    """
    return f"exec-{venue}-{scope}-p{partition}-g{generation}"


def assign(members: Iterable[str], partitions: int, salt: str) -> dict[int, str]:
    """Map each partition to one member: rendezvous hashing with bounded load.

    Each partition goes to the member with the highest hash of (salt, member, partition)
    that has fewer than ceil(partitions / members) partitions yet. The result depends
    only on the set of members, so every replica that sees the same set computes it.
    """
    ordered = sorted(set(members))
    if not ordered:
        return {}
    cap = -(-partitions // len(ordered))
    load = dict.fromkeys(ordered, 0)
    out: dict[int, str] = {}
    for partition in range(partitions):
        ranked = sorted(ordered, key=lambda m: (_score(salt, m, partition), m), reverse=True)
        chosen = next(m for m in ranked if load[m] < cap)
        load[chosen] += 1
        out[partition] = chosen
    return out


def _score(salt: str, member: str, partition: int) -> int:
    digest = hashlib.sha256(f"{salt}|{member}|{partition}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def consumer_gone(exc: BaseException) -> bool:
    """Tell whether a consumer's error means its durable was deleted: it was taken over.

    A fetch on a deleted consumer raises ``ServiceUnavailableError`` (no responders), an
    ``ack_sync`` ``NoRespondersError``, and re-declaring it through ``ensure_consumer``
    (its spec starts BY_START_SEQUENCE without a sequence) a 10094 ``BadRequestError``.
    """
    if isinstance(exc, ServiceUnavailableError | NotFoundError | NoRespondersError):
        return True
    if not isinstance(exc, APIError):
        return False
    deleted = exc.code == 409 and "deleted" in (exc.description or "").lower()
    return deleted or exc.err_code == 10094


_UNSAFE = re.compile(r"[^A-Za-z0-9_=-]+")


def default_owner() -> str:
    """Return a unique, subject-safe owner id: ``<host>-<pid>-<random>``."""
    host = _UNSAFE.sub("-", socket.gethostname())[:40].strip("-") or "host"
    return f"{host}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
