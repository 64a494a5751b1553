"""The ``positions`` and ``ledger`` commands against a real nats-server."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from nats.aio.client import Client
from nats.js import JetStreamContext
from typer.testing import CliRunner, Result

from intentbus.bus import BusSettings, LedgerUnavailable, PositionClient, Publisher, Topology
from intentbus.command.app import build_app
from intentbus.ledger.service import LedgerService
from intentbus.schemas import (
    ActionType,
    Direction,
    ExecutionResult,
    ExecutionStatus,
    Position,
    Side,
    decode,
)
from intentbus.testing import wait_for


@pytest_asyncio.fixture
async def ledger_service(
    nats_url: str, topology: Topology, tmp_path: Path
) -> AsyncIterator[LedgerService]:
    """Run a ledger service in the test's event loop."""
    service = LedgerService(
        BusSettings.from_env(nats_url, name="ledger-cli-test"), topology, tmp_path / "l.sqlite3"
    )
    await service.start()
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    yield service
    stop.set()
    await task
    await service.stop()


async def _invoke(*args: str) -> Result:
    """Run ``intentbus ARGS`` in a thread (the command runs its own event loop)."""
    return await asyncio.to_thread(CliRunner().invoke, build_app(), list(args))


def _common(nats_url: str, topology: Topology) -> list[str]:
    return ["--nats-url", nats_url, "--namespace", topology.namespace]


async def test_positions_json_lists_what_the_ledger_keeps(
    nats_url: str, topology: Topology, js: JetStreamContext, ledger_service: LedgerService
) -> None:
    common = _common(nats_url, topology)
    opened = await _invoke(
        "positions",
        "open",
        "p1",
        "--venue",
        "paper",
        "--book",
        "main",
        "--symbol",
        "BTC",
        "--allocation",
        "1500",
        *common,
    )
    assert opened.exit_code == 0, opened.output
    assert "p1" in opened.stdout
    ack = await Publisher(js, topology).result(
        ExecutionResult(
            result_id="res-1",
            intent_id="int-1",
            position_id="p1",
            venue="paper",
            book_id="main",
            token_contract="BTC",
            action=ActionType.ADD,
            status=ExecutionStatus.SUCCESS,
            created_at=datetime.now(UTC),
            side=Side.BUY,
            tokens_bought=0.25,
            price=40_000.0,
        )
    )
    await wait_for(
        lambda: _value(ledger_service.progress.seq), until=lambda s: s >= ack.seq, what="apply"
    )
    listed = await _invoke("positions", "--json", *common)
    assert listed.exit_code == 0, listed.output
    raw: list[Any] = json.loads(listed.stdout)
    positions = [decode(json.dumps(item), Position) for item in raw]
    assert [(p.position_id, p.size, p.allocation_usd) for p in positions] == [("p1", 0.25, 1500.0)]
    assert positions[0].direction is Direction.LONG
    filtered = await _invoke("positions", "--json", "--book", "other", *common)
    assert json.loads(filtered.stdout) == []
    table = await _invoke("positions", *common)
    assert table.exit_code == 0
    assert "Positions" in table.stdout
    assert "p1" in table.stdout


async def test_conflicting_open_and_bad_input_fail_clearly(
    nats_url: str, topology: Topology, ledger_service: LedgerService
) -> None:
    common = _common(nats_url, topology)
    args = ["positions", "open", "p1", "--venue", "paper", "--book", "main", "--symbol", "BTC"]
    assert (await _invoke(*args, "--allocation", "100", *common)).exit_code == 0
    conflict = await _invoke(*args, "--allocation", "200", *common)
    assert conflict.exit_code == 1
    assert "allocation_usd is 100.0, requested 200.0" in conflict.stderr
    negative = await _invoke(*args, "--allocation", "-5", *common)
    assert negative.exit_code == 2
    assert "invalid position" in negative.stderr
    bad_venue = await _invoke("positions", "--venue", "a.b", *common)
    assert bad_venue.exit_code == 2
    assert "not a safe subject token" in bad_venue.stderr
    assert "Traceback" not in conflict.output + negative.output + bad_venue.output


async def test_positions_says_when_no_ledger_is_running(nats_url: str, topology: Topology) -> None:
    result = await _invoke("positions", *_common(nats_url, topology))
    assert result.exit_code == 1
    assert "no ledger is running" in result.stderr


async def test_ledger_command_serves_and_exits_zero_on_sigterm(
    nats_url: str, topology: Topology, nc: Client, tmp_path: Path
) -> None:
    db = tmp_path / "l.db"
    child = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "intentbus.command.app", "ledger", "--db", str(db)],
        *_common(nats_url, topology),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        client = PositionClient(nc, topology, timeout_s=1.0)
        await wait_for(lambda: _answers(client), timeout_s=30, what="the ledger to answer")
        child.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(child.communicate(), timeout=30)
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    assert child.returncode == 0, output.decode()
    assert "ledger stopped" in output.decode()
    assert db.exists()


async def _answers(client: PositionClient) -> bool:
    try:
        await client.list()
    except LedgerUnavailable:
        return False
    return True


async def _value(n: int) -> int:
    return n


@pytest.mark.parametrize("args", [["--namespace", "bad.ns"], ["--durable", "a.b"]])
def test_ledger_command_refuses_bad_names(args: list[str], tmp_path: Path) -> None:
    result = CliRunner().invoke(build_app(), ["ledger", "--db", str(tmp_path / "x.db"), *args])
    assert result.exit_code == 2
    assert "error" in result.stderr
    assert not (tmp_path / "x.db").exists()
