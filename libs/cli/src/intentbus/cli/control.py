"""Operator control: the halt switch (``halt``, ``reduce-only``, ``resume``) and ``status``."""

from __future__ import annotations

import asyncio
import getpass
import json
import socket
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from nats.js import JetStreamContext
from rich.console import Group
from rich.live import Live
from rich.table import Table

from intentbus.bus import HaltStore, InvalidSubjectToken, ServiceRegistry, Topology, provision
from intentbus.bus.control import alive, switch_key
from intentbus.command.common import (
    NamespaceOption,
    NatsUrlOption,
    bus_session,
    console,
    fail,
    run,
)
from intentbus.command.tables import new_table
from intentbus.schemas import HaltMode, HaltSwitch

VenueScope = Annotated[str, typer.Option("--venue", help="Only this venue (default: global).")]
BookScope = Annotated[str, typer.Option("--book", help="Only this book.")]
Reason = Annotated[str, typer.Option("--reason", help="Why (shown in every skip it causes).")]
By = Annotated[str | None, typer.Option("--by", help="Who sets it (default: user@host).")]


def _set(mode: HaltMode, venue: str, book: str, reason: str, by: str | None, url: str | None,
         ns: str) -> None:  # fmt: skip
    if not reason.strip():
        raise fail("--reason is required: it is shown in every skip the switch causes")
    try:
        switch_key(venue, book)
        switch = HaltSwitch(
            mode=mode,
            reason=reason,
            set_by=by or f"{getpass.getuser()}@{socket.gethostname()}",
            set_at=datetime.now(UTC),
            venue=venue,
            book=book,
        )
    except (ValueError, InvalidSubjectToken) as exc:
        raise fail(str(exc)) from None
    run(_write(switch, url, ns))


async def _write(switch: HaltSwitch, url: str | None, ns: str) -> None:
    async with bus_session(url, ns, name="intentbus-halt") as bus:
        store = await HaltStore.open(bus.js, bus.topology)
        revision = await store.set(switch)
        switches = await store.load()
    console.print(
        f"halt switch [bold]{switch.scope}[/] is now [bold]{switch.mode.value}[/] "
        f"(revision {revision}); running executors see it at once"
    )
    console.print(switches_table(switches))


def halt(
    reason: Reason = "",
    venue: VenueScope = "",
    book: BookScope = "",
    by: By = None,
    nats_url: NatsUrlOption = None,
    namespace: NamespaceOption = "",
) -> None:
    """Halt: only EMERGENCY_EXIT trades; working orders of other actions are cancelled."""
    _set(HaltMode.HALTED, venue, book, reason, by, nats_url, namespace)


def reduce_only(
    reason: Reason = "",
    venue: VenueScope = "",
    book: BookScope = "",
    by: By = None,
    nats_url: NatsUrlOption = None,
    namespace: NamespaceOption = "",
) -> None:
    """Reduce only: TRIM, EXIT and EMERGENCY_EXIT trade; working ADD/RECLAIM are cancelled."""
    _set(HaltMode.REDUCING, venue, book, reason, by, nats_url, namespace)


def resume(
    reason: Reason = "",
    venue: VenueScope = "",
    book: BookScope = "",
    by: By = None,
    nats_url: NatsUrlOption = None,
    namespace: NamespaceOption = "",
) -> None:
    """Set a scope's switch back to active (a wider switch still applies)."""
    _set(HaltMode.ACTIVE, venue, book, reason, by, nats_url, namespace)


def switches_table(switches: list[HaltSwitch]) -> Table:
    """Tabulate halt switches."""
    table = new_table("Halt switches", ("scope", "mode", "reason", "set by", "set at"), frozenset())
    for s in sorted(switches, key=lambda s: switch_key(s.venue, s.book)):
        style = {"active": "green", "reducing": "yellow", "halted": "bold red"}[s.mode.value]
        table.add_row(
            s.scope, f"[{style}]{s.mode.value}[/]", s.reason, s.set_by, s.set_at.isoformat()
        )
    if not switches:
        table.add_row("global", "[green]active[/]", "(no switch set)", "", "")
    return table


SERVICE_COLUMNS = (
    "service", "state", "instance", "venue/book", "version", "uptime s", "last beat", "last error"
)  # fmt: skip


# status -------------------------------------------------------------------------------
def status(
    watch: Annotated[bool, typer.Option("--watch", help="Refresh as one screen.")] = False,
    every: Annotated[float, typer.Option(help="Seconds between refreshes.")] = 2.0,
    nats_url: NatsUrlOption = None,
    namespace: NamespaceOption = "",
) -> None:
    """Streams, consumers, dead letters, halt switches and the services alive."""
    run(_status(watch, every, nats_url, namespace))


