"""The ``positions`` and ``ledger`` commands against a real nats-server."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
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
from intentbus.ledger.stores import store_for
from intentbus.schemas import ActionType, Direction, ExecutionStatus, Position, Side, decode
from intentbus.testing import wait_for
from tests.ledger_messages import fill, result, working


@pytest_asyncio.fixture
async def ledger_service(
    nats_url: str, topology: Topology, ledger_db: str
) -> AsyncIterator[LedgerService]:
    """Run a ledger service in the test's event loop (on SQLite, then on PostgreSQL)."""
    service = LedgerService(
        BusSettings.from_env(nats_url, name="ledger-cli-test"), topology, ledger_db
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


async def test_positions_json_and_table_show_working_orders_and_closed_positions(
    nats_url: str, topology: Topology, js: JetStreamContext, ledger_service: LedgerService
) -> None:
    common = _common(nats_url, topology)
    opened = await _invoke(
        "positions", "open", "p1", "--venue", "paper", "--book", "main", "--symbol", "BTC",
        "--allocation", "1500", *common,
    )  # fmt: skip
    assert opened.exit_code == 0, opened.output
    assert "p1" in opened.stdout
    publisher = Publisher(js, topology)
    await publisher.fill(fill(1, size=0.25, price=40_000.0))
    await publisher.order_update(working("i2", size=0.75, price=39_000.0))
    await publisher.result(result("i1", fill_count=1, filled_size=0.25, last_fill_seq=1))
    await publisher.fill(fill(2, Side.SELL, 0.25, 41_000.0, intent="e1"))
    last = await publisher.result(
        result("e1", action=ActionType.EXIT, side=Side.SELL, fill_count=1, filled_size=0.25,
               last_fill_seq=2)
    )  # fmt: skip
    await wait_for(
        lambda: _value(ledger_service.results.progress.seq),
        until=lambda s: s >= last.seq,
        what="apply",
    )
    listed = await _invoke("positions", "--json", *common)
    assert listed.exit_code == 0, listed.output
    raw: list[Any] = json.loads(listed.stdout)
    positions = [decode(json.dumps(item), Position) for item in raw]
    assert [(p.position_id, p.size, p.allocation_usd) for p in positions] == [("p1", 0.0, 1500.0)]
    [p1] = positions
    assert p1.direction is Direction.LONG
    assert (p1.working_size, p1.working_orders, p1.closed) == (0.75, 1, False)
    assert raw[0]["working_size"] == 0.75
    table = await _invoke("positions", *common)
    assert table.exit_code == 0
    assert "Positions" in table.stdout
    assert "0.75 (1)" in table.stdout
    assert "open" in table.stdout
    filtered = await _invoke("positions", "--json", "--book", "other", *common)
    assert json.loads(filtered.stdout) == []


async def test_closed_positions_are_shown_as_closed(
    nats_url: str, topology: Topology, js: JetStreamContext, ledger_service: LedgerService
) -> None:
    common = _common(nats_url, topology)
    args = ["positions", "open", "p1", "--venue", "paper", "--book", "main", "--symbol", "BTC"]
    assert (await _invoke(*args, "--allocation", "100", *common)).exit_code == 0
    last = await Publisher(js, topology).result(
        result("e1", action=ActionType.EXIT, status=ExecutionStatus.SKIPPED, side=None)
    )
    await wait_for(
        lambda: _value(ledger_service.results.progress.seq),
        until=lambda s: s >= last.seq,
        what="apply",
    )
    listed = await _invoke("positions", "--json", *common)
    assert [item["closed"] for item in json.loads(listed.stdout)] == [True]
    table = await _invoke("positions", *common)
    assert "closed" in table.stdout
    second = await _invoke(
        "positions", "open", "p2", "--venue", "paper", "--book", "main", "--symbol", "BTC",
        "--allocation", "100", *common,
    )  # fmt: skip
    assert second.exit_code == 0, second.output


async def test_ledger_check_shows_results_that_disagree_with_their_fills(
    nats_url: str,
    topology: Topology,
    js: JetStreamContext,
    ledger_service: LedgerService,
    ledger_db: str,
) -> None:
    common = _common(nats_url, topology)
    args = ["positions", "open", "p1", "--venue", "paper", "--book", "main", "--symbol", "BTC"]
    assert (await _invoke(*args, "--allocation", "100", *common)).exit_code == 0
    db = ledger_db
    clean = await _invoke("ledger-check", "--db", db)
    assert clean.exit_code == 0, clean.output
    assert "0 result(s) disagree" in clean.stdout
    publisher = Publisher(js, topology)
    await publisher.fill(fill(1, size=1.0))
    last = await publisher.result(result("i1", fill_count=3, filled_size=1.0, last_fill_seq=1))
    await wait_for(
        lambda: _value(ledger_service.results.progress.seq),
        until=lambda s: s >= last.seq,
        what="apply",
    )
    flagged = await _invoke("ledger-check", "--db", db)
    assert flagged.exit_code == 1
    assert "res-i1" in flagged.stdout
    assert "fill_count" in flagged.stdout
    assert "1 result(s) disagree" in flagged.stdout


async def test_conflicting_open_and_bad_input_fail_clearly(
    nats_url: str, topology: Topology, ledger_service: LedgerService
) -> None:
    common = _common(nats_url, topology)
    args = ["positions", "open", "p1", "--venue", "paper", "--book", "main", "--symbol", "BTC"]
    assert (await _invoke(*args, "--allocation", "100", *common)).exit_code == 0
    conflict = await _invoke(*args, "--allocation", "200", *common)
    assert conflict.exit_code == 1
    assert "allocation_usd is 100.0, requested 200.0" in conflict.stderr
    taken = await _invoke(
        "positions", "open", "p2", "--venue", "paper", "--book", "main", "--symbol", "BTC",
        "--allocation", "100", *common,
    )  # fmt: skip
    assert taken.exit_code == 1
    assert "position p1 is already open on venue paper, book main, symbol BTC" in taken.stderr
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
    nats_url: str, topology: Topology, nc: Client, ledger_db: str
) -> None:
    child = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "intentbus.command.app", "ledger", "--db", ledger_db],
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
    store = store_for(ledger_db, read_only=True)
    await store.open()  # the command created and migrated the database
    try:
        assert await store.meta("results_stream") == topology.results_stream
    finally:
        await store.close()


def test_an_unreachable_database_fails_clearly_without_its_password(tmp_path: Path) -> None:
    url = "postgresql://ledger:hunter22@127.0.0.1:1/ledger"  # nothing listens on port 1
    for command in (["ledger", "--db", url], ["ledger-check", "--db", url]):
        result = CliRunner().invoke(build_app(), command)
        assert result.exit_code == 1, result.output
        assert "cannot" in result.stderr
        assert "127.0.0.1:1/ledger" in result.stderr
        assert "hunter22" not in result.output
        assert "Traceback" not in result.output


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
