"""Traces: W3C trace context in NATS headers, spans, and outcomes on spans.

Everything here works with the OpenTelemetry API alone: without a configured SDK the
tracer is a no-op (a span is a context switch, nothing more), yet a ``traceparent``
received in a message still flows on to the messages published while handling it.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.metrics import Histogram
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from intentbus.telemetry.config import metrics_on, tracing_on
from intentbus.telemetry.logs import intent_scope

P = ParamSpec("P")
R = TypeVar("R")

TRACEPARENT = "traceparent"
INTENT_HEADER = "Intentbus-Intent-Id"
_w3c = TraceContextTextMapPropagator()

Attributes = Mapping[str, str | int | float | bool]


@functools.cache
def tracer() -> trace.Tracer:
    """Return the intentbus tracer (a proxy: it uses the SDK once that is configured)."""
    return trace.get_tracer("intentbus")


def has_context(headers: Mapping[str, str] | None) -> bool:
    """Say whether message headers carry a trace context."""
    return bool(headers) and TRACEPARENT in headers  # type: ignore[operator]


def in_trace() -> bool:
    """Say whether the current context belongs to a trace (a span, local or remote)."""
    return trace.get_current_span().get_span_context().is_valid


def inject(headers: dict[str, str]) -> dict[str, str]:
    """Add the current trace context (``traceparent``, ``tracestate``) to ``headers``."""
    propagate.inject(headers)
    return headers


def extract(headers: Mapping[str, str] | None) -> Context:
    """Return the context carried by message headers (an empty one without any)."""
    return propagate.extract(dict(headers or {}))


def current_traceparent() -> str | None:
    """Return the ``traceparent`` of the current span, or None outside a trace."""
    carrier: dict[str, str] = {}
    _w3c.inject(carrier)
    return carrier.get(TRACEPARENT)


def trace_id_of(traceparent: str | None) -> str | None:
    """Return the trace id of a ``traceparent`` string."""
    if not traceparent:
        return None
    parts = traceparent.split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else None


@contextmanager
def resumed(traceparent: str | None, intent_id: str | None = None) -> Iterator[None]:
    """Continue a stored trace (an order's fills and result join its intent's trace)."""
    token = None
    if traceparent:
        token = otel_context.attach(_w3c.extract({TRACEPARENT: traceparent}))
    try:
        with intent_scope(intent_id):
            yield
    finally:
        if token is not None:
            otel_context.detach(token)


def set_outcome(span: Span, *, error: str | None = None, skip_reason: str | None = None) -> None:
    """Mark a span: a skip or an error sets its status (ERROR) with the reason."""
    if not span.is_recording():
        return
    if skip_reason is not None:
        span.set_attribute("intentbus.skip_reason", skip_reason)
        span.set_status(Status(StatusCode.ERROR, f"skipped: {skip_reason}"))
    elif error is not None:
        span.set_attribute("intentbus.error", error)
        span.set_status(Status(StatusCode.ERROR, error))


def traced(
    name: str,
    *,
    histogram: Callable[[], Histogram] | None = None,
    attributes: Attributes | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Decorate a coroutine function: a span around each call, its duration recorded."""

    def decorate(func: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(func)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            if not (tracing_on() or metrics_on()):
                return await func(*args, **kwargs)
            started = time.perf_counter()
            outcome = "ok"
            with tracer().start_as_current_span(name, kind=kind, attributes=attributes):
                try:
                    return await func(*args, **kwargs)
                except BaseException:
                    outcome = "error"
                    raise
                finally:
                    if histogram is not None:
                        elapsed = time.perf_counter() - started
                        histogram().record(elapsed, {"outcome": outcome})

        return wrapper

    return decorate


def traced_sync(
    name: str, *, histogram: Callable[[], Histogram] | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a plain function: a span around each call, its duration recorded."""

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            if not (tracing_on() or metrics_on()):
                return func(*args, **kwargs)
            started = time.perf_counter()
            outcome = "ok"
            with tracer().start_as_current_span(name):
                try:
                    return func(*args, **kwargs)
                except BaseException:
                    outcome = "error"
                    raise
                finally:
                    if histogram is not None:
                        elapsed = time.perf_counter() - started
                        histogram().record(elapsed, {"outcome": outcome})

        return wrapper

    return decorate


def span_attributes(**values: Any) -> dict[str, str | int | float | bool]:
    """Keep the attribute values that are set (OpenTelemetry refuses None)."""
    return {k: v for k, v in values.items() if v is not None}
