"""Each service serves Prometheus metrics (``--metrics-port``) with the right labels."""

from __future__ import annotations

import asyncio
import socket
import sys
import urllib.request
from typing import Any

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from prometheus_client.parser import text_string_to_metric_families

from intentbus.bus import LedgerUnavailable, PositionClient, Publisher
from intentbus.schemas import (
    ActionType,
    Direction,
    ExecutionResult,
    ExecutionStatus,
    OpenPosition,
    build_intent,
    results_stream_decoder,
)
from intentbus.testing import wait_for
from intentbus.testing.system import ProcessSystem as System

pytestmark = pytest.mark.timeout(120)

Sample = tuple[str, dict[str, str], float]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _scrape_now(port: int) -> list[Sample]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as reply:
            text = reply.read().decode()
    except OSError:
        return []  # not serving yet
    return [
        (sample.name, dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


async def _scrape(port: int) -> list[Sample]:
    return await asyncio.to_thread(_scrape_now, port)


def _value(samples: list[Sample], name: str, **labels: str) -> float | None:
    """Return the sum of the samples named ``name`` whose labels include ``labels``."""
    found = [v for n, ls, v in samples if n == name and labels.items() <= ls.items()]
    return sum(found) if found else None


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


async def _results(js: JetStreamContext, system: System) -> list[ExecutionResult]:
    info = await js.stream_info(system.topology.results_stream)
    found = []
    decode = results_stream_decoder().decode
    if info.state.messages:
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            message = decode((await js.get_msg(system.topology.results_stream, seq)).data or b"")
            if isinstance(message, ExecutionResult):
                found.append(message)
    return found


async def test_services_serve_their_metrics_with_labels(
    system: System, nc: Client, js: JetStreamContext
) -> None:
    ports = {name: _free_port() for name in ("paper-venue", "ledger", "executor")}
    ledger_db = str(system.workdir / "ledger.sqlite3")
    metrics = ("--metrics-port",)
    system.processes.start(
        "paper-venue", "paper-venue", "--option", "prices=BTC:65000",
        *metrics, str(ports["paper-venue"]), *system.common,
    )  # fmt: skip
    system.processes.start(
        "ledger", "ledger", "--db", ledger_db, *metrics, str(ports["ledger"]), *system.common
    )
    system.processes.start(
        "executor", "executor", "--venue", "paper", *system.common,
        env={"INTENTBUS_METRICS_PORT": str(ports["executor"])},  # the variable works too
    )  # fmt: skip
    await _open(nc, system, "pos-metrics")
    publisher = Publisher(js, system.topology)
    common: dict[str, Any] = {
        "position_id": "pos-metrics",
        "token_contract": "BTC",
        "token_chain": "paper",
        "book_id": "main",
    }
    await publisher.intent(build_intent(action=ActionType.ADD, size_frac=0.5, **common))
    await publisher.intent(build_intent(action=ActionType.ADD, size_frac=0.0001, **common))
    subject = system.topology.intents_subject("paper", "main", "pos-metrics")
    await publisher.raw(subject, b'{"schema":"intentbus.intent.v1","intent_id":"bad"}', "bad-1")

    results = await wait_for(
        lambda: _results(js, system), until=lambda r: len(r) == 2, timeout_s=60, what="results"
    )
    statuses = {r.status for r in results}
    assert statuses == {ExecutionStatus.SUCCESS, ExecutionStatus.SKIPPED}, results
    skip_reason = next(r.skip_reason for r in results if r.skip_reason)
    assert skip_reason is not None
    venue = {"venue": "paper", "book": "main"}

    def executor_done(samples: list[Sample]) -> bool:
        return (_value(samples, "intentbus_results_total") or 0) >= 2 and (
            _value(samples, "intentbus_dead_letters_total") or 0
        ) >= 1

    executor = await wait_for(
        lambda: _scrape(ports["executor"]), until=executor_done, timeout_s=30,
        what="the executor's metrics",
    )  # fmt: skip
    assert _value(executor, "intentbus_intents_consumed_total", **venue, action="add") == 2
    assert _value(executor, "intentbus_results_total", **venue, status="success") == 1
    assert (
        _value(
            executor, "intentbus_results_total", **venue, status="skipped", skip_reason=skip_reason
        )
        == 1
    )
    assert (_value(executor, "intentbus_fills_total", **venue, liquidity="taker") or 0) >= 1
    assert _value(executor, "intentbus_intent_age_seconds_count", **venue) == 2
    assert _value(executor, "intentbus_prepare_duration_seconds_count", outcome="ok") == 2
    labels = {"venue": "paper", "operation": "place", "outcome": "ok"}
    assert _value(executor, "intentbus_venue_call_duration_seconds_count", **labels) == 1
    intents_stream = system.topology.intents_stream
    assert _value(executor, "intentbus_dead_letters_total", stream=intents_stream) == 1
    assert _value(executor, "intentbus_consumer_pending", stream=intents_stream) is not None
    assert _value(executor, "intentbus_nats_reconnects_total") == 0

    # The halt state: an operator's switch shows on the executor as its mode's level.
    reduce_only = [sys.executable, "-m", "intentbus.command.app", "reduce-only", "--venue"]
    setter = await asyncio.create_subprocess_exec(
        *reduce_only, "paper", "--reason", "metrics test", *system.common,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert await asyncio.wait_for(setter.wait(), 30) == 0
    halted = await wait_for(
        lambda: _scrape(ports["executor"]),
        until=lambda s: _value(s, "intentbus_halt_state", scope="venue paper") == 1,
        timeout_s=30,
        what="the halt state metric",
    )
    assert _value(halted, "intentbus_halt_state", scope="venue paper") == 1

    def ledger_done(samples: list[Sample]) -> bool:
        return (_value(samples, "intentbus_ledger_intent_to_applied_seconds_count") or 0) >= 2

    ledger = await wait_for(
        lambda: _scrape(ports["ledger"]), until=ledger_done, timeout_s=30,
        what="the ledger's metrics",
    )  # fmt: skip
    assert (_value(ledger, "intentbus_ledger_fill_to_applied_seconds_count", **venue) or 0) >= 1
    assert _value(ledger, "intentbus_ledger_intent_to_applied_seconds_count", **venue) == 2
    fills_stream = system.topology.fills_stream
    assert _value(ledger, "intentbus_consumer_pending", stream=fills_stream) is not None
    assert _value(ledger, "intentbus_dead_letters_total", stream=fills_stream) == 0

    venue_server = await wait_for(
        lambda: _scrape(ports["paper-venue"]), until=bool, timeout_s=30, what="venue metrics"
    )
    assert _value(venue_server, "intentbus_nats_reconnects_total") == 0
