"""Operator commands: ``publish`` intents and ``tail`` intents, results or dead letters."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import msgspec
import typer
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import DeliverPolicy
from rich.progress import Progress
from rich.table import Table

from intentbus.bus import InvalidSubjectToken, Publisher, PublishFailed
from intentbus.cli.intents_input import parse_lines
from intentbus.cli.tables import print_row_header, row_for
from intentbus.cli.tail_filter import TailFilter
from intentbus.command.common import (
    NamespaceOption,
    NatsUrlOption,
    bus_session,
    console,
    err_console,
    fail,
    run,
)
from intentbus.schemas import (
    CLOSING_ACTIONS,
    ActionType,
    ExecutionIntent,
    Mark,
    Urgency,
    build_intent,
    validated,
)


class TailWhat(StrEnum):
    """Streams ``tail`` can follow."""

    INTENTS = "intents"
    RESULTS = "results"
    FILLS = "fills"
    DEADLETTER = "deadletter"


def publish(
    action: Annotated[ActionType | None, typer.Option(help="Action (not hold).")] = None,
    size_frac: Annotated[
        float | None,
        typer.Option(help="Fraction in (0, 1]; required for add, reclaim and trim, 1 for exits."),
    ] = None,
    position: Annotated[str | None, typer.Option(help="Position id.")] = None,
    symbol: Annotated[str | None, typer.Option(help="Token contract / venue symbol.")] = None,
    venue: Annotated[str | None, typer.Option(help="Venue namespace (token_chain).")] = None,
    book: Annotated[str | None, typer.Option(help="Book id.")] = None,
    urgency: Annotated[Urgency, typer.Option()] = Urgency.MEDIUM,
    priority: Annotated[int, typer.Option(help="0..100.")] = 50,
    ttl: Annotated[float, typer.Option(help="Seconds until the intent expires.")] = 60.0,
    reduce_only: Annotated[bool, typer.Option("--reduce-only")] = False,
    post_only: Annotated[bool, typer.Option("--post-only")] = False,
    max_slippage_bps: Annotated[int | None, typer.Option()] = None,
    max_leverage: Annotated[float | None, typer.Option()] = None,
    reason: Annotated[list[str] | None, typer.Option(help="Reason code (repeatable).")] = None,
    file: Annotated[
        str | None,
        typer.Option("--file", "-f", help="JSON Lines of intents; '-' reads standard input."),
    ] = None,
    skip_invalid: Annotated[
        bool, typer.Option(help="Publish the valid lines even when some are invalid.")
    ] = False,
    nats_url: NatsUrlOption = None,
    namespace: NamespaceOption = "",
) -> None:
    """Publish one intent from flags, or many from JSON Lines (all validated first)."""
    if file is not None:
        intents = _intents_from_file(file, skip_invalid)
    else:
        missing = [
            name
            for name, value in (
                ("--action", action),
                ("--position", position),
                ("--symbol", symbol),
                ("--venue", venue),
                ("--book", book),
            )
            if value is None
        ]
        if missing:
            raise fail(f"missing {', '.join(missing)} (or give --file)")
        chosen = action or ActionType.ADD
        size = _flag_size(chosen, size_frac)
        try:
            intents = [
                build_intent(
                    action=chosen,
                    size_frac=size,
                    position_id=position or "",
                    token_contract=symbol or "",
                    token_chain=venue or "",
                    book_id=book or "",
                    urgency=urgency,
                    priority=priority,
                    ttl=timedelta(seconds=ttl),
                    reduce_only=reduce_only,
                    post_only=post_only,
                    max_slippage_bps=max_slippage_bps,
                    max_leverage=max_leverage,
                    reason_codes=tuple(reason or ()),
                )
            ]
        except (ValueError, msgspec.MsgspecError) as exc:
            raise fail(f"invalid intent: {exc}") from None
    run(_publish_all(intents, nats_url, namespace))


def _flag_size(action: ActionType, size_frac: float | None) -> float:
    """Return the size of a flag-built intent: explicit for add/reclaim/trim, 1 for exits."""
    if action is ActionType.HOLD:
        raise fail("a HOLD is never published: there is nothing to execute")
    if size_frac is None:
        if action in CLOSING_ACTIONS:
            return 1.0
        raise fail(f"--size-frac is required for {action.value} (a fraction in (0, 1])")
    if action not in CLOSING_ACTIONS and size_frac <= 0.0:
        raise fail(f"--size-frac must be greater than 0 for {action.value}")
    return size_frac


def _intents_from_file(file: str, skip_invalid: bool) -> list[ExecutionIntent]:
    try:
        lines = sys.stdin.readlines() if file == "-" else Path(file).read_text().splitlines()
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror}") from None
    parsed = parse_lines(lines)
    for item in parsed.warnings:
        err_console.print(f"[yellow]warning:[/] line {item.line}: {item.warning}")
    if parsed.errors:
        table = Table(title="Invalid lines", title_style="bold red")
        table.add_column("line", justify="right")
        table.add_column("error")
        for error in parsed.errors:
            table.add_row(str(error.line), error.error)
        console.print(table)
        if not skip_invalid:
            raise fail(f"{len(parsed.errors)} invalid line(s): nothing was published")
    if parsed.holds:
        numbers = ", ".join(str(n) for n in parsed.hold_lines)
        console.print(
            f"{parsed.holds} hold line(s) skipped (line {numbers}): HOLD is never published"
        )
    return parsed.intents


async def _publish_all(intents: list[ExecutionIntent], nats_url: str | None, ns: str) -> None:
    table = Table(title="Published intents")
    for column in ("intent", "subject", "action", "size_frac", "seq", "dup"):
        table.add_column(column, no_wrap=column in {"intent", "subject"})
    async with bus_session(nats_url, ns, name="intentbus-publish") as bus:
        publisher = Publisher(bus.js, bus.topology)
        with Progress(console=console, transient=True, disable=len(intents) < 50) as progress:
            task = progress.add_task("publishing", total=len(intents))
            for intent in intents:
                try:
                    ack = await publisher.intent(intent)
                except (InvalidSubjectToken, PublishFailed) as exc:
                    raise fail(f"intent {intent.intent_id}: {exc}") from None
                subject = bus.topology.intents_subject(
                    intent.token_chain, intent.book_id, intent.position_id
                )
                table.add_row(
                    intent.intent_id[:12],
                    subject,
                    intent.action.value,
                    f"{intent.size_frac:g}",
                    str(ack.seq),
                    "yes" if ack.duplicate else "no",
                )
                progress.advance(task)
    console.print(table)


def tail(
    what: Annotated[TailWhat, typer.Argument(help="intents, results, fills or deadletter")],
    all_: Annotated[bool, typer.Option("--all", help="Start at the first message.")] = False,
    limit: Annotated[int, typer.Option(help="Stop after N messages (0: follow).")] = 0,
    idle_exit: Annotated[
        float, typer.Option(help="Stop after this many idle seconds (0: never).")
    ] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print each message's JSON.")] = False,
    venue: Annotated[str | None, typer.Option(help="Only this venue.")] = None,
    book: Annotated[str | None, typer.Option(help="Only this book.")] = None,
    position: Annotated[str | None, typer.Option(help="Only this position.")] = None,
    action: Annotated[list[ActionType] | None, typer.Option(help="Only these actions.")] = None,
    status: Annotated[
        list[str] | None, typer.Option(help="Only these result statuses or order states.")
    ] = None,
    from_seq: Annotated[int | None, typer.Option(help="Start at this stream sequence.")] = None,
    since: Annotated[str | None, typer.Option(help="Start at this time (ISO).")] = None,
    nats_url: NatsUrlOption = None,
    namespace: NamespaceOption = "",
) -> None:
    """Follow a stream, one row per message (filtered by venue, book, position, ...)."""
    try:
        filters = TailFilter.build(venue, book, position, action, status, from_seq, since)
    except ValueError as exc:
        raise fail(str(exc)) from None
    run(_tail(what, all_, limit, idle_exit, as_json, nats_url, namespace, filters))


async def _tail(
    what: TailWhat,
    all_: bool,
    limit: int,
    idle_exit: float,
    as_json: bool,
    nats_url: str | None,
    ns: str,
    filters: TailFilter | None = None,
) -> None:
    filters = filters or TailFilter()
    async with bus_session(nats_url, ns, name="intentbus-tail") as bus:
        topology = bus.topology
        stream, subject = {
            TailWhat.INTENTS: (topology.intents_stream, topology.intents_filter()),
            TailWhat.RESULTS: (topology.results_stream, topology.results_filter()),
            TailWhat.FILLS: (topology.fills_stream, topology.fills_filter()),
            TailWhat.DEADLETTER: (topology.dead_letter_stream, topology.dead_letter_filter()),
        }[what]
        subject = filters.subject(what.value, topology) or subject
        start = filters.start()
        sub = await bus.js.subscribe(
            subject,
            stream=stream,
            ordered_consumer=True,
            # a start point (--from-seq, --since) wins over --all
            deliver_policy=None if start else DeliverPolicy.ALL if all_ else DeliverPolicy.NEW,
            config=start,
        )
        if not as_json:
            print_row_header(what.value)
        seen = 0
        while limit == 0 or seen < limit:
            try:
                msg = await sub.next_msg(timeout=idle_exit or 3600.0)
            except NatsTimeoutError:
                if idle_exit:
                    break
                continue
            if not filters.takes(what.value, msg.data):
                continue
            seen += 1
            if as_json:
                console.print_json(msg.data.decode())
            else:
                console.print(row_for(what.value, msg.data, msg.subject))
        await sub.unsubscribe()


def mark(
    venue: Annotated[str, typer.Option(help="Venue namespace.")],
    symbol: Annotated[str, typer.Option(help="Venue symbol.")],
    price: Annotated[float, typer.Option(help="Mark price (> 0).")],
    nats_url: NatsUrlOption = None,
    namespace: NamespaceOption = "",
) -> None:
    """Publish a mark price (the paper venue fills at the latest one)."""
    try:
        message = validated(Mark(venue=venue, symbol=symbol, price=price, at=datetime.now(UTC)))
    except msgspec.ValidationError as exc:
        raise fail(f"invalid mark: {exc}") from None
    run(_publish_mark(message, nats_url, namespace))


async def _publish_mark(message: Mark, nats_url: str | None, ns: str) -> None:
    async with bus_session(nats_url, ns, name="intentbus-mark") as bus:
        ack = await Publisher(bus.js, bus.topology).mark(message)
    subject = bus.topology.marks_subject(message.venue, message.symbol)
    console.print(f"mark {message.symbol} = {message.price:g} on {subject} (seq {ack.seq})")


def register(app: typer.Typer) -> None:
    """Add the operator commands."""
    app.command()(publish)
    app.command()(tail)
    app.command()(mark)
