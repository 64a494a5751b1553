"""intentbus telemetry: OpenTelemetry traces and metrics, structured and redacted logs.

Below the bus: the bus's consumer and publisher use it as middleware (a span per
message, W3C trace context in NATS headers, the intent's id on every log line).
"""

from intentbus.telemetry.config import (
    configure_metrics,
    configure_tracing,
    exporters,
    metrics_on,
    metrics_port,
    shutdown,
    tracing_on,
)
from intentbus.telemetry.logs import (
    configure_logging,
    current_intent_id,
    current_trace_id,
    intent_scope,
)
from intentbus.telemetry.redact import add_secret, is_secret_name, scrub
from intentbus.telemetry.tracing import (
    INTENT_HEADER,
    TRACEPARENT,
    current_traceparent,
    extract,
    has_context,
    in_trace,
    inject,
    resumed,
    set_outcome,
    span_attributes,
    trace_id_of,
    traced,
    traced_sync,
    tracer,
)

__all__ = [
    "INTENT_HEADER",
    "TRACEPARENT",
    "add_secret",
    "configure_logging",
    "configure_metrics",
    "configure_tracing",
    "current_intent_id",
    "current_trace_id",
    "current_traceparent",
    "exporters",
    "extract",
    "has_context",
    "in_trace",
    "inject",
    "intent_scope",
    "is_secret_name",
    "metrics_on",
    "metrics_port",
    "resumed",
    "scrub",
    "set_outcome",
    "shutdown",
    "span_attributes",
    "trace_id_of",
    "traced",
    "traced_sync",
    "tracer",
    "tracing_on",
]
