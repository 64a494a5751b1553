"""``intentbus paper-venue``: run a paper venue server until SIGINT/SIGTERM.

Same options as the other services (``--nats-url``/``NATS_URL``, ``--namespace``/
``INTENTBUS_NAMESPACE``, repeatable ``--option KEY=VALUE``).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from typing import Annotated

import typer

from intentbus.command.common import (
    MetricsPortOption,
    NamespaceOption,
    NatsUrlOption,
    bus_session,
    fail,
    run,
    start_metrics,
)
from intentbus.executor.registry import InvalidOption, env_options, parse_options
from intentbus.venues.paper.config import PaperConfig
from intentbus.venues.paper.lease import VenueBusy
from intentbus.venues.paper.server import PaperVenueServer

ENV_PREFIX_VENUE = "paper_venue"  # options also come from INTENTBUS_PAPER_VENUE_<KEY>


def paper_venue(
    name: Annotated[
        str | None, typer.Option("--name", help="Venue name (executors use --venue NAME).")
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            "-o",
            help="Venue option KEY=VALUE (repeatable); also INTENTBUS_PAPER_VENUE_<KEY> env. "
            "See the paper venue README for the options.",
        ),
    ] = None,
    nats_url: NatsUrlOption = None,
    namespace: NamespaceOption = "",
    metrics_port: MetricsPortOption = None,
) -> None:
    """Serve a paper venue (accounts, resting orders, fills) until SIGINT/SIGTERM."""
    try:
        options = {**env_options(ENV_PREFIX_VENUE), **parse_options(option or ())}
        if name is not None:
            options["name"] = name
        config = PaperConfig.from_options(options)
    except (InvalidOption, ValueError) as exc:
        raise fail(str(exc)) from None
    start_metrics("intentbus-paper-venue", metrics_port)
    run(_serve(config, nats_url, namespace), service=True)


async def _serve(config: PaperConfig, nats_url: str | None, namespace: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    name = f"intentbus-paper-venue-{config.name}"
    async with bus_session(nats_url, namespace, name=name) as bus:
        server = PaperVenueServer(bus.nc, bus.js, bus.topology, config)
        try:
            await server.start()
        except VenueBusy as exc:
            raise fail(str(exc), code=1) from None
        _say(
            f"paper venue {config.name} serving on {server.subjects.api_filter} "
            f"(owner {server.owner}, {server.state.journal_seq} journal entries)"
        )
        waits = [asyncio.create_task(stop.wait()), asyncio.create_task(server.halted.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
            await server.stop()
        if server.halted.is_set():
            raise fail(server.halt_reason, code=1)
        _say(f"paper venue {config.name} stopped")


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def register(app: typer.Typer) -> None:
    """Add the ``paper-venue`` command."""
    app.command("paper-venue")(paper_venue)
