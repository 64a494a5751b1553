"""``intentbus demo``: a scripted book through real services, printed as tables."""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from pathlib import Path
from typing import Annotated

import typer
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import DeliverPolicy

from intentbus.bus import LedgerUnavailable, PositionClient, Publisher
from intentbus.bus.embedded import EmbeddedNatsServer
from intentbus.cli.demo_script import DEMO_POSITIONS, DEMO_PRICES, demo_intents
from intentbus.cli.processes import ServiceProcesses
from intentbus.cli.tables import intents_table, results_table
from intentbus.command.common import NatsUrlOption, bus_session, console, fail, run
from intentbus.command.tables import positions_table
from intentbus.schemas import ExecutionResult, decoder


def demo(
    nats_url: NatsUrlOption = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for every result.")] = 60.0,
) -> None:
    """Run ledger and paper executor as processes and trade a scripted book on two books.

    Without a NATS URL an embedded nats-server with JetStream runs in a temporary folder.
    Everything runs under a fresh namespace, so an existing server's streams are untouched.
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
    prices = ",".join(f"{symbol}:{price:g}" for symbol, price in DEMO_PRICES.items())
    async with bus_session(nats_url, namespace, name="intentbus-demo") as bus:
        with ServiceProcesses(workdir) as services:
            services.start("ledger", "ledger", "--db", str(workdir / "ledger.sqlite3"), *common)
            services.start(
                "executor-paper",
                "executor",
                "--venue",
                "paper",
                "--option",
                f"prices={prices}",
                *common,
            )
            positions = PositionClient(bus.nc, bus.topology, timeout_s=1.0)
            with console.status("waiting for the ledger"):
                await _wait_for_ledger(positions, services, timeout_s)
            for request in DEMO_POSITIONS:
                await positions.open(request)
            intents = demo_intents()
            publisher = Publisher(bus.js, bus.topology)
            sub = await bus.js.subscribe(
                bus.topology.results_filter(),
                stream=bus.topology.results_stream,
                ordered_consumer=True,
                deliver_policy=DeliverPolicy.ALL,
            )
            for intent in intents:
                await publisher.intent(intent)
            console.print(intents_table(intents, title="Intents published (in order)"))
            results, last_seq = await _collect_results(sub, len(intents), services, timeout_s)
            await sub.unsubscribe()
            order = {intent.intent_id: n for n, intent in enumerate(intents)}
            results.sort(key=lambda r: order[r.intent_id])
            console.print(results_table(results, title="Results from the paper executor"))
            await positions.get(DEMO_POSITIONS[0].position_id, min_results_seq=last_seq)
            reply = await positions.list()
            console.print(positions_table(reply.positions, title="Positions in the ledger"))
            codes = services.stop_all()
    bad = {name: code for name, code in codes.items() if code != 0}
    if bad:
        console.print(f"[red]services exited with errors: {bad}[/]")
    return len(results) == len(intents) and not bad


async def _wait_for_ledger(
    positions: PositionClient, services: ServiceProcesses, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        dead = services.failed()
        if dead:
            raise fail(f"{dead[0]} exited:\n{services.log_tail(dead[0])}", code=1)
        try:
            await positions.list()
            return
        except LedgerUnavailable:
            if time.monotonic() > deadline:
                raise fail("the ledger did not answer in time", code=1) from None
            await asyncio.sleep(0.1)


async def _collect_results(
    sub: object, expected: int, services: ServiceProcesses, timeout_s: float
) -> tuple[list[ExecutionResult], int]:
    result_decoder = decoder(ExecutionResult)
    results: list[ExecutionResult] = []
    last_seq = 0
    deadline = time.monotonic() + timeout_s
    with console.status(f"waiting for {expected} results") as status:
        while len(results) < expected and time.monotonic() < deadline:
            dead = services.failed()
            if dead:
                raise fail(f"{dead[0]} exited:\n{services.log_tail(dead[0])}", code=1)
            try:
                msg = await sub.next_msg(timeout=0.5)  # type: ignore[attr-defined]
            except NatsTimeoutError:
                continue
            results.append(result_decoder.decode(msg.data))
            last_seq = max(last_seq, msg.metadata.sequence.stream)
            status.update(f"waiting for results: {len(results)}/{expected}")
    if len(results) < expected:
        console.print(f"[red]only {len(results)} of {expected} results arrived[/]")
    return results, last_seq


def register(app: typer.Typer) -> None:
    """Add the demo command."""
    app.command()(demo)
