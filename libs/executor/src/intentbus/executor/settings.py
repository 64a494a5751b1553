"""Runtime settings, counters and the names of the executor's KV buckets."""

from __future__ import annotations

from dataclasses import dataclass, field

CLAIMS_BUCKET = "EXECUTIONS"
ORDERS_BUCKET = "EXEC_ORDERS"


@dataclass(frozen=True, kw_only=True)
class RuntimeSettings:
    """Tune delivery, waiting and following.

    Nothing waits forever: an intent waits (in its position's lane, keeping its
    delivery alive with ``in_progress``) for the ledger, the venue or the cancels of its
    position's working orders at most until its ``valid_until``, then it is skipped as
    ``expired``; an order is followed until the venue says it is final.
    """

    ack_wait_s: float = 30.0
    max_deliver: int = 1_000
    max_ack_pending: int = 1_000
    batch: int = 100
    fetch_timeout_s: float = 1.0
    retry_s: float = 0.25
    retry_max_s: float = 2.0
    poll_s: float = 2.0
    orphan_ttl_s: float = 30.0
    # How long a final order waits for its fills on the live feed before asking the
    # venue for them, and how long the intake waits for an order that finished at
    # placement before it records the order as working instead.
    fill_grace_s: float = 0.25
    settle_wait_s: float = 2.0
    heartbeat_s: float = 1.0
    # Reconciliation (venue vs ledger): at most one per this many seconds, and the
    # smallest size difference that is drift (half the symbol's lot at least).
    reconcile_debounce_s: float = 3.0
    drift_tolerance: float = 1e-9


@dataclass
class RuntimeStats:
    """Count what the runtime did (for operators and tests)."""

    placed: int = 0
    skipped: int = 0
    republished: int = 0
    adopted: int = 0
    waits: int = 0
    fills: int = 0
    finished: int = 0
    gaps: int = 0
    halt_cancels: int = 0
    reconciliations: int = 0
    reconcile_waits: int = 0  # reconciliations put off: the ledger did not answer
    drifts: int = 0
    refused: dict[str, int] = field(default_factory=dict)  # skip reason -> count
