"""One intent, one trace: the PM's publish, the executor, the paper venue and the ledger.

Every service runs as its own process and exports its spans by OTLP/HTTP to a receiver
in this test process; the spans are linked by W3C trace context in NATS headers (and by
the traceparent each working order keeps for its fills and final result).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from intentbus.bus import LedgerUnavailable, PositionClient
from intentbus.schemas import (
    Direction,
    ExecutionResult,
    ExecutionStatus,
    Fill,
    OpenPosition,
    decoder,
    results_stream_decoder,
)
from intentbus.testing import wait_for
from intentbus.testing.otlp import OtlpReceiver, ReceivedSpan
from intentbus.testing.system import ProcessSystem as System

pytestmark = pytest.mark.timeout(120)

SPAN_KIND_SERVER, SPAN_KIND_CLIENT, SPAN_KIND_PRODUCER, SPAN_KIND_CONSUMER = 2, 3, 4, 5
STATUS_ERROR = 2


@pytest.fixture
def otlp(monkeypatch: pytest.MonkeyPatch) -> Iterator[OtlpReceiver]:
    """Receive the spans of every process this test starts (they inherit the env)."""
    with OtlpReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
        monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
        monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")  # ms: spans leave quickly
        monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
        monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
        yield receiver


async def _open(nc: Client, system: System, position_id: str) -> None:
    client = PositionClient(nc, system.topology, timeout_s=1.0)

    async def ready() -> bool:
        try:
            await client.list()
        except LedgerUnavailable:
            return False
        return True

    await wait_for(ready, timeout_s=30, what="ledger to answer")
    await client.open(
        OpenPosition(
            position_id=position_id,
            venue="paper",
            book_id="main",
            token_contract="BTC",
            direction=Direction.LONG,
            allocation_usd=10_000.0,
        )
    )


def _publish(system: System, position_id: str, *flags: str) -> None:
    """Publish one intent as the PM would: the ``intentbus publish`` command, a process."""
    subprocess.run(
        [
            sys.executable, "-m", "intentbus.command.app", "publish", "--venue", "paper",
            "--book", "main", "--position", position_id, "--symbol", "BTC", *flags,
            *system.common,
        ],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip


async def _stream(js: JetStreamContext, stream: str) -> list[bytes]:
    info = await js.stream_info(stream)
    found = []
    if info.state.messages:
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            found.append((await js.get_msg(stream, seq)).data or b"")
    return found


async def _final_results(js: JetStreamContext, system: System) -> list[ExecutionResult]:
    decode = results_stream_decoder().decode
    messages = [decode(data) for data in await _stream(js, system.topology.results_stream)]
    return [m for m in messages if isinstance(m, ExecutionResult)]


def _one(spans: list[ReceivedSpan], service: str, name: str) -> ReceivedSpan:
    found = [s for s in spans if s.service == service and s.name.endswith(name)]
    assert len(found) == 1, (service, name, [(s.service, s.name) for s in spans])
    return found[0]


def _ancestors(span: ReceivedSpan, by_id: dict[str, ReceivedSpan]) -> list[ReceivedSpan]:
    chain = []
    while span.parent_span_id in by_id:
        span = by_id[span.parent_span_id]
        chain.append(span)
    return chain


async def test_one_intent_yields_one_trace_across_every_service(
    otlp: OtlpReceiver, system: System, nc: Client, js: JetStreamContext
) -> None:
    system.start_ledger()
    system.start_paper_venue()
    system.start_paper_executor()
    await _open(nc, system, "pos-traced")
    _publish(system, "pos-traced", "--action", "add", "--size-frac", "0.5", "--urgency", "high")

    results = await wait_for(
        lambda: _final_results(js, system), until=lambda r: len(r) == 1, timeout_s=60,
        what="the final result",
    )  # fmt: skip
    result = results[0]
    assert result.status is ExecutionStatus.SUCCESS, result
    trace_id = result.metadata["trace_id"]
    assert isinstance(trace_id, str)
    assert len(trace_id) == 32
    fills = [decoder(Fill).decode(d) for d in await _stream(js, system.topology.fills_stream)]
    assert fills
    assert {f.metadata["trace_id"] for f in fills} == {trace_id}

    wanted = {
        ("intentbus-publish", "publish intent"),
        ("intentbus-executor", "INTENTS consume"),
        ("intentbus-executor", "ledger get"),
        ("intentbus-ledger", "ledger answer get"),
        ("intentbus-executor", "executor prepare"),
        ("intentbus-executor", "executor place"),
        ("intentbus-executor", "venue place"),
        ("intentbus-executor", "publish fill"),
        ("intentbus-executor", "publish result"),
        ("intentbus-paper-venue", "paper-venue place"),
        ("intentbus-ledger", "FILLS consume"),
        ("intentbus-ledger", "RESULTS consume"),
    }

    def complete(spans: list[ReceivedSpan]) -> bool:
        have = {(s.service, s.name) for s in spans}
        return all(any(h[0] == w[0] and h[1].endswith(w[1]) for h in have) for w in wanted)

    async def received() -> list[ReceivedSpan]:
        return otlp.spans(trace_id)

    spans = await wait_for(received, until=complete, timeout_s=30, what="every service's spans")
    assert {s.trace_id for s in spans} == {trace_id}
    by_id = {s.span_id: s for s in spans}

    publish = _one(spans, "intentbus-publish", "publish intent")
    assert publish.parent_span_id == ""  # the PM's publish is the root of the trace
    assert publish.kind == SPAN_KIND_PRODUCER
    consume = _one(spans, "intentbus-executor", "INTENTS consume")
    assert consume.parent_span_id == publish.span_id
    assert consume.kind == SPAN_KIND_CONSUMER
    assert consume.attributes["intentbus.intent_id"] == result.intent_id

    ledger_get = _one(spans, "intentbus-executor", "ledger get")
    assert ledger_get.parent_span_id == consume.span_id
    assert ledger_get.kind == SPAN_KIND_CLIENT
    ledger_answer = _one(spans, "intentbus-ledger", "ledger answer get")
    assert ledger_answer.parent_span_id == ledger_get.span_id
    assert ledger_answer.kind == SPAN_KIND_SERVER

    prepare = _one(spans, "intentbus-executor", "executor prepare")
    assert prepare.parent_span_id == consume.span_id

    place = _one(spans, "intentbus-executor", "executor place")
    assert place.parent_span_id == consume.span_id
    venue_place = _one(spans, "intentbus-executor", "venue place")
    assert venue_place.parent_span_id == place.span_id
    venue_side = _one(spans, "intentbus-paper-venue", "paper-venue place")
    assert venue_side.parent_span_id == venue_place.span_id

    fill_spans = [s for s in spans if s.name == "publish fill"]
    assert len(fill_spans) == len(fills)
    for fill_span in fill_spans:
        assert place in _ancestors(fill_span, by_id)
        applied = [s for s in spans if s.parent_span_id == fill_span.span_id]
        assert [(s.service, s.name.split()[-2][-5:]) for s in applied] == [
            ("intentbus-ledger", "FILLS")
        ]
    result_span = _one(spans, "intentbus-executor", "publish result")
    assert consume in _ancestors(result_span, by_id)
    assert result_span.attributes["intentbus.result.status"] == "success"
    ledger_result = _one(spans, "intentbus-ledger", "RESULTS consume")
    assert ledger_result.parent_span_id == result_span.span_id
    assert ledger_result.kind == SPAN_KIND_CONSUMER

    # A skip marks the intent's spans with its reason.
    _publish(system, "pos-traced", "--action", "add", "--size-frac", "0.0001")
    results = await wait_for(
        lambda: _final_results(js, system), until=lambda r: len(r) == 2, timeout_s=60,
        what="the skipped result",
    )  # fmt: skip
    skipped = results[1]
    assert skipped.status is ExecutionStatus.SKIPPED, skipped
    skipped_trace = skipped.metadata["trace_id"]
    assert isinstance(skipped_trace, str)
    assert skipped_trace != trace_id

    def has_consume_and_result(spans: list[ReceivedSpan]) -> bool:
        names = {s.name.split()[-1] for s in spans if s.service == "intentbus-executor"}
        return {"consume", "result"} <= names

    async def skipped_spans() -> list[ReceivedSpan]:
        return otlp.spans(skipped_trace)

    spans = await wait_for(skipped_spans, until=has_consume_and_result, timeout_s=30)
    for name in ("INTENTS consume", "publish result"):
        span = _one(spans, "intentbus-executor", name)
        assert span.status_code == STATUS_ERROR
        assert span.attributes["intentbus.skip_reason"] == skipped.skip_reason
        assert span.status_message == f"skipped: {skipped.skip_reason}"

    # A reducing intent asks the venue for the account's net: that request and the
    # venue's answer are in its trace too.
    _publish(system, "pos-traced", "--action", "trim", "--size-frac", "0.5", "--urgency", "high")
    results = await wait_for(
        lambda: _final_results(js, system), until=lambda r: len(r) == 3, timeout_s=60,
        what="the trim's result",
    )  # fmt: skip
    trim_trace = results[2].metadata["trace_id"]
    assert isinstance(trim_trace, str)

    def has_net(spans: list[ReceivedSpan]) -> bool:
        return {"venue net_position", "paper-venue net"} <= {s.name for s in spans}

    async def trim_spans() -> list[ReceivedSpan]:
        return otlp.spans(trim_trace)

    spans = await wait_for(trim_spans, until=has_net, timeout_s=30, what="the net request")
    consume = _one(spans, "intentbus-executor", "INTENTS consume")
    net = _one(spans, "intentbus-executor", "venue net_position")
    assert net.parent_span_id == consume.span_id
    assert net.kind == SPAN_KIND_CLIENT
    venue_net = _one(spans, "intentbus-paper-venue", "paper-venue net")
    assert venue_net.parent_span_id == net.span_id
    assert venue_net.kind == SPAN_KIND_SERVER
