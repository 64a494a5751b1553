"""Configure OpenTelemetry from the standard ``OTEL_*`` variables: off unless asked for.

Traces are exported when ``OTEL_TRACES_EXPORTER`` names exporters (``otlp``, ``console``;
``none`` is off) or, when it is unset, an OTLP endpoint is set
(``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``). Metrics go to
a Prometheus scrape endpoint when a service is given a metrics port, and by OTLP on the
same rules as traces (``OTEL_METRICS_EXPORTER``). ``OTEL_SDK_DISABLED=true`` turns
everything off. Nothing configured: the API's no-op tracer and meter, nearly free. The
exporters read their own variables (endpoint, headers, timeout, ``OTEL_BSP_*``...);
``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` name the service.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from opentelemetry import metrics, trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource

log = logging.getLogger(__name__)

METRICS_PORT_ENV = "INTENTBUS_METRICS_PORT"
METRICS_ADDR_ENV = "INTENTBUS_METRICS_ADDR"


@dataclass
class TelemetryState:
    """What this process configured (for tests and shutdown)."""

    service: str = ""
    trace_exporters: tuple[str, ...] = ()
    metric_exporters: tuple[str, ...] = ()
    metrics_port: int | None = None
    providers: list[object] = field(default_factory=list)


state = TelemetryState()


def tracing_on() -> bool:
    """Say whether this process records spans (else the middleware only passes context on)."""
    return bool(state.trace_exporters)


def metrics_on() -> bool:
    """Say whether this process records metrics."""
    return bool(state.metric_exporters) or state.metrics_port is not None


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def exporters(kind: str, env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Return the exporters asked for ``kind`` (``traces`` or ``metrics``); () means off."""
    source = os.environ if env is None else env
    if _truthy(source.get("OTEL_SDK_DISABLED")):
        return ()
    named = source.get(f"OTEL_{kind.upper()}_EXPORTER")
    if named is not None and named.strip():
        chosen = tuple(e.strip().lower() for e in named.split(",") if e.strip())
        return tuple(e for e in chosen if e != "none")
    endpoint = source.get("OTEL_EXPORTER_OTLP_ENDPOINT") or source.get(
        f"OTEL_EXPORTER_OTLP_{kind.upper()}_ENDPOINT"
    )
    return ("otlp",) if endpoint else ()


def _resource(service: str) -> Resource:
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service}
    return Resource.create(attributes)


def configure_tracing(service: str) -> bool:
    """Install the SDK's tracer provider when traces are asked for; say whether it did."""
    chosen = exporters("traces")
    if not chosen or state.trace_exporters:
        return bool(state.trace_exporters)
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    provider = TracerProvider(resource=_resource(service))
    for name in chosen:
        exporter: SpanExporter
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
        elif name == "console":
            exporter = ConsoleSpanExporter()
        else:
            log.warning("unknown OTEL_TRACES_EXPORTER %r ignored (otlp, console, none)", name)
            continue
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    state.service, state.trace_exporters = service, chosen
    state.providers.append(provider)
    return True


def metrics_port(port: int | None = None) -> int | None:
    """Return the metrics port: the flag's, else ``INTENTBUS_METRICS_PORT``, else None."""
    if port is not None:
        return port
    raw = os.environ.get(METRICS_PORT_ENV, "").strip()
    return int(raw) if raw else None


def configure_metrics(service: str, port: int | None = None) -> bool:
    """Serve Prometheus metrics on ``port`` and/or export them by OTLP; say whether on."""
    if state.metric_exporters or state.metrics_port is not None:
        return True
    if _truthy(os.environ.get("OTEL_SDK_DISABLED")):
        return False
    port = metrics_port(port)
    chosen = exporters("metrics")
    if "prometheus" in chosen and port is None:  # the standard variables' way to ask
        port = int(os.environ.get("OTEL_EXPORTER_PROMETHEUS_PORT") or 9464)
    if port is None and not chosen:
        return False
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import (
        ConsoleMetricExporter,
        MetricExporter,
        MetricReader,
        PeriodicExportingMetricReader,
    )

    readers: list[MetricReader] = []
    if port is not None:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import start_http_server

        readers.append(PrometheusMetricReader())
        start_http_server(port, addr=os.environ.get(METRICS_ADDR_ENV, "0.0.0.0"))
    for name in chosen:
        exporter: MetricExporter
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

            exporter = OTLPMetricExporter()
        elif name == "console":
            exporter = ConsoleMetricExporter()
        else:
            continue  # "prometheus": the scrape endpoint above
        readers.append(PeriodicExportingMetricReader(exporter))
    provider = MeterProvider(resource=_resource(service), metric_readers=readers)
    metrics.set_meter_provider(provider)
    state.service, state.metric_exporters, state.metrics_port = service, chosen, port
    state.providers.append(provider)
    return True


def shutdown() -> None:
    """Flush and stop the providers (also done at exit)."""
    for provider in state.providers:
        stop = getattr(provider, "shutdown", None)
        if callable(stop):
            try:
                stop()
            except Exception:
                log.debug("telemetry shutdown failed", exc_info=True)
    state.providers.clear()
