"""The bus's telemetry middleware against a real nats-server (no SDK in this process).

Trace context travels in NATS headers; the consumer puts the message's intent id and
trace id on every log line of its handling (tasks started there included); a final
result or a fill published inside a trace names it in ``metadata["trace_id"]``.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import msgspec
import pytest
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from intentbus import telemetry
from intentbus.bus import Ack, ConsumerSpec, Disposition, MessageConsumer, Publisher, Topology
from intentbus.schemas import (
    ExecutionIntent,
    ExecutionResult,
    ExecutionStatus,
    build_intent,
    decode,
    result_id_for,
)
from intentbus.telemetry.logs import configure_logging

PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
log = logging.getLogger("intentbus.test.handler")


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure_logging("INFO", stream)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def _intent() -> ExecutionIntent:
    return build_intent(
        action="add", size_frac=0.1, position_id="pos-t", token_contract="BTC",
        token_chain="paper", book_id="main",
    )  # fmt: skip


async def test_handler_log_lines_carry_the_intent_and_its_trace(
    js: JetStreamContext, topology: Topology, captured: io.StringIO
) -> None:
    intent = _intent()
    with telemetry.resumed(PARENT):  # the PM's span: its context goes into the headers
        await Publisher(js, topology).intent(intent)
    stored = await js.get_msg(topology.intents_stream, 1)
    assert (stored.headers or {})["traceparent"].split("-")[1] == TRACE_ID
    assert (stored.headers or {})[telemetry.INTENT_HEADER] == intent.intent_id
    done = asyncio.Event()

    async def handle(item: ExecutionIntent, msg: Msg) -> Disposition:
        log.info("handling")

        async def later() -> None:
            log.info("in a task started by the handler")

        await asyncio.create_task(later())
        done.set()
        return Ack()

    spec = ConsumerSpec(
        stream=topology.intents_stream,
        durable="traced",
        filter_subjects=(topology.intents_filter("paper"),),
    )
    consumer = MessageConsumer(js, topology, spec, ExecutionIntent, handle)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    await asyncio.wait_for(done.wait(), 10)
    stop.set()
    await task
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    mine = [line for line in lines if line["logger"] == log.name]
    assert [line["message"] for line in mine] == ["handling", "in a task started by the handler"]
    for line in mine:
        assert line["intent_id"] == intent.intent_id
        assert line["trace_id"] == TRACE_ID


async def test_a_result_published_in_a_trace_names_it(
    js: JetStreamContext, topology: Topology
) -> None:
    intent = _intent()
    result = ExecutionResult(
        result_id=result_id_for(intent.intent_id),
        intent_id=intent.intent_id,
        position_id=intent.position_id,
        venue="paper",
        book_id="main",
        token_contract="BTC",
        action=intent.action,
        status=ExecutionStatus.SKIPPED,
        created_at=intent.created_at,
        skip_reason="min_notional",
    )
    with telemetry.resumed(PARENT, intent.intent_id):
        ack = await Publisher(js, topology).result(result)
    stored = await js.get_msg(topology.results_stream, ack.seq)
    published = decode(stored.data or b"", ExecutionResult)
    assert published.metadata["trace_id"] == TRACE_ID
    assert (stored.headers or {})["traceparent"].split("-")[1] == TRACE_ID

    # outside a trace nothing is added
    second = _intent()
    other = msgspec.structs.replace(
        result, intent_id=second.intent_id, result_id=result_id_for(second.intent_id)
    )
    ack = await Publisher(js, topology).result(other)
    plain = await js.get_msg(topology.results_stream, ack.seq)
    assert "trace_id" not in decode(plain.data or b"", ExecutionResult).metadata
    assert "traceparent" not in (plain.headers or {})
