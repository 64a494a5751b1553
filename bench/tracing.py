"""Tracing stage: what telemetry costs the pipeline, off and on.

*On*: the pipeline stage's loads are run a second time, on a fresh nats-server, with
every service exporting its spans by OTLP/HTTP (``OTEL_TRACES_EXPORTER=otlp``,
``OTEL_EXPORTER_OTLP_ENDPOINT``; metrics off) to a receiver in this process
(:class:`intentbus.testing.otlp.OtlpReceiver`, counting spans rather than keeping them);
the report sets its max throughput and 500/s latency against the pipeline stage's
(telemetry off) of the same run, and counts the spans received, so that tracing
silently off cannot pass for cheap tracing.

*Off*: a throughput figure with 15-25% noise cannot show a cost of 2%, so the middleware's
per-message work with telemetry off (:mod:`intentbus.bus.observe`: the consume side's
``fetched`` + ``handling`` + ``settled`` and the publish side's ``publishing``, around
no-ops) is timed here and set against the executor's CPU per intent measured in the
pipeline stage's max-throughput run.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nats.aio.msg import Msg
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.config import BenchConfig
from bench.intents import IntentSource
from bench.pipeline import run_pipeline
from bench.procs import child_env
from bench.stats import StageFigures
from intentbus import telemetry
from intentbus.bus import Topology
from intentbus.bus.consumer import Ack
from intentbus.bus.observe import ConsumeObserver, publishing
from intentbus.bus.streams import ConsumerSpec
from intentbus.testing.otlp import OtlpReceiver

Say = Callable[[str], None]
ITERATIONS = 20_000
REPEATS = 7
# per intent, the executor consumes the intent and publishes its fill and its final result
PUBLISHES_PER_INTENT = 2
SETTLE_S = 10.0  # after the services stop, the time left for their last exports


class SpanCounter(OtlpReceiver):
    """The tests' OTLP/HTTP receiver, counting spans by service and name instead of keeping them."""

    def __init__(self) -> None:
        super().__init__()
        self.by_service: Counter[str] = Counter()
        self.by_name: Counter[str] = Counter()

    def _take(self, body: bytes) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        services: Counter[str] = Counter()
        names: Counter[str] = Counter()
        for resource_spans in request.resource_spans:
            service = next(
                (
                    a.value.string_value
                    for a in resource_spans.resource.attributes
                    if a.key == "service.name"
                ),
                "",
            )
            for scope_spans in resource_spans.scope_spans:
                services[service] += len(scope_spans.spans)
                names.update(span.name for span in scope_spans.spans)
        with self._lock:
            self.by_service.update(services)
            self.by_name.update(names)
            self.requests += 1

    @property
    def total(self) -> int:
        """Return the number of spans received."""
        with self._lock:
            return sum(self.by_service.values())


def traced_env(endpoint: str) -> dict[str, str]:
    """Return the variables turning tracing on (to ``endpoint``) and metrics off."""
    return {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
    }


@dataclass
class TracingFigures:
    """Give the tracing stage's figures: the traced pipeline run and the off-path timing."""

    on: StageFigures | None = None
    spans_received: int = 0
    export_requests: int = 0
    spans_by_service: dict[str, int] = field(default_factory=dict)
    spans_by_name: dict[str, int] = field(default_factory=dict)
    middleware_off_ns: dict[str, float] = field(default_factory=dict)
    middleware_on_ns: dict[str, float] = field(default_factory=dict)
    error: str | None = None


def best_ns(
    step: Callable[[], None], iterations: int = ITERATIONS, repeats: int = REPEATS
) -> float:
    """Return the best of ``repeats`` means of ``iterations`` calls of ``step``, in ns."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter_ns()
        for _ in range(iterations):
            step()
        best = min(best, (time.perf_counter_ns() - start) / iterations)
    return best


def _fake_intent_msg(topology: Topology) -> tuple[Msg, object]:
    """Return a delivered intent as the executor's consumer sees it, and its decoded intent."""
    subject, intent = IntentSource(topology, 1).next(time.time_ns())
    headers = {"Nats-Msg-Id": intent.intent_id}  # as the bench publishes intents
    reply = f"$JS.ACK.{topology.namespace}_INTENTS.executor.1.7.7.{time.time_ns()}.0"
    return Msg(_client=None, subject=subject, reply=reply, headers=headers), intent  # type: ignore[arg-type]


