"""Runtime settings, counters and the names of the executor's KV buckets."""

from __future__ import annotations

from dataclasses import dataclass

CLAIMS_BUCKET = "EXECUTIONS"
# A position's lease and cursor live in one record (see intentbus.executor.ordering), in
# the bucket that held cursors before: the lease bucket is that one now.
CURSORS_BUCKET = "EXEC_CURSORS"
LEASES_BUCKET = CURSORS_BUCKET


@dataclass(frozen=True, kw_only=True)
class RuntimeSettings:
    """Tune delivery: ack wait, lease TTL, retry delays and batch size."""

    # The lease TTL stays below the ack wait: a crashed replica's lease is stale before
    # its unacked intents come back, so their redelivery is not held up.
    ack_wait_s: float = 30.0
    lease_ttl_s: float = 20.0
    max_deliver: int = 1_000
    max_ack_pending: int = 1_000
    batch: int = 100
    busy_retry_s: float = 0.05
    ledger_retry_s: float = 1.0
    lookup_attempts: int = 5


@dataclass
class RuntimeStats:
    """Count what the runtime did (for operators and tests)."""

    executed: int = 0
    skipped: int = 0
    republished: int = 0
    retried: int = 0
