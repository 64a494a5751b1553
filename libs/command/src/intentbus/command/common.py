"""Options and helpers every command shares."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import typer
from nats.aio.client import Client
from nats.errors import NoServersError
from nats.js import JetStreamContext
from rich.console import Console

from intentbus import telemetry
from intentbus.bus import BusSettings, PermissionDenied, Topology, connect, provision

T = TypeVar("T")


# Piped output (logs, CI) is not cut at 80 columns: tables keep every column readable.
_WIDTH = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS") or 160)
console = Console(width=_WIDTH)
err_console = Console(stderr=True, width=_WIDTH)

NatsUrlOption = Annotated[
    str | None,
    typer.Option(
        "--nats-url",
        envvar="NATS_URL",
        help="NATS server URL(s), comma separated. Credentials come from NATS_USER/"
        "NATS_PASSWORD(_FILE), NATS_TOKEN(_FILE), NATS_CREDS or NATS_TLS_*.",
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

MetricsPortOption = Annotated[
    int | None,
    typer.Option(
        "--metrics-port",
        envvar="INTENTBUS_METRICS_PORT",
        help="Serve Prometheus metrics on this port (/metrics); none: no endpoint.",
    ),
]


def start_metrics(service: str, port: int | None) -> None:
    """Serve the service's metrics on ``port`` and/or export them as ``OTEL_*`` says."""
    try:
        telemetry.configure_metrics(service, port)
    except OSError as exc:
        raise fail(f"cannot serve metrics on port {port}: {exc}", 1) from None


@dataclass
class BusSession:
    """An open connection with JetStream and the topology in use."""

    nc: Client
    js: JetStreamContext
    topology: Topology


@asynccontextmanager
async def bus_session(
    nats_url: str | None,
    namespace: str,
    *,
    name: str,
    provision_streams: bool = True,
    reach_timeout_s: float | None = None,
) -> AsyncIterator[BusSession]:
    """Connect, provision the core streams (idempotent), and drain on exit.

    A one-shot command gives up after ``reach_timeout_s`` with one clear line instead of
    retrying (and logging) forever like a service does.
    """
    settings = BusSettings.from_env(nats_url, name=name)
    if reach_timeout_s is None:
        reach_timeout_s = float(os.environ.get("INTENTBUS_CONNECT_TIMEOUT_S") or 10.0)
    connection_log = logging.getLogger("intentbus.bus.connection")
    level = connection_log.level
    connection_log.setLevel(logging.ERROR)
    try:
        nc = await asyncio.wait_for(connect(settings), reach_timeout_s)
    except (TimeoutError, OSError, NoServersError) as exc:
        where = telemetry.scrub(", ".join(settings.servers))
        raise fail(
            f"cannot reach NATS at {where} within {reach_timeout_s:g}s ({exc!r})", 1
        ) from None
    finally:
        connection_log.setLevel(level)
    try:
        js = nc.jetstream()
        topology = Topology(namespace)
        if provision_streams:
            await provision(js, topology)
        yield BusSession(nc=nc, js=js, topology=topology)
    finally:
        await nc.drain()


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    if os.environ.get("INTENTBUS_EVENT_LOOP", "uvloop") != "uvloop":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


# A young-generation collection every 10,000 allocations instead of 700 (see tune_gc).
GC_YOUNG_THRESHOLD = 10_000


def tune_gc() -> None:
    """Keep the cyclic garbage collector's cost per message small in a long-running service.

    Everything made at start-up (modules, classes, the CLI) is frozen: no collection walks
    it again. A service allocates hundreds of container objects per message (tasks,
    futures, messages), so with the default threshold of 700 the collector ran hundreds
    of times a second, and the executor spent 7-8% of its CPU in it at full load
    (py-spy, native frames); at 10,000 it is not seen. Cyclic garbage lives a little
    longer: the services' peak RSS is part of ``just bench``.
    """
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, GC_YOUNG_THRESHOLD), middle, old)


def run(coro: Coroutine[Any, Any, T], *, service: bool = False) -> T:
    """Run a command's coroutine; turn Ctrl-C and a refused permission into a clean exit.

    ``service``: a long-running service (executor, ledger, venue, PM); its collector is
    tuned first (:func:`tune_gc`).
    """
    if service:
        tune_gc()
    try:
        # uvloop cuts nats-py's per-message overhead by ~40% (see the NATS notes).
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            return runner.run(coro)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except PermissionDenied as exc:
        raise fail(str(exc), 3) from None


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print a clear error and return the exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)
