"""``intentbus executor``: venue registry, options, and a real process run and stopped."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from nats.aio.client import Client
from nats.js import JetStreamContext
from typer.testing import CliRunner

from intentbus.bus import Publisher, Topology
from intentbus.command.app import build_app
from intentbus.executor.registry import (
    InvalidOption,
    UnknownVenue,
    create_executor,
    env_options,
    installed_venues,
    parse_options,
)
from intentbus.schemas import ExecutionStatus, build_intent
from intentbus.testing import wait_for
from intentbus.testing.executor_harness import read_results
from intentbus.testing.fake_ledger import FakeLedger
from intentbus.venues.paper import PaperConfig, PaperExecutor
from intentbus.venues.paper.server import PaperVenueServer


def test_paper_is_installed_under_the_venue_entry_points() -> None:
    assert "paper" in installed_venues()


def test_unknown_venue_error_lists_the_installed_ones() -> None:
    with pytest.raises(UnknownVenue, match=r"unknown venue 'nope'.*paper"):
        create_executor("nope")


def test_options_come_from_env_overridden_by_flags() -> None:
    env = {"INTENTBUS_PAPER_TIMEOUT_S": "7", "INTENTBUS_PAPER_NAME": "paper2", "OTHER": "x"}
    assert env_options("paper", env) == {"timeout_s": "7", "name": "paper2"}
    executor = create_executor("paper", ["name=paper3"], env)
    assert isinstance(executor, PaperExecutor)
    assert executor.venue == "paper3"
    assert executor.options.timeout_s == 7.0
    with pytest.raises(InvalidOption, match="KEY=VALUE"):
        parse_options(["novalue"])


def test_cli_unknown_venue_exits_2_with_a_clear_error() -> None:
    result = CliRunner().invoke(build_app(), ["executor", "--venue", "nope"])
    assert result.exit_code == 2
    assert "unknown venue 'nope'" in result.output
    assert "paper" in result.output


def test_cli_bad_venue_option_exits_2() -> None:
    result = CliRunner().invoke(
        build_app(), ["executor", "--venue", "paper", "--option", "timeout_s=abc"]
    )
    assert result.exit_code == 2
    assert "timeout_s" in result.output
    market = CliRunner().invoke(
        build_app(), ["executor", "--venue", "paper", "--option", "prices=BTC:1"]
    )
    assert market.exit_code == 2
    assert "paper-venue" in market.output  # market options belong to the venue server


@pytest_asyncio.fixture
async def ledger(nc: Client, js: JetStreamContext, topology: Topology) -> AsyncIterator[FakeLedger]:
    fake = FakeLedger(nc, js, topology)
    await fake.start()
    yield fake
    await fake.stop()


async def test_executor_process_trades_and_exits_0_on_sigterm(
    nats_url: str, nc: Client, js: JetStreamContext, topology: Topology, ledger: FakeLedger
) -> None:
    ledger.open("p1", allocation_usd=1_000.0)
    venue = PaperVenueServer(nc, js, topology, PaperConfig(prices={"BTC": 100.0}, slippage_bps=0))
    await venue.start()
    args = [
        sys.executable,
        "-m",
        "intentbus.command.app",
        "executor",
        "--venue",
        "paper",
        "--nats-url",
        nats_url,
        "--namespace",
        topology.namespace,
    ]
    env = {**os.environ, "INTENTBUS_PAPER_TIMEOUT_S": "3"}
    proc = await asyncio.create_subprocess_exec(
        *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        intent = build_intent(
            action="add",
            size_frac=0.5,
            position_id="p1",
            token_contract="BTC",
            token_chain="paper",
            book_id="main",
            urgency="high",
        )
        await Publisher(js, topology).intent(intent)
        (stored,) = await wait_for(
            lambda: read_results(js, topology), timeout_s=30.0, what="a result from the process"
        )
        _, result = stored
        assert result.intent_id == intent.intent_id
        assert result.status is ExecutionStatus.SUCCESS
        assert result.avg_price == 100.0
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), timeout=20.0)
        assert proc.returncode == 0, err.decode()
        assert b"stopped" in out
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await venue.stop()
