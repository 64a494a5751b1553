"""``intentbus explain INTENT_ID``: the whole story of one intent.

The intent (found in ``INTENTS``, narrowed by ``--venue/--book/--position`` when given),
then from the time it was stored: its order updates and final result (``RESULTS``), its
fills (``FILLS``, up to the result's last fill), the plan the executor made (carried by
the result), and the ledger's position now with this intent's share of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated

import typer
from nats.aio.client import Client
from nats.js import JetStreamContext

from intentbus.bus import LedgerError, LedgerUnavailable, PositionClient, Topology
from intentbus.cli.reader import Selection, read_stream, selected_intents
from intentbus.cli.tables import fills_table, intents_table, results_table
from intentbus.command.common import (
    NamespaceOption,
    NatsUrlOption,
    bus_session,
    console,
    fail,
    run,
)
from intentbus.command.tables import new_table, num, positions_table
from intentbus.schemas import (
    ExecutionIntent,
    ExecutionResult,
    Fill,
    OrderUpdate,
    Position,
    Side,
    decoder,
    results_stream_decoder,
)

_results = results_stream_decoder()
_fills = decoder(Fill)


@dataclass
class Story:
    """Everything recorded about one intent."""

    intent: ExecutionIntent
    seq: int
    stored_at: datetime
    updates: list[OrderUpdate] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    result: ExecutionResult | None = None
    position: Position | None = None

    @property
    def size_change(self) -> float:
        """Return the signed size this intent's fills moved (buys up, sells down)."""
        return sum(f.size if f.side is Side.BUY else -f.size for f in self.fills)


async def find_story(
    nc: Client, js: JetStreamContext, topology: Topology, intent_id: str, selection: Selection
) -> Story | None:
    """Return the story of ``intent_id``, or None when ``INTENTS`` does not hold it."""
    story = None
    async for selected in selected_intents(js, topology, selection):
        if selected.intent.intent_id == intent_id:
            info = await js.get_msg(topology.intents_stream, selected.seq)
            stored = info.time if isinstance(info.time, datetime) else selected.intent.created_at
            story = Story(selected.intent, selected.seq, stored)
            break
    if story is None:
        return None
    intent = story.intent
    venue, book = intent.token_chain, intent.book_id
    async for msg in read_stream(
        js,
        topology.results_stream,
        topology.results_filter(venue, book),
        start_time=story.stored_at,
    ):
        message = _results.decode(msg.data)
        if message.intent_id != intent_id:
            continue
        if isinstance(message, OrderUpdate):
            story.updates.append(message)
        else:
            story.result = message
            break
    last_fill = story.result.last_fill_seq if story.result is not None else None
    if last_fill != 0:
        async for msg in read_stream(
            js,
            topology.fills_stream,
            topology.fills_filter(venue, book),
            start_time=story.stored_at,
            end_seq=last_fill,
        ):
            fill = _fills.decode(msg.data)
            if fill.intent_id == intent_id:
                story.fills.append(fill)
    try:
        story.position = await PositionClient(nc, topology, timeout_s=2.0).get(intent.position_id)
    except (LedgerUnavailable, LedgerError):
        story.position = None
    return story


def print_story(story: Story) -> None:
    """Print the story as tables, in the order things happened."""
    intent = story.intent
    console.print(
        f"[bold]intent {intent.intent_id}[/] (INTENTS seq {story.seq}, stored "
        f"{story.stored_at.isoformat(timespec='seconds')}, valid until "
        f"{intent.valid_until.isoformat(timespec='seconds')})"
    )
    console.print(intents_table([intent], "1. The intent"))
    plan = story.result.plan if story.result is not None else None
    if plan is not None:
        table = new_table(
            "2. The plan",
            ("side", "size", "type", "tif", "price", "mark", "notional $", "constraints"),
            frozenset({"size", "price", "mark", "notional $"}),
        )
        table.add_row(
            plan.side.value,
            num(plan.size),
            plan.order_type.value,
            plan.time_in_force.value,
            num(plan.price),
            num(plan.reference_price),
            f"{plan.notional_usd:,.2f}",
            ", ".join(plan.constraints_applied),
        )
        console.print(table)
    else:
        console.print("2. No plan (skipped, or no final result yet)")
    if story.updates:
        table = new_table(
            "3. Order updates", ("state", "size", "filled", "price", "at"), frozenset()
        )
        for u in story.updates:
            table.add_row(
                u.order_state.value, num(u.size), num(u.filled_size), num(u.price),
                u.created_at.isoformat(timespec="seconds"),
            )  # fmt: skip
        console.print(table)
    console.print(fills_table(story.fills, f"4. Fills ({len(story.fills)})"))
    if story.result is not None:
        console.print(results_table([story.result], "5. Final result"))
        if story.result.skip_reason:
            console.print(f"skipped: {story.result.skip_reason} {story.result.metadata}")
    else:
        console.print("5. No final result yet (the order may still be working)")
    console.print(
        f"6. Ledger change: {story.size_change:+g} {intent.token_contract} from this "
        f"intent's fills, fees {sum(f.fee for f in story.fills):.4f}"
    )
    if story.position is not None:
        console.print(positions_table([story.position], "Position now"))


def explain(
    intent_id: Annotated[str, typer.Argument(help="The intent's id.")],
    venue: Annotated[str | None, typer.Option(help="Its venue (narrows the search).")] = None,
    book: Annotated[str | None, typer.Option(help="Its book (narrows the search).")] = None,
    position: Annotated[str | None, typer.Option(help="Its position (narrows more).")] = None,
    nats_url: NatsUrlOption = None,
    namespace: NamespaceOption = "",
) -> None:
    """Tell the whole story of one intent: plan, order updates, fills, result, ledger."""
    run(_explain(intent_id, Selection(venue=venue, book=book, position=position), nats_url,
                 namespace))  # fmt: skip


async def _explain(intent_id: str, selection: Selection, url: str | None, ns: str) -> None:
    async with bus_session(url, ns, name="intentbus-explain") as bus:
        story = await find_story(bus.nc, bus.js, bus.topology, intent_id, selection)
    if story is None:
        raise fail(f"intent {intent_id} is not in INTENTS (or not in the scope given)")
    print_story(story)


def register(app: typer.Typer) -> None:
    """Add ``explain``."""
    app.command()(explain)
