"""Telemetry middleware of the consumer loop and the publisher.

Consuming: a span per message (``<stream> consume``, a child of the span that published
it, from the ``traceparent`` header), opened when its batch is fetched (so it covers
work done on the whole batch first, as the ledger's apply) and ended when the message
is settled; the intent's id on every log line meanwhile; intents counted and aged;
the consumer's pending count as its lag; dead letters counted.

Publishing: a span per message (``publish <kind>``) whose context goes into the
message's headers, with the intent's id; a final result or a fill also carries its
trace id in ``metadata["trace_id"]``, and a result's outcome (a skip, an error) marks
the span that published it and the span it was published from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TypeVar

import msgspec
from nats.aio.msg import Msg
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, use_span

from intentbus import telemetry
from intentbus.bus.streams import ConsumerSpec
from intentbus.schemas import ExecutionIntent, ExecutionResult, ExecutionStatus, Fill
from intentbus.telemetry import instruments

FAILED = (ExecutionStatus.ERROR, ExecutionStatus.UNKNOWN)
M = TypeVar("M", ExecutionResult, Fill)


def _intent_id(item: object, msg: Msg | None = None) -> str | None:
    found = getattr(item, "intent_id", None)
    if isinstance(found, str):
        return found
    if msg is not None and msg.headers:
        return msg.headers.get(telemetry.INTENT_HEADER)
    return None


class ConsumeObserver:
    """Spans, log context and metrics of one consumer's messages."""

    def __init__(self, spec: ConsumerSpec) -> None:
        self._spec = spec
        self._labels = {"stream": spec.stream, "consumer": spec.durable}
        self._open: dict[int, Span] = {}
        instruments.dead_letters().add(0, self._labels)  # the series exists from the start

    def fetched(self, msgs: list[Msg]) -> None:
        """Open each message's span as its batch arrives; note the consumer's lag."""
        if not msgs:
            return
        if telemetry.metrics_on():
            pending = msgs[-1].metadata.num_pending
            if pending is not None:
                instruments.consumer_pending().set(pending, self._labels)
        if not telemetry.tracing_on():
            return
        tracer = telemetry.tracer()
        for msg in msgs:
            meta = msg.metadata
            attributes = telemetry.span_attributes(
                **{
                    "messaging.system": "nats",
                    "messaging.destination.name": msg.subject,
                    "messaging.consumer.group.name": self._spec.durable,
                    "messaging.nats.stream": meta.stream,
                    "messaging.nats.stream_seq": meta.sequence.stream,
                    "messaging.nats.delivered": meta.num_delivered,
                    "intentbus.intent_id": _intent_id(None, msg),
                }
            )
            self._open[id(msg)] = tracer.start_span(
                f"{meta.stream} consume",
                context=telemetry.extract(msg.headers),
                kind=SpanKind.CONSUMER,
                attributes=attributes,
            )

    @contextmanager
    def handling(self, msg: Msg, item: object) -> Iterator[Span]:
        """Run the handler of one message inside its span and its intent's log scope.

        Without tracing, the message's trace context (if any) is made current, so what
        the handler publishes carries it on, and the span is a non-recording one.
        """
        span = self._open.pop(id(msg), None)
        if span is None and telemetry.tracing_on():  # not opened by fetched()
            self.fetched([msg])
            span = self._open.pop(id(msg), None)
        if isinstance(item, ExecutionIntent):
            self._intent_metrics(item)
            if span is not None and span.is_recording():
                span.set_attribute("intentbus.intent_id", item.intent_id)
                span.set_attribute("intentbus.position_id", item.position_id)
        intent_id = _intent_id(item, msg)
        if span is not None:
            with use_span(span, end_on_exit=True), telemetry.intent_scope(intent_id):
                yield span
            return
        token = None
        if telemetry.has_context(msg.headers):
            token = otel_context.attach(telemetry.extract(msg.headers))
        try:
            with telemetry.intent_scope(intent_id):
                yield trace.get_current_span()
        finally:
            if token is not None:
                otel_context.detach(token)

    def _intent_metrics(self, item: ExecutionIntent) -> None:
        if not telemetry.metrics_on():
            return
        labels = {"venue": item.token_chain, "book": item.book_id}
        instruments.intents_consumed().add(1, {**labels, "action": item.action.value})
        age = (datetime.now(UTC) - item.created_at).total_seconds()
        instruments.intent_age().record(max(age, 0.0), labels)

    def settled(self, span: Span, outcome: object) -> None:
        """Record how the message was settled (Ack, Nak, Term) on its span."""
        if span.is_recording():
            span.set_attribute("intentbus.disposition", type(outcome).__name__.lower())
            reason = getattr(outcome, "reason", None) or getattr(outcome, "error", None)
            if reason:
                span.set_attribute("intentbus.disposition.reason", str(reason))

    def dead_lettered(self, msg: Msg, error: str, *, stored: bool = True) -> None:
        """Count a dead letter; end the message's span (if still open) as an error."""
        if stored:
            instruments.dead_letters().add(1, self._labels)
        span = self._open.pop(id(msg), None)
        if span is not None:
            telemetry.set_outcome(span, error=f"dead-lettered: {error}")
            span.end()


