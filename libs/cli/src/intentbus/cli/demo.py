"""``intentbus demo``: a scripted book, the PM and a Hyperliquid book through real services.

The paper acts are in :mod:`intentbus.cli.demo_run` (the script in
:mod:`intentbus.cli.demo_script`), the PM's in :mod:`intentbus.cli.demo_pm`, the
Hyperliquid one in :mod:`intentbus.cli.demo_hyperliquid`.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated

import typer

from intentbus.bus import LedgerUnavailable, PositionClient
from intentbus.bus.embedded import EmbeddedNatsServer
from intentbus.cli.demo_hyperliquid import run_hyperliquid_act, start_hyperliquid
from intentbus.cli.demo_pm import run_pm_act
from intentbus.cli.demo_run import run_acts
from intentbus.cli.demo_script import VENUE, venue_options
from intentbus.cli.demo_watch import StreamWatch
from intentbus.cli.processes import ServiceProcesses
from intentbus.command.common import BusSession, NatsUrlOption, bus_session, console, fail, run

_PROBE_PAUSE_S = 0.1  # between readiness probes answered at once with "no responders"


def demo(
    nats_url: NatsUrlOption = None,
    timeout: Annotated[
        float, typer.Option(help="Seconds each step may wait for its messages.")
    ] = 60.0,
) -> None:
    """Run the services as processes: a scripted paper book, the PM, a Hyperliquid book.

    A low-urgency BTC order rests on the paper venue; marks then move the market through
    it and it fills in parts, printed as the fills arrive. Then the feed and the PM trade
    two books on the paper venue, and a Hyperliquid executor trades the local Hyperliquid
    venue (an ADD and an EXIT). Without a NATS URL an embedded nats-server with
    JetStream runs in a temporary folder. Everything runs under a fresh namespace, so an
    existing server's streams are untouched.
    """
    with tempfile.TemporaryDirectory(prefix="intentbus-demo-") as tmp:
        workdir = Path(tmp)
        server: EmbeddedNatsServer | None = None
        if nats_url is None:
            server = EmbeddedNatsServer(str(workdir / "nats"))
            with console.status("starting embedded nats-server"):
                nats_url = server.start()
            console.print(f"embedded nats-server (JetStream) at [bold]{nats_url}[/]")
        try:
            ok = run(_demo(nats_url, workdir, timeout))
        finally:
            if server is not None:
                server.stop()
    if not ok:
        raise typer.Exit(1)


async def _demo(nats_url: str, workdir: Path, timeout_s: float) -> bool:
    namespace = "demo" + uuid.uuid4().hex[:8]
    common = ["--nats-url", nats_url, "--namespace", namespace]
    venue_flags = [flag for option in venue_options() for flag in ("--option", option)]
    async with bus_session(nats_url, namespace, name="intentbus-demo") as bus:
        with ServiceProcesses(workdir) as services:
            services.start("ledger", "ledger", "--db", str(workdir / "ledger.sqlite3"), *common)
            services.start("paper-venue", "paper-venue", *venue_flags, *common)
            services.start("executor-paper", "executor", "--venue", VENUE, *common)
            hl_url = await start_hyperliquid(services, workdir, common, timeout_s)
            console.print(
                f"namespace [bold]{namespace}[/]: ledger, paper venue "
                f"({' '.join(venue_options())}), paper executor, local Hyperliquid venue and "
                "Hyperliquid executor started as processes"
            )
            positions = PositionClient(bus.nc, bus.topology, timeout_s=1.0)
            await _ready(services, "the ledger", _ledger_probe(positions), timeout_s)
            await _ready(services, "the paper venue", _venue_probe(bus), timeout_s)
            watch = StreamWatch(bus, services)
            await watch.start()
            try:
                ok = await run_acts(bus, watch, timeout_s)
                ok = await run_pm_act(bus, services, watch, workdir, common, timeout_s) and ok
                ok = await run_hyperliquid_act(bus, watch, hl_url, timeout_s) and ok
            finally:
                await watch.stop()
            codes = services.stop_all()
    bad = {name: code for name, code in codes.items() if code != 0}
    if bad:
        console.print(f"[red]services exited with errors: {bad}[/]")
    console.print("[green]demo done[/]" if ok and not bad else "[red]demo failed[/]")
    return ok and not bad


def _ledger_probe(positions: PositionClient) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        try:
            await positions.list()
        except LedgerUnavailable:
            return False
        return True

    return probe


def _venue_probe(bus: BusSession) -> Callable[[], Awaitable[bool]]:
    """Ask the paper venue server for its rules (the executor waits for the same answer)."""
    from intentbus.venues.paper.client import PaperVenueClient, VenueUnavailable
    from intentbus.venues.paper.protocol import PaperSubjects

    client = PaperVenueClient(bus.nc, PaperSubjects(bus.topology, VENUE), timeout_s=1.0)

    async def probe() -> bool:
        try:
            await client.meta()
        except VenueUnavailable:
            return False
        return True

    return probe


async def _ready(
    services: ServiceProcesses, what: str, probe: Callable[[], Awaitable[bool]], timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    with console.status(f"waiting for {what}"):
        while not await probe():
            dead = services.failed()
            if dead:
                raise fail(f"{dead[0]} exited:\n{services.log_tail(dead[0])}", code=1)
            if time.monotonic() > deadline:
                raise fail(f"{what} did not answer in time", code=1)
            await asyncio.sleep(_PROBE_PAUSE_S)


def register(app: typer.Typer) -> None:
    """Add the demo command."""
    app.command()(demo)
