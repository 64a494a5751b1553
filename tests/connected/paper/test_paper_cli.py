"""``intentbus paper-venue`` as its own process against a real nats-server."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import typer
from nats.aio.client import Client
from nats.js import JetStreamContext
from typer.testing import CliRunner

from intentbus.bus import Topology
from intentbus.schemas import OrderState, Side
from intentbus.testing import wait_for
from intentbus.venues.paper.client import PaperVenueClient, VenueUnavailable
from intentbus.venues.paper.commands import register
from intentbus.venues.paper.protocol import PaperSubjects
from tests.connected.paper.paper_support import market


def _command(nats_url: str, topology: Topology, *options: str) -> list[str]:
    return [
        str(Path(sys.executable).parent / "intentbus"),  # the installed command
        "paper-venue",
        "--name",
        "pv",
        *options,
        "--nats-url",
        nats_url,
        "--namespace",
        topology.namespace,
    ]


async def _answers(client: PaperVenueClient) -> bool:
    try:
        await client.meta()
    except VenueUnavailable:
        return False
    return True


async def test_the_command_serves_refuses_a_second_and_stops_on_sigterm(
    nats_url: str, topology: Topology, nc: Client, js: JetStreamContext
) -> None:
    options = ("-o", "prices=BTC:100", "--option", "slippage_bps=0")
    first = await asyncio.create_subprocess_exec(
        *_command(nats_url, topology, *options),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        client = PaperVenueClient(nc, PaperSubjects(topology, "pv"), timeout_s=1.0)
        await wait_for(lambda: _answers(client), timeout_s=30, what="the venue to answer")
        order = await client.place(market(Side.BUY, 1.0, 101.0, venue="pv"))
        assert (order.state, order.avg_price) == (OrderState.FILLED, 100.0)
        second = await asyncio.create_subprocess_exec(
            *_command(nats_url, topology),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        refused, _ = await asyncio.wait_for(second.communicate(), timeout=30)
        assert second.returncode == 1, refused.decode()
        assert "already served by" in refused.decode()
        assert await client.net("main", "BTC") == 1.0  # the first one is unharmed
        first.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(first.communicate(), timeout=30)
    finally:
        if first.returncode is None:
            first.kill()
            await first.wait()
    assert first.returncode == 0, output.decode()
    assert "paper venue pv stopped" in output.decode()


def test_bad_options_are_refused_before_connecting() -> None:
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["-o", "colour=red"])
    assert result.exit_code == 2
    assert "unknown paper option" in result.output
    result = CliRunner().invoke(app, ["-o", "accounts=a:x,b:x"])
    assert result.exit_code == 2
    assert "cannot share account" in result.output
