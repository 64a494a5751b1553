"""``intentbus replay``: select recorded intents and re-run them (what-if, shadow, redrive).

``what-if`` (default) touches nothing live; ``shadow`` executes on a throwaway paper
venue and ledger; ``redrive`` publishes new intents for live execution, only with
``--execute`` and a typed confirmation, never while a halt switch forbids them.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from nats.aio.client import Client
from nats.js import JetStreamContext
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from intentbus.bus import PositionClient, Topology
from intentbus.cli.reader import Selection, count_in_range, selected_intents
from intentbus.cli.redrive import RedriveRefused, publish_redrive, survey
from intentbus.cli.shadow import run_shadow_command
from intentbus.cli.whatif import Exporter, Report, WhatIf
from intentbus.command.common import (
    NamespaceOption,
    NatsUrlOption,
    bus_session,
    console,
    fail,
    run,
)
from intentbus.command.tables import new_table
from intentbus.executor.base import BaseExecutor, VenueContext
from intentbus.executor.registry import InvalidOption, UnknownVenue, create_executor
from intentbus.schemas import ActionType


class Mode(StrEnum):
    """What ``replay`` does with the selection."""

    WHAT_IF = "what-if"
    SHADOW = "shadow"
    REDRIVE = "redrive"


class RateColumn(ProgressColumn):
    """Intents per second."""

    def render(self, task: Task) -> Text:
        """Render the rate."""
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f}/s", style="progress.data.speed")


def progress_bar(disable: bool = False) -> Progress:
    """Return a progress bar with count, rate and ETA."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=disable,
    )


async def run_what_if(
    nc: Client,
    js: JetStreamContext,
    topology: Topology,
    selection: Selection,
    *,
    options: tuple[str, ...] = (),
    exporter: Exporter | None = None,
    progress: Progress | None = None,
) -> Report:
    """Re-run ``prepare`` over the selection; return the report (rows exported as they come)."""
    report = Report()
    executors: dict[str, BaseExecutor] = {}
    context = VenueContext(nc=nc, js=js, topology=topology)
    needed: set[str] = set()
    total = await count_in_range(js, topology, selection)
    task = progress.add_task("what-if", total=total) if progress is not None else None
    try:
        if selection.venue is not None:
            needed.add(selection.venue)
        for venue in needed:
            executors[venue] = create_executor(venue, options)
            await executors[venue].start(context)
        engine = WhatIf(
            js,
            topology,
            PositionClient(nc, topology),
            lambda venue: executors[venue],
            venue=selection.venue,
            book=selection.book,
        )
        async for selected in selected_intents(js, topology, selection):
            venue = selected.intent.token_chain
            if venue not in executors:
                executors[venue] = create_executor(venue, options)
                await executors[venue].start(context)
            row = await engine.row(selected)
            report.add(row)
            if exporter is not None:
                exporter.write(row)
            if progress is not None and task is not None:
                progress.update(task, completed=selected.seq - (selection.start_seq or 1) + 1)
    finally:
        for executor in executors.values():
            await executor.stop()
    return report


def report_table(report: Report) -> Report:
    """Print the report: the changed intents and the summary."""
    table = new_table(
        f"What-if: {report.total} intent(s), {sum(report.changes[c] for c in _SHOWN)} changed",
        ("seq", "intent", "venue/book", "position", "action", "change", "recorded", "now"),
        frozenset({"seq"}),
    )
    for row in report.changed:
        table.add_row(
            str(row.seq),
            row.intent_id[:16],
            f"{row.venue}/{row.book}",
            row.position,
            row.action,
            row.change.value,
            row.recorded,
            row.now,
        )
    console.print(table)
    counts = ", ".join(f"{k}: {v}" for k, v in sorted(report.changes.items()))
    console.print(f"outcomes: {counts or 'none'}")
    for line in report.sentences():
        console.print(f"  {line}")
    return report


_SHOWN = ("new_skip", "vanished_skip", "skip_changed", "plan_changed")


