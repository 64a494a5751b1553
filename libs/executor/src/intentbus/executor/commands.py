"""``intentbus executor``: run one venue's executor until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Annotated

import typer

from intentbus.command.common import (
    MetricsPortOption,
    NamespaceOption,
    NatsUrlOption,
    bus_session,
    console,
    fail,
    run,
    start_metrics,
)
from intentbus.executor.base import BaseExecutor
from intentbus.executor.guards import RiskCaps
from intentbus.executor.registry import InvalidOption, UnknownVenue, create_executor
from intentbus.executor.runtime import ExecutorRuntime


def executor(
    venue: Annotated[str, typer.Option("--venue", help="Venue to execute on (entry point name).")],
    book: Annotated[
        str | None, typer.Option("--book", help="Only this book's intents (default: all).")
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            "-o",
            help="Venue option KEY=VALUE (repeatable); also INTENTBUS_<VENUE>_<KEY> env.",
        ),
    ] = None,
    cap: Annotated[
        list[str] | None,
        typer.Option(
            "--cap",
            help="Risk cap [BOOK:]KEY=VALUE (repeatable): max_intent_notional_usd, "
            "max_position_notional_usd, max_intents_per_minute.",
        ),
    ] = None,
    nats_url: NatsUrlOption = None,
    namespace: NamespaceOption = "",
    metrics_port: MetricsPortOption = None,
) -> None:
    """Execute a venue's intents, follow their orders, publish fills and results.

    Replicas of one venue (same --book scope) split the intent partitions between them;
    a replica that stops or dies hands its partitions to the others.
    """
    try:
        venue_executor = create_executor(venue, option or ())
        caps = RiskCaps.parse(cap or ())
    except (UnknownVenue, InvalidOption, ValueError) as exc:
        raise fail(str(exc)) from None
    start_metrics("intentbus-executor", metrics_port)
    run(_serve(venue_executor, book, nats_url, namespace, caps), service=True)


async def _serve(
    venue_executor: BaseExecutor,
    book: str | None,
    nats_url: str | None,
    namespace: str,
    caps: RiskCaps | None = None,
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
                bus.nc, bus.js, bus.topology, venue_executor, book=book, caps=caps
            )
        except ValueError as exc:
            raise fail(str(exc)) from None
        scope = f"book {book}" if book else "every book"
        console.print(
            f"executor [bold]{runtime.venue}[/] for {scope} as replica {runtime.owner}: "
            "it takes its share of the venue's intent partitions"
        )
        await runtime.run(stop)
        stats = runtime.stats
        console.print(
            f"executor {runtime.venue} stopped: placed={stats.placed} skipped={stats.skipped} "
            f"finished={stats.finished} fills={stats.fills} republished={stats.republished}"
        )


def register(app: typer.Typer) -> None:
    """Add the ``executor`` command."""
    app.command("executor")(executor)