def time_middleware_on() -> dict[str, float]:
    """Time the same middleware with tracing on, in a child process (ns per call).

    The child installs the SDK's tracer provider with a span processor handing every
    ended span to an exporter that drops it: span creation, attributes, context and
    ending are timed; batching, encoding and sending are not. For information: it shows
    how much of the traced run's CPU is the spans themselves.
    """
    done = subprocess.run(
        [sys.executable, "-m", "bench.tracing", "--on"],
        capture_output=True,
        text=True,
        check=True,
        env=child_env(),
        timeout=300,
    )
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def _tracing_on_here() -> None:
    """Turn tracing on in this process, spans dropped once ended (see time_middleware_on)."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    from intentbus.telemetry import config

    class Drop(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(Drop()))
    trace.set_tracer_provider(provider)
    config.state.trace_exporters = ("bench-drop",)


def time_middleware_off() -> dict[str, float]:
    """Time the bus middleware's per-message work with telemetry off (ns per call).

    ``consume``: ``fetched([msg])`` + ``handling(msg, intent)`` around nothing +
    ``settled(span, Ack)``, once per message (``fetched`` is per batch in the consumer, so
    this over-counts it). ``publish``: the ``publishing`` context manager around nothing,
    as :func:`intentbus.bus.publisher.publish_with_id` enters it. ``per_intent``: one
    consume plus :data:`PUBLISHES_PER_INTENT` publishes (the executor's fill and result).
    """
    return time_middleware()


def time_middleware(on: bool = False) -> dict[str, float]:
    """Time the middleware's per-message work (see :func:`time_middleware_off`)."""
    if not on and (telemetry.tracing_on() or telemetry.metrics_on()):
        raise RuntimeError("telemetry is on in the bench process: the off path cannot be timed")
    topology = Topology("benchoff")
    msg, intent = _fake_intent_msg(topology)
    spec = ConsumerSpec(stream="INTENTS", durable="executor", filter_subjects=(msg.subject,))
    observer = ConsumeObserver(spec)
    ack = Ack()

    def consume() -> None:
        observer.fetched([msg])
        with observer.handling(msg, intent) as span:
            pass
        observer.settled(span, ack)

    def publish() -> None:
        with publishing("fill", "bench.fills", "f-1", "i-1"):
            pass

    def nothing() -> None:
        pass

    empty = best_ns(nothing)  # the loop and the call, taken off both
    consume_ns = max(best_ns(consume) - empty, 0.0)
    publish_ns = max(best_ns(publish) - empty, 0.0)
    return {
        "consume": consume_ns,
        "publish": publish_ns,
        "loop": empty,
        "per_intent": consume_ns + PUBLISHES_PER_INTENT * publish_ns,
    }


async def run_tracing(
    url: str,
    workdir: Path,
    cfg: BenchConfig,
    say: Say,
    extra_pids: dict[str, int],
) -> TracingFigures:
    """Time the off path, then run the pipeline's loads with tracing on; count the spans."""
    figures = TracingFigures()
    say("tracing: timing the middleware with telemetry off")
    figures.middleware_off_ns = time_middleware_off()
    say("tracing: timing the middleware with tracing on (spans dropped, not exported)")
    figures.middleware_on_ns = await asyncio.to_thread(time_middleware_on)
    counter = SpanCounter()
    with counter:
        figures.on, _ = await run_pipeline(
            url, workdir, cfg, say, extra_pids, env=traced_env(counter.url), tag="traced"
        )
        # the services flush their span batches when they stop; give the last exports time
        deadline = time.monotonic() + SETTLE_S
        seen = -1
        while time.monotonic() < deadline and counter.total != seen:
            seen = counter.total
            await asyncio.sleep(1.0)
    figures.spans_received = counter.total
    figures.export_requests = counter.requests
    figures.spans_by_service = dict(counter.by_service)
    figures.spans_by_name = dict(counter.by_name.most_common())
    if figures.on.error:
        figures.error = figures.on.error
    elif figures.spans_received == 0:
        figures.error = "no span received: tracing was not on in the services"
    return figures


if __name__ == "__main__":  # python -m bench.tracing --on: the child of time_middleware_on
    if sys.argv[1:] != ["--on"]:
        raise SystemExit("usage: python -m bench.tracing --on")
    _tracing_on_here()
    print(json.dumps(time_middleware(on=True)))