def _parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise fail(f"{value!r} is not an ISO time (2026-11-24T10:00:00Z)") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def replay(
    mode: Annotated[Mode, typer.Option("--mode", help="what-if, shadow or redrive.")] = (
        Mode.WHAT_IF
    ),
    venue: Annotated[str | None, typer.Option(help="Only this venue.")] = None,
    book: Annotated[str | None, typer.Option(help="Only this book.")] = None,
    position: Annotated[str | None, typer.Option(help="Only this position.")] = None,
    action: Annotated[list[ActionType] | None, typer.Option(help="Only these actions.")] = None,
    from_seq: Annotated[int | None, typer.Option(help="First INTENTS sequence.")] = None,
    to_seq: Annotated[int | None, typer.Option(help="Last INTENTS sequence.")] = None,
    since: Annotated[str | None, typer.Option(help="Stored at or after (ISO time).")] = None,
    until: Annotated[str | None, typer.Option(help="Created at or before (ISO time).")] = None,
    option: Annotated[
        list[str] | None, typer.Option("--option", "-o", help="Venue executor option K=V.")
    ] = None,
    export: Annotated[Path | None, typer.Option(help="What-if rows to this file.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="Export format: jsonl or csv.")] = "jsonl",
    execute: Annotated[
        bool, typer.Option("--execute", help="Redrive: really publish for live execution.")
    ] = False,
    confirm: Annotated[
        str | None, typer.Option(help="Redrive: the confirmation text, typed in advance.")
    ] = None,
    ttl: Annotated[float | None, typer.Option(help="Redrive: seconds each new intent lives.")] = (
        None
    ),
    run_id: Annotated[str | None, typer.Option(help="Redrive: id of this run.")] = None,
    nats_url: NatsUrlOption = None,
    namespace: NamespaceOption = "",
) -> None:
    """Select intents from INTENTS and re-run them (default what-if: touches nothing live)."""
    if fmt not in {"jsonl", "csv"}:
        raise fail("--format is jsonl or csv")
    selection = Selection(
        venue=venue,
        book=book,
        position=position,
        actions=frozenset(action or ()),
        start_seq=from_seq,
        end_seq=to_seq,
        since=_parse_time(since),
        until=_parse_time(until),
    )
    if mode is Mode.REDRIVE:
        run(_redrive(selection, execute, confirm, ttl, run_id, nats_url, namespace))
    elif mode is Mode.SHADOW:
        try:
            paper = dict(o.split("=", 1) for o in option or ())
        except ValueError:
            raise fail("--option is KEY=VALUE (shadow: the paper venue's options)") from None
        run(run_shadow_command(selection, nats_url, namespace, paper))
    else:
        run(_what_if(selection, tuple(option or ()), export, fmt, nats_url, namespace))


async def _what_if(
    selection: Selection,
    options: tuple[str, ...],
    export: Path | None,
    fmt: str,
    url: str | None,
    ns: str,
) -> None:
    async with bus_session(url, ns, name="intentbus-replay") as bus:
        out = export.open("w", newline="") if export is not None else None
        try:
            with progress_bar(disable=not sys.stderr.isatty()) as progress:
                report = await run_what_if(
                    bus.nc,
                    bus.js,
                    bus.topology,
                    selection,
                    options=options,
                    exporter=Exporter(out, fmt) if out is not None else None,
                    progress=progress,
                )
        except (UnknownVenue, InvalidOption, ValueError) as exc:
            raise fail(str(exc)) from None
        finally:
            if out is not None:
                out.close()
    report_table(report)
    if export is not None:
        console.print(f"{report.total} row(s) written to {export}")


async def _redrive(
    selection: Selection,
    execute: bool,
    confirm: str | None,
    ttl: float | None,
    run_id: str | None,
    url: str | None,
    ns: str,
) -> None:
    async with bus_session(url, ns, name="intentbus-redrive") as bus:
        count, last, stopped = await survey(bus.js, bus.topology, selection)
        if stopped:
            lines = "; ".join(f"{why}: {n} intent(s)" for why, n in stopped.items())
            raise fail(f"redrive refused: halt switch(es) forbid the selection: {lines}")
        if count == 0:
            raise fail("the selection is empty: nothing to redrive")
        expected = f"redrive {count}"
        if not execute:
            raise fail(
                f"{count} intent(s) selected; redrive publishes them again for LIVE execution. "
                f"Nothing was published: add --execute and confirm with '{expected}'"
            )
        typed = confirm
        if typed is None and sys.stdin.isatty():
            typed = typer.prompt(f"type '{expected}' to publish {count} intent(s) for execution")
        if typed != expected:
            raise fail(f"confirmation {typed!r} is not {expected!r}: nothing was published")
        bounded = Selection(**{**selection.__dict__, "end_seq": last})
        run_name = run_id or datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        table = new_table("Redriven intents", ("original", "new intent", "dup"), frozenset())
        published = 0
        try:
            async for selected, new, dup in publish_redrive(
                bus.js,
                bus.topology,
                bounded,
                run_id=run_name,
                ttl=timedelta(seconds=ttl) if ttl else None,
            ):
                published += 1
                if published <= 50:
                    table.add_row(selected.intent.intent_id, new.intent_id, "yes" if dup else "no")
        except RedriveRefused as exc:
            raise fail(f"redrive refused: {exc}") from None
    console.print(table)
    console.print(f"{published} intent(s) redriven as run {run_name}")


def register(app: typer.Typer) -> None:
    """Add ``replay``."""
    app.command()(replay)
