"""``intentbus paper-venue``: run a paper venue server until SIGINT/SIGTERM.

Same options as the other services (``--nats-url``/``NATS_URL``, ``--namespace``/
``INTENTBUS_NAMESPACE``, repeatable ``--option KEY=VALUE``). It needs only the bus, not
the command package's helpers (which moved between packages): the few it uses are here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from typing import Annotated

import typer
from nats.errors import NoServersError

from intentbus import telemetry
from intentbus.bus import BusSettings, Topology, connect, provision
from intentbus.executor.registry import InvalidOption, env_options, parse_options
from intentbus.venues.paper.config import PaperConfig
from intentbus.venues.paper.lease import VenueBusy
from intentbus.venues.paper.server import PaperVenueServer

ENV_PREFIX_VENUE = "paper_venue"  # options also come from INTENTBUS_PAPER_VENUE_<KEY>
CONNECT_TIMEOUT_S = 10.0

NatsUrlOption = Annotated[
    str | None,
    typer.Option(
        "--nats-url",
        envvar="NATS_URL",
        help="NATS server URL(s), comma separated (credentials as for every service).",
        show_default="nats://127.0.0.1:4222",
    ),
]
NamespaceOption = Annotated[
    str,
    typer.Option(
        "--namespace",
        envvar="INTENTBUS_NAMESPACE",
        help="Prefix of every subject, stream and bucket (empty in production).",
    ),
]


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print a clear error and return the exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


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
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            envvar="INTENTBUS_METRICS_PORT",
            help="Serve Prometheus metrics on this port (/metrics); none: no endpoint.",
        ),
    ] = None,
) -> None:
    """Serve a paper venue (accounts, resting orders, fills) until SIGINT/SIGTERM."""
    try:
        options = {**env_options(ENV_PREFIX_VENUE), **parse_options(option or ())}
        if name is not None:
            options["name"] = name
        config = PaperConfig.from_options(options)
    except (InvalidOption, ValueError) as exc:
        raise fail(str(exc)) from None
    try:
        topology = Topology(namespace)
    except ValueError as exc:
        raise fail(str(exc)) from None
    try:
        telemetry.configure_metrics("intentbus-paper-venue", metrics_port)
    except OSError as exc:
        raise fail(f"cannot serve metrics on port {metrics_port}: {exc}", 1) from None
    try:
        asyncio.run(
            _serve(config, BusSettings.from_env(nats_url, name=_client_name(config)), topology)
        )
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _client_name(config: PaperConfig) -> str:
    return f"intentbus-paper-venue-{config.name}"


async def _serve(config: PaperConfig, settings: BusSettings, topology: Topology) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    timeout_s = float(os.environ.get("INTENTBUS_CONNECT_TIMEOUT_S") or CONNECT_TIMEOUT_S)
    try:
        nc = await asyncio.wait_for(connect(settings), timeout_s)
    except (TimeoutError, OSError, NoServersError) as exc:
        where = telemetry.scrub(", ".join(settings.servers))
        raise fail(f"cannot reach NATS at {where} within {timeout_s:g}s ({exc!r})", 1) from None
    try:
        js = nc.jetstream()
        await provision(js, topology)
        server = PaperVenueServer(nc, js, topology, config)
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
    finally:
        await nc.drain()


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def register(app: typer.Typer) -> None:
    """Add the ``paper-venue`` command."""
    app.command("paper-venue")(paper_venue)