@contextmanager
def publishing(
    kind: str,
    subject: str,
    msg_id: str,
    intent_id: str | None = None,
    on_span: Callable[[Span], None] | None = None,
) -> Iterator[dict[str, str]]:
    """Publish inside a producer span; yield the headers that carry its context.

    Marks are published without a span (a stream of prices, no intent's work).
    """
    if kind == "mark":
        yield {}
        return
    if not telemetry.tracing_on():  # pass a received trace context on, nothing more
        headers = telemetry.inject({}) if telemetry.in_trace() else {}
        if intent_id is not None:
            headers[telemetry.INTENT_HEADER] = intent_id
        yield headers
        return
    attributes = telemetry.span_attributes(
        **{
            "messaging.system": "nats",
            "messaging.destination.name": subject,
            "messaging.message.id": msg_id,
            "intentbus.intent_id": intent_id,
        }
    )
    name = f"publish {kind}"
    tracer = telemetry.tracer()
    with tracer.start_as_current_span(name, kind=SpanKind.PRODUCER, attributes=attributes) as span:
        if on_span is not None:
            on_span(span)
        headers = telemetry.inject({})
        if intent_id is not None:
            headers[telemetry.INTENT_HEADER] = intent_id
        yield headers


@contextmanager
def requesting(name: str, subject: str) -> Iterator[dict[str, str] | None]:
    """Send a request inside a client span; yield the headers carrying its context."""
    if not telemetry.tracing_on():  # pass a received trace context on, nothing more
        yield (telemetry.inject({}) or None) if telemetry.in_trace() else None
        return
    attributes = {"messaging.system": "nats", "messaging.destination.name": subject}
    tracer = telemetry.tracer()
    with tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=attributes):
        yield telemetry.inject({}) or None


@contextmanager
def serving(name: str, msg: Msg) -> Iterator[Span]:
    """Answer a request inside a server span, the child of the requester's."""
    tracer = telemetry.tracer()
    attributes = {"messaging.system": "nats", "messaging.destination.name": msg.subject}
    with tracer.start_as_current_span(
        name, context=telemetry.extract(msg.headers), kind=SpanKind.SERVER, attributes=attributes
    ) as span:
        yield span


def with_trace_id(message: M) -> M:
    """Return the message with the current trace id in ``metadata["trace_id"]``."""
    trace_id = telemetry.current_trace_id()
    if trace_id is None or "trace_id" in message.metadata:
        return message
    return msgspec.structs.replace(message, metadata={**message.metadata, "trace_id": trace_id})


def count_result(result: ExecutionResult) -> None:
    """Count a published final result by venue, book, status and skip reason."""
    labels = {
        "venue": result.venue,
        "book": result.book_id,
        "status": result.status.value,
        "skip_reason": result.skip_reason or "",
    }
    instruments.results().add(1, labels)


def mark_result(span: Span, result: ExecutionResult) -> None:
    """Put a result's status on a span; a skip or an error sets its status with the reason."""
    if not span.is_recording():
        return
    span.set_attribute("intentbus.result.status", result.status.value)
    if result.status is ExecutionStatus.SKIPPED:
        telemetry.set_outcome(span, skip_reason=result.skip_reason or "unknown")
    elif result.status in FAILED:
        telemetry.set_outcome(span, error=f"{result.status.value}: {result.error or ''}")


def fill_published(fill: Fill) -> None:
    """Count a published fill."""
    labels = {"venue": fill.venue, "book": fill.book_id, "liquidity": fill.liquidity.value}
    instruments.fills().add(1, labels)
