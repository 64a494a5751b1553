"""The metrics every service may record (no-ops until a meter provider is configured).

Names follow OpenTelemetry; the Prometheus endpoint shows them with ``_`` for ``.``,
the unit as a suffix and ``_total`` on counters (``intentbus_intents_consumed_total``).
"""

from __future__ import annotations

from functools import cache

from opentelemetry import metrics
from opentelemetry.metrics import Counter, Histogram, Meter, _Gauge

# seconds: sub-millisecond up to the minutes an order may live
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
)  # fmt: skip


def meter() -> Meter:
    """Return the intentbus meter (a proxy until the SDK is configured)."""
    return metrics.get_meter("intentbus")


def _latency(name: str, description: str) -> Histogram:
    return meter().create_histogram(
        name, unit="s", description=description, explicit_bucket_boundaries_advisory=LATENCY_BUCKETS
    )


@cache
def intents_consumed() -> Counter:
    """Intents delivered to an executor, by venue, book and action."""
    return meter().create_counter("intentbus.intents.consumed", description="intents consumed")


@cache
def results() -> Counter:
    """Final results published, by venue, book, status and skip reason."""
    return meter().create_counter("intentbus.results", description="final results published")


@cache
def fills() -> Counter:
    """Fills published, by venue, book and liquidity."""
    return meter().create_counter("intentbus.fills", description="venue fills published")


@cache
def intent_age() -> Histogram:
    """Age of an intent when its executor starts handling it, by venue and book."""
    return _latency("intentbus.intent.age", "intent age (now - created_at) at consume")


@cache
def prepare_duration() -> Histogram:
    """Time to prepare an intent (ledger and venue reads, sizing), by outcome."""
    return _latency("intentbus.prepare.duration", "time to prepare an intent's plan")


@cache
def venue_call_duration() -> Histogram:
    """Duration of each venue call, by venue, operation and outcome."""
    return _latency("intentbus.venue.call.duration", "duration of a venue request")


@cache
def intent_to_ledger() -> Histogram:
    """Intent published (its created_at) -> its final result applied by the ledger."""
    return _latency("intentbus.ledger.intent_to_applied", "intent publish to ledger applied")


@cache
def fill_to_ledger() -> Histogram:
    """Fill built by the executor (its created_at) -> applied by the ledger."""
    return _latency("intentbus.ledger.fill_to_applied", "fill to ledger applied")


@cache
def consumer_pending() -> _Gauge:
    """Messages a durable consumer has not delivered yet (its lag), by stream and consumer."""
    return meter().create_gauge(
        "intentbus.consumer.pending", description="messages pending for the consumer"
    )


@cache
def dead_letters() -> Counter:
    """Messages dead-lettered, by stream and consumer."""
    return meter().create_counter("intentbus.dead_letters", description="dead letters")


@cache
def reconnects() -> Counter:
    """NATS reconnects of this process."""
    return meter().create_counter("intentbus.nats.reconnects", description="NATS reconnects")


@cache
def disconnects() -> Counter:
    """NATS disconnects of this process (not its own drain or close)."""
    return meter().create_counter("intentbus.nats.disconnects", description="NATS disconnects")


HALT_LEVELS = {"active": 0, "reducing": 1, "halted": 2}


@cache
def halt_state() -> _Gauge:
    """Each halt switch an executor sees, by scope: 0 active, 1 reducing, 2 halted."""
    return meter().create_gauge(
        "intentbus.halt.state", description="halt switch mode: 0 active, 1 reducing, 2 halted"
    )
