"""The few command helpers the PM needs: options, running a coroutine, failing clearly.

A copy of the minimal pattern of ``intentbus.cli.common`` (services must not import the
CLI); to be replaced by the shared command-plumbing lib when it exists.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

T = TypeVar("T")

_WIDTH = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS") or 160)
console = Console(width=_WIDTH)
err_console = Console(stderr=True, width=_WIDTH)

NatsUrlOption = Annotated[
    str | None,
    typer.Option(
        "--nats-url",
        envvar="NATS_URL",
        help="NATS server URL(s), comma separated (credentials from NATS_* variables).",
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


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    if os.environ.get("INTENTBUS_EVENT_LOOP", "uvloop") != "uvloop":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; Ctrl-C is a clean exit."""
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            return runner.run(coro)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print a clear error and return the exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def stop_on_signals() -> asyncio.Event:
    """Return an event set by SIGINT or SIGTERM (call inside the running loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return stop
