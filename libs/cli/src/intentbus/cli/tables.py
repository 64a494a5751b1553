"""Tables people read: intents, results, fills, and one-line rows for ``tail``.

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
    Fill,
    OrderUpdate,
    decoder,
    results_stream_decoder,
)

_STATUS_STYLE = {
    ExecutionStatus.SUCCESS: "green",
    ExecutionStatus.PARTIAL: "yellow",
    ExecutionStatus.SKIPPED: "cyan",
    ExecutionStatus.ERROR: "red",
    ExecutionStatus.UNKNOWN: "magenta",
    ExecutionStatus.CANCELLED: "yellow",
}
_intent_decoder = decoder(ExecutionIntent)
_result_decoder = results_stream_decoder()
_fill_decoder = decoder(Fill)
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
    """Tabulate final results: status, order state, fills and the reason of a skip or error."""
    table = new_table(
        title,
        (
            "intent",
            "position",
            "action",
            "status",
            "order",
            "side",
            "filled",
            "fills",
            "avg price",
            "fees $",
            "reason",
        ),
        frozenset({"filled", "fills", "avg price", "fees $"}),
    )
    for r in results:
        reason = r.skip_reason or r.error or str(r.metadata.get("reason") or "")
        table.add_row(
            r.intent_id[:8],
            r.position_id,
            r.action.value,
            Text(r.status.value, style=_STATUS_STYLE[r.status]),
            r.order_state.value if r.order_state else "",
            r.side.value if r.side else "",
            num(r.filled_size or None),
            str(r.fill_count) if r.fill_count else "",
            num(r.avg_price),
            num(r.fees_usd or None, 4),
            reason,
        )
    return table


def fills_table(fills: Iterable[Fill], title: str = "Fills") -> Table:
    """Tabulate venue fills in the order given: what filled, at what price, maker or taker."""
    table = new_table(
        title,
        ("#", "intent", "position", "symbol", "side", "size", "price", "liquidity", "fee",
         "venue fill"),
        frozenset({"#", "size", "price", "fee"}),
    )  # fmt: skip
    for n, f in enumerate(fills, start=1):
        table.add_row(
            str(n),
            f.intent_id[:8],
            f.position_id,
            f.symbol,
            f.side.value,
            num(f.size),
            num(f.price),
            f.liquidity.value,
            f"{num(f.fee, 4)} {f.fee_currency}",
            f.venue_fill_id,
        )
    return table


_HEADERS = {
    "intents": f"{'intent':<14}{'subject':<34}{'action':<16}{'size_frac':>10}  urgency",
    "results": f"{'intent':<14}{'subject':<34}{'status':<17}{'side':<6}{'size':>12}"
    f"{'price':>12}  reason",
    "fills": f"{'intent':<14}{'subject':<34}{'fill':<17}{'side':<6}{'size':>12}{'price':>12}  fee",
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
            if isinstance(r, OrderUpdate):
                return Text(
                    f"{r.intent_id[:12]:<14}{subject:<34}{'order ' + r.order_state.value:<17}"
                    f"{r.side.value:<6}{num(r.size):>12}{num(r.price):>12}  resting"
                )
            line = (
                f"{r.intent_id[:12]:<14}{subject:<34}{r.status.value:<17}"
                f"{r.side.value if r.side else '':<6}{num(r.filled_size or None):>12}"
                f"{num(r.avg_price):>12}  {r.skip_reason or r.error or ''}"
            )
            return Text(line, style=_STATUS_STYLE[r.status])
        if kind == "fills":
            f = _fill_decoder.decode(data)
            return Text(
                f"{f.intent_id[:12]:<14}{subject:<34}{f.venue_fill_id[:16]:<17}"
                f"{f.side.value:<6}{num(f.size):>12}{num(f.price):>12}  {f.fee:g} "
                f"{f.fee_currency} {f.liquidity.value}"
            )
        d = _dead_letter_decoder.decode(data)
        return Text(f"{d.stream:<20}{d.stream_seq:>8}  {d.error}", style="red")
    except msgspec.MsgspecError as exc:
        return Text(f"(undecodable on {subject}: {exc})", style="red")
