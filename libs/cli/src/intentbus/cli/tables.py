"""Tables people read: intents, results, and one-line rows for ``tail``.

The positions table is in ``intentbus.command.tables``: the ledger's command prints it.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
from rich.table import Table
from rich.text import Text

from intentbus.command.tables import new_table, num
from intentbus.schemas import (
    DeadLetter,
    ExecutionIntent,
    ExecutionResult,
    ExecutionStatus,
    decoder,
)

_STATUS_STYLE = {
    ExecutionStatus.SUCCESS: "green",
    ExecutionStatus.PARTIAL: "yellow",
    ExecutionStatus.SKIPPED: "cyan",
    ExecutionStatus.ERROR: "red",
    ExecutionStatus.UNKNOWN: "magenta",
}
_intent_decoder = decoder(ExecutionIntent)
_result_decoder = decoder(ExecutionResult)
_dead_letter_decoder = decoder(DeadLetter)


def intents_table(intents: Iterable[ExecutionIntent], title: str = "Intents") -> Table:
    """Tabulate intents, numbered in the order given."""
    table = new_table(
        title,
        ("#", "intent", "venue/book", "position", "action", "size_frac", "urgency", "flags"),
        frozenset({"#", "size_frac"}),
    )
    for n, it in enumerate(intents, start=1):
        flags = " ".join(
            f for f, on in (("reduce-only", it.reduce_only), ("post-only", it.post_only)) if on
        )
        table.add_row(
            str(n),
            it.intent_id[:8],
            f"{it.token_chain}/{it.book_id}",
            it.position_id,
            it.action.value,
            f"{it.size_frac:g}",
            it.urgency.value,
            flags,
        )
    return table


def results_table(results: Iterable[ExecutionResult], title: str = "Results") -> Table:
    """Tabulate results: status, fill and the reason for a skip or error."""
    table = new_table(
        title,
        ("intent", "position", "action", "status", "side", "size", "price", "fees $", "reason"),
        frozenset({"size", "price", "fees $"}),
    )
    for r in results:
        table.add_row(
            r.intent_id[:8],
            r.position_id,
            r.action.value,
            Text(r.status.value, style=_STATUS_STYLE[r.status]),
            r.side.value if r.side else "",
            num(r.filled_size or None),
            num(r.price),
            num(r.fees_usd, 4),
            r.skip_reason or r.error or "",
        )
    return table


_HEADERS = {
    "intents": f"{'intent':<14}{'subject':<34}{'action':<16}{'size_frac':>10}  urgency",
    "results": f"{'intent':<14}{'subject':<34}{'status':<10}{'side':<6}{'size':>12}{'price':>12}"
    "  reason",
    "deadletter": f"{'stream':<20}{'seq':>8}  error",
}


def print_row_header(kind: str) -> None:
    """Print the column header of a ``tail`` listing."""
    from intentbus.command.common import console

    console.print(Text(_HEADERS[kind], style="bold"))


def row_for(kind: str, data: bytes, subject: str) -> Text:
    """Render one streamed message as an aligned row (undecodable ones say so)."""
    try:
        if kind == "intents":
            i = _intent_decoder.decode(data)
            return Text(
                f"{i.intent_id[:12]:<14}{subject:<34}{i.action.value:<16}"
                f"{i.size_frac:>10g}  {i.urgency.value}"
            )
        if kind == "results":
            r = _result_decoder.decode(data)
            line = (
                f"{r.intent_id[:12]:<14}{subject:<34}{r.status.value:<10}"
                f"{r.side.value if r.side else '':<6}{num(r.filled_size or None):>12}"
                f"{num(r.price):>12}  {r.skip_reason or r.error or ''}"
            )
            return Text(line, style=_STATUS_STYLE[r.status])
        d = _dead_letter_decoder.decode(data)
        return Text(f"{d.stream:<20}{d.stream_seq:>8}  {d.error}", style="red")
    except msgspec.MsgspecError as exc:
        return Text(f"(undecodable on {subject}: {exc})", style="red")