async def _status(watch: bool, every: float, url: str | None, ns: str) -> None:
    async with bus_session(url, ns, name="intentbus-status") as bus:
        halt = await HaltStore.open(bus.js, bus.topology)
        services = await ServiceRegistry.open(bus.js, bus.topology)
        screen = await status_screen(bus.js, bus.topology, halt, services)
        if not watch:
            console.print(screen)
            return
        with Live(screen, console=console, screen=True, auto_refresh=False) as live:
            while True:
                await asyncio.sleep(every)
                live.update(await status_screen(bus.js, bus.topology, halt, services))
                live.refresh()


async def status_screen(
    js: JetStreamContext, topology: Topology, halt: HaltStore, services: ServiceRegistry
) -> Group:
    """Return the whole status as one renderable."""
    streams = new_table(
        "Streams",
        ("stream", "messages", "bytes", "first seq", "first time", "last seq", "last time"),
        frozenset({"messages", "bytes", "first seq", "last seq"}),
    )
    consumers = new_table(
        "Consumers",
        ("stream", "consumer", "pending", "ack pending", "redelivered", "last active"),
        frozenset({"pending", "ack pending", "redelivered"}),
    )
    names = (
        topology.intents_stream,
        topology.results_stream,
        topology.fills_stream,
        topology.dead_letter_stream,
        topology.marks_stream,
    )
    dead_letters = 0
    for name in names:
        state = await stream_state(js, name)
        if name == topology.dead_letter_stream:
            dead_letters = int(state.get("messages", 0))
        streams.add_row(
            name,
            str(state.get("messages", 0)),
            str(state.get("bytes", 0)),
            str(state.get("first_seq", 0)),
            _time(state.get("first_ts")),
            str(state.get("last_seq", 0)),
            _time(state.get("last_ts")),
        )
        for c in await js.consumers_info(name):
            if not c.config.durable_name:
                continue  # ordered readers (tail, replay) come and go
            active = c.delivered.last_active if c.delivered is not None else None
            consumers.add_row(
                name,
                c.name,
                str(c.num_pending or 0),
                str(c.num_ack_pending or 0),
                str(c.num_redelivered or 0),
                _time(active),
            )
    alive_table = new_table(
        "Services",
        SERVICE_COLUMNS,
        frozenset({"uptime s"}),
    )
    now = time.time()
    for beat in await services.all():
        where = "/".join(x for x in (beat.venue, beat.book) if x)
        alive_table.add_row(
            beat.service,
            "[green]alive[/]" if alive(beat, now) else "[bold red]gone[/]",
            beat.instance,
            where,
            beat.version,
            f"{beat.uptime_s:.0f}",
            f"{now - beat.at.timestamp():.1f}s ago",
            beat.last_error or "",
        )
    depth = f"dead letters: [bold]{dead_letters}[/]" + (
        " (see intentbus deadletter list)" if dead_letters else ""
    )
    return Group(streams, consumers, depth, switches_table(await halt.load()), alive_table)


async def stream_state(js: JetStreamContext, name: str) -> dict[str, Any]:
    """Return a stream's raw state (nats-py's StreamState drops the first and last times)."""
    msg = await js._nc.request(f"{js._prefix}.STREAM.INFO.{name}", b"", timeout=5.0)
    state: dict[str, Any] = json.loads(msg.data).get("state", {})
    return state


def _time(value: object) -> str:
    if value is None or value == "0001-01-01T00:00:00Z":
        return ""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return str(value)[:19]


def provision_command(nats_url: NatsUrlOption = None, namespace: NamespaceOption = "") -> None:
    """Create or update the streams and the halt and service buckets (as the operator user).

    Services under least-privilege users may read the streams but not create them.
    """
    run(_provision(nats_url, namespace))


async def _provision(url: str | None, ns: str) -> None:
    async with bus_session(url, ns, name="intentbus-provision", provision_streams=False) as bus:
        changed = await provision(bus.js, bus.topology)
        await HaltStore.open(bus.js, bus.topology)
        await ServiceRegistry.open(bus.js, bus.topology)
    done = f"created or updated: {', '.join(changed)}" if changed else "already as declared"
    console.print(f"streams {done}; halt and service buckets ready")


def register(app: typer.Typer) -> None:
    """Add the control commands."""
    app.command("provision")(provision_command)
    app.command()(halt)
    app.command("reduce-only")(reduce_only)
    app.command()(resume)
    app.command()(status)
