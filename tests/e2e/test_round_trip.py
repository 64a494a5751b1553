"""One intent's round trip through real processes: publish -> executor -> ledger."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from intentbus.bus import LedgerUnavailable, PositionClient, Publisher
from intentbus.schemas import (
    ActionType,
    Direction,
    ExecutionResult,
    ExecutionStatus,
    OpenPosition,
    Position,
    build_intent,
    decode,
    results_stream_decoder,
)
from intentbus.schemas.jsonschema import default_dir
from intentbus.testing import wait_for
from intentbus.testing.system import ProcessSystem as System

pytestmark = pytest.mark.timeout(90)


async def _ledger_ready(client: PositionClient) -> bool:
    try:
        await client.list()
    except LedgerUnavailable:
        return False
    return True


async def _open(nc: Client, system: System, position_id: str, symbol: str = "BTC") -> None:
    client = PositionClient(nc, system.topology, timeout_s=1.0)
    await wait_for(lambda: _ledger_ready(client), timeout_s=30, what="ledger to answer")
    await client.open(
        OpenPosition(
            position_id=position_id,
            venue="paper",
            book_id="main",
            token_contract=symbol,
            direction=Direction.LONG,
            allocation_usd=10_000.0,
        )
    )


def _positions_json(system: System) -> list[Position]:
    out = subprocess.run(
        [sys.executable, "-m", "intentbus.command.app", "positions", "--json", *system.common],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    raw: list[Any] = json.loads(out.stdout)
    return [decode(json.dumps(item), Position) for item in raw]


async def _results(js: JetStreamContext, system: System) -> list[ExecutionResult]:
    info = await js.stream_info(system.topology.results_stream)
    found = []
    if info.state.messages:
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(system.topology.results_stream, seq)
            message = results_stream_decoder().decode(msg.data or b"")
            if isinstance(message, ExecutionResult):
                found.append(message)
    return found


async def test_hand_written_json_intent_is_executed_and_shows_in_positions(
    system: System, nc: Client, js: JetStreamContext
) -> None:
    system.start_ledger()
    system.start_paper_venue()
    system.start_paper_executor()
    await _open(nc, system, "pos-hand")
    now = datetime.now(UTC)
    hand_written = {
        "schema": "intentbus.intent.v1",
        "intent_id": "hand-written-1",
        "created_at": now.isoformat(),
        "valid_until": (now + timedelta(minutes=5)).isoformat(),
        "action": "add",
        "size_frac": 0.5,
        "urgency": "high",
        "priority": 70,
        "position_id": "pos-hand",
        "token_contract": "BTC",
        "token_chain": "paper",
        "book_id": "main",
        "timeframe": "1h",
    }
    schema = json.loads((Path(default_dir()) / "ExecutionIntent.schema.json").read_text())
    jsonschema.validate(hand_written, schema)
    await js.publish(
        system.topology.intents_subject("paper", "main", "pos-hand"),
        json.dumps(hand_written).encode(),
        headers={"Nats-Msg-Id": "hand-written-1"},
    )
    results = await wait_for(
        lambda: _results(js, system), until=lambda r: len(r) == 1, timeout_s=30, what="result"
    )
    assert results[0].status is ExecutionStatus.SUCCESS, results[0]
    assert results[0].intent_id == "hand-written-1"
    expected_size = results[0].filled_size
    assert expected_size == pytest.approx(10_000.0 * 0.5 / 65_000.0, rel=0.01)

    async def listed() -> list[Position]:
        return _positions_json(system)

    positions = await wait_for(
        listed, until=lambda ps: bool(ps) and ps[0].size > 0, timeout_s=30, what="position"
    )
    assert positions[0].position_id == "pos-hand"
    assert positions[0].size == pytest.approx(expected_size)
    assert positions[0].results_applied == 1
    assert positions[0].fills_applied == results[0].fill_count >= 1


async def test_add_then_exit_published_together_leave_the_position_flat(
    system: System, nc: Client, js: JetStreamContext
) -> None:
    system.start_ledger()
    system.start_paper_venue()
    system.start_paper_executor()
    await _open(nc, system, "pos-flat")
    publisher = Publisher(js, system.topology)
    common: dict[str, Any] = {
        "position_id": "pos-flat",
        "token_contract": "BTC",
        "token_chain": "paper",
        "book_id": "main",
    }
    add = build_intent(action=ActionType.ADD, size_frac=0.8, **common)
    exit_ = build_intent(action=ActionType.EXIT, size_frac=1.0, urgency="critical", **common)
    await publisher.intent(add)
    await publisher.intent(exit_)
    results = await wait_for(
        lambda: _results(js, system), until=lambda r: len(r) == 2, timeout_s=30, what="results"
    )
    by_intent = {r.intent_id: r for r in results}
    assert by_intent[add.intent_id].status is ExecutionStatus.SUCCESS
    assert by_intent[exit_.intent_id].status is ExecutionStatus.SUCCESS, by_intent[exit_.intent_id]
    assert by_intent[exit_.intent_id].filled_size == by_intent[add.intent_id].filled_size
    client = PositionClient(nc, system.topology)
    last_seq = (await js.stream_info(system.topology.results_stream)).state.last_seq
    fills_seq = (await js.stream_info(system.topology.fills_stream)).state.last_seq
    position = await client.get("pos-flat", min_results_seq=last_seq, min_fills_seq=fills_seq)
    assert position is not None
    assert position.size == 0.0
    assert position.closed  # exited: its symbol is free in the book again
    assert position.results_applied == 2
    assert position.fees_usd > 0
