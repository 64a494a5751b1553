"""Tables people read: intents, results, positions, and one-line rows for ``tail``."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
from rich.table import Table
from rich.text import Text

from intentbus.schemas import (
    DeadLetter,
    ExecutionIntent,
    ExecutionResult,
    ExecutionStatus,
    Position,
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


def _num(value: float | None, digits: int = 6) -> str:
    return "" if value is None else f"{value:.{digits}g}"


def intents_table(intents: Iterable[ExecutionIntent], title: str = "Intents") -> Table:
    """Tabulate intents."""
    table = Table(title=title)
    for column in (
        "intent",
        "venue",
        "book",
        "position",
        "symbol",
        "action",
        "size_frac",
        "urgency",
        "flags",
    ):
        table.add_column(column)
    for it in intents:
        flags = ",".join(
            f for f, on in (("reduce_only", it.reduce_only), ("post_only", it.post_only)) if on
        )
        table.add_row(
            it.intent_id[:12],
            it.token_chain,
            it.book_id,
            it.position_id,
            it.token_contract,
            it.action.value,
            f"{it.size_frac:g}",
            it.urgency.value,
            flags,
        )
    return table


def results_table(results: Iterable[ExecutionResult], title: str = "Results") -> Table:
    """Tabulate results: status, fill and the reason for a skip or error."""
    table = Table(title=title)
    for column in (
        "intent",
        "book",
        "position",
        "action",
        "status",
        "side",
        "size",
        "price",
        "fees",
        "reason",
    ):
        table.add_column(column)
    for r in results:
        table.add_row(
            r.intent_id[:12],
            r.book_id,
            r.position_id,
            r.action.value,
            Text(r.status.value, style=_STATUS_STYLE[r.status]),
            r.side.value if r.side else "",
            _num(r.filled_size or None),
            _num(r.price),
            _num(r.fees_usd, 4),
            r.skip_reason or r.error or "",
        )
    return table


def positions_table(positions: Iterable[Position], title: str = "Positions") -> Table:
    """Tabulate positions."""
    table = Table(title=title)
    for column in (
        "position",
        "venue",
        "book",
        "symbol",
        "dir",
        "allocation",
        "size",
        "avg entry",
        "realized PnL",
        "fees",
        "results",
    ):
        table.add_column(column, justify="right" if column[0] in "asrf" else "left")
    for p in positions:
        table.add_row(
            p.position_id,
            p.venue,
            p.book_id,
            p.token_contract,
            p.direction.value,
            f"{p.allocation_usd:,.2f}",
            _num(p.size),
            _num(p.avg_entry_price),
            f"{p.realized_pnl_usd:,.4f}",
            f"{p.fees_usd:,.4f}",
            str(p.results_applied),
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
    from intentbus.cli.common import console

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
                f"{r.side.value if r.side else '':<6}{_num(r.filled_size or None):>12}"
                f"{_num(r.price):>12}  {r.skip_reason or r.error or ''}"
            )
            return Text(line, style=_STATUS_STYLE[r.status])
        d = _dead_letter_decoder.decode(data)
        return Text(f"{d.stream:<20}{d.stream_seq:>8}  {d.error}", style="red")
    except msgspec.MsgspecError as exc:
        return Text(f"(undecodable on {subject}: {exc})", style="red")
