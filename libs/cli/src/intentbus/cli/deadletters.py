"""``intentbus deadletter list|show|redrive``: refused messages, and sending them again.

``redrive SEQ`` re-publishes a dead letter's message (unchanged, or corrected from
``--file``), only with ``--execute``. An intent gets a new id derived from the dead
letter's sequence (``redrive_of=<original>`` in its reason codes), a fresh deadline as
long as its original one, and is refused while a halt switch forbids it; another
message goes back to its subject with ``Nats-Msg-Id`` ``dlr-<seq>``. Both carry the
``Intentbus-Deadletter-Of`` header naming the dead letter.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import msgspec
import typer
from nats.js import JetStreamContext
from rich.syntax import Syntax

from intentbus.bus import HaltStore, Publisher, Topology, publish_with_id
from intentbus.cli.reader import read_stream
from intentbus.cli.redrive import redriven
from intentbus.command.common import (
    NamespaceOption,
    NatsUrlOption,
    bus_session,
    console,
    fail,
    run,
)
from intentbus.command.tables import new_table
from intentbus.schemas import DeadLetter, ExecutionIntent, Fill, decode, results_stream_decoder

DEADLETTER_HEADER = "Intentbus-Deadletter-Of"
app = typer.Typer(help="Dead letters: list, show and redrive refused messages.")


@app.command("list")
def list_(
    limit: Annotated[int, typer.Option(help="Show at most N (the newest).")] = 50,
    nats_url: NatsUrlOption = None,
    namespace: NamespaceOption = "",
) -> None:
    """List dead letters: sequence, where the message was, who refused it and why."""
    run(_list(limit, nats_url, namespace))


async def _list(limit: int, url: str | None, ns: str) -> None:
    async with bus_session(url, ns, name="intentbus-deadletter") as bus:
        info = await bus.js.stream_info(bus.topology.dead_letter_stream)
        start = max(info.state.first_seq, info.state.last_seq - limit + 1)
        table = new_table(
            f"Dead letters ({info.state.messages})",
            ("seq", "received", "stream", "stream seq", "consumer", "subject", "error"),
            frozenset({"seq", "stream seq"}),
        )
        async for msg in read_stream(bus.js, bus.topology.dead_letter_stream, start_seq=start):
            letter = decode(msg.data, DeadLetter)
            table.add_row(
                str(msg.metadata.sequence.stream),
                letter.received_at.isoformat(timespec="seconds"),
                letter.stream,
                str(letter.stream_seq),
                letter.consumer,
                letter.subject,
                letter.error[:120],
            )
    console.print(table)


async def _letter(js: JetStreamContext, topology: Topology, seq: int) -> DeadLetter:
    try:
        msg = await js.get_msg(topology.dead_letter_stream, seq)
    except Exception:
        raise fail(f"no dead letter {seq}") from None
    return decode(msg.data or b"", DeadLetter)


@app.command()
def show(
    seq: Annotated[int, typer.Argument(help="The dead letter's DEADLETTER sequence.")],
    nats_url: NatsUrlOption = None,
    namespace: NamespaceOption = "",
) -> None:
    """Show one dead letter whole, with its message pretty-printed."""
    run(_show(seq, nats_url, namespace))


async def _show(seq: int, url: str | None, ns: str) -> None:
    async with bus_session(url, ns, name="intentbus-deadletter") as bus:
        letter = await _letter(bus.js, bus.topology, seq)
    console.print(f"dead letter {seq}: {letter.stream} seq {letter.stream_seq} on {letter.subject}")
    console.print(f"refused by {letter.consumer} at {letter.received_at.isoformat()}")
    console.print(f"[bold red]error:[/] {letter.error}")
    if letter.headers:
        console.print(f"headers: {letter.headers}")
    try:
        pretty = json.dumps(json.loads(letter.payload), indent=2)
        console.print(Syntax(pretty, "json"))
    except ValueError:
        console.print(letter.payload)


@app.command()
def redrive(
    seq: Annotated[int, typer.Argument(help="The dead letter's DEADLETTER sequence.")],
    file: Annotated[
        Path | None, typer.Option("--file", help="A corrected message (JSON) to send instead.")
    ] = None,
    execute: Annotated[bool, typer.Option("--execute", help="Really publish it.")] = False,
    nats_url: NatsUrlOption = None,
    namespace: NamespaceOption = "",
) -> None:
    """Publish a dead letter's message again (or a corrected one), linked to the original."""
    corrected = file.read_text() if file is not None else None
    run(_redrive(seq, corrected, execute, nats_url, namespace))


async def _redrive(
    seq: int, corrected: str | None, execute: bool, url: str | None, ns: str
) -> None:
    async with bus_session(url, ns, name="intentbus-deadletter") as bus:
        topology = bus.topology
        letter = await _letter(bus.js, topology, seq)
        payload = (corrected if corrected is not None else letter.payload).strip().encode()
        headers = {DEADLETTER_HEADER: f"{topology.dead_letter_stream}:{seq}"}
        try:
            if letter.stream == topology.intents_stream:
                original = decode(payload, ExecutionIntent)
                intent = redriven(original, f"dl{seq}")
                what = f"intent {intent.intent_id} (redrives {original.intent_id})"
            elif letter.stream == topology.results_stream:
                results_stream_decoder().decode(payload)
                intent, what = None, f"{letter.subject} message"
            elif letter.stream == topology.fills_stream:
                decode(payload, Fill)
                intent, what = None, f"{letter.subject} fill"
            else:
                raise fail(f"dead letters of {letter.stream} cannot be redriven")
        except (msgspec.MsgspecError, ValueError) as exc:
            raise fail(f"the message is still invalid ({exc}); correct it with --file") from None
        if not execute:
            raise fail(f"would publish {what}; nothing was published: add --execute")
        if intent is not None:
            halt = await HaltStore.open(bus.js, topology)
            await halt.load()
            switch = halt.stopping(intent.token_chain, intent.book_id, intent.action)
            if switch is not None:
                raise fail(f"refused: halt switch {switch.scope} is {switch.mode.value}")
            ack = await Publisher(bus.js, topology).intent(intent, headers=headers)
        else:
            ack = await publish_with_id(
                bus.js, letter.subject, payload, f"dlr-{seq}", headers=headers
            )
    console.print(f"published {what} (seq {ack.seq}{', duplicate' if ack.duplicate else ''})")


def register(root: typer.Typer) -> None:
    """Add ``deadletter``."""
    root.add_typer(app, name="deadletter")
