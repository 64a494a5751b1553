"""``intentbus executor``: run one venue's executor until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Annotated

import typer

from intentbus.command.common import NamespaceOption, NatsUrlOption, bus_session, console, fail, run
from intentbus.executor.base import BaseExecutor
from intentbus.executor.registry import InvalidOption, UnknownVenue, create_executor
from intentbus.executor.runtime import ExecutorRuntime


def executor(
    venue: Annotated[str, typer.Option("--venue", help="Venue to execute on (entry point name).")],
    book: Annotated[
        str | None, typer.Option("--book", help="Only this book's intents (default: all).")
    ] = None,
    durable: Annotated[
        str | None,
        typer.Option(
            "--durable", help="Durable consumer shared by replicas (default: executor-VENUE)."
        ),
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            "-o",
            help="Venue option KEY=VALUE (repeatable); also INTENTBUS_<VENUE>_<KEY> env.",
        ),
    ] = None,
    nats_url: NatsUrlOption = None,
    namespace: NamespaceOption = "",
) -> None:
    """Execute a venue's intents and publish their results until SIGINT/SIGTERM."""
    try:
        venue_executor = create_executor(venue, option or ())
    except (UnknownVenue, InvalidOption, ValueError) as exc:
        raise fail(str(exc)) from None
    run(_serve(venue_executor, book, durable, nats_url, namespace))


async def _serve(
    venue_executor: BaseExecutor,
    book: str | None,
    durable: str | None,
    nats_url: str | None,
    namespace: str,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    name = f"intentbus-executor-{venue_executor.venue}"
    async with bus_session(nats_url, namespace, name=name) as bus:
        try:
            runtime = ExecutorRuntime(
                bus.nc, bus.js, bus.topology, venue_executor, book=book, durable=durable
            )
        except ValueError as exc:
            raise fail(str(exc)) from None
        console.print(
            f"executor [bold]{runtime.venue}[/] consuming {runtime.spec.filter_subjects[0]} "
            f"as durable {runtime.durable!r} (owner {runtime.owner})"
        )
        await runtime.run(stop)
        console.print(
            f"executor {runtime.venue} stopped: executed={runtime.stats.executed} "
            f"skipped={runtime.stats.skipped} republished={runtime.stats.republished}"
        )


def register(app: typer.Typer) -> None:
    """Add the ``executor`` command."""
    app.command("executor")(executor)
