"""The table a service's command prints (positions) and the helpers every table uses."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from rich.table import Table
from rich.text import Text

from intentbus.schemas import Drift, Position


def num(value: float | None, digits: int = 6) -> str:
    """Format a number with ``digits`` significant digits; ``None`` is blank."""
    return "" if value is None else f"{value:.{digits}g}"


def new_table(title: str, columns: tuple[str, ...], numeric: frozenset[str]) -> Table:
    """Return an empty table with these columns, the ``numeric`` ones right-aligned."""
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, justify="right" if column in numeric else "left", overflow="fold")
    return table


POSITION_COLUMNS = (
    "position", "venue/book", "symbol", "state", "dir", "alloc $", "size", "working",
    "avg entry", "rPnL $", "fees $", "fills", "results",
)  # fmt: skip
POSITION_NUMERIC = frozenset(
    {"alloc $", "size", "working", "avg entry", "rPnL $", "fees $", "fills", "results"}
)


def drift_of(position: Position, drifts: Mapping[tuple[str, str, str], Drift]) -> Drift | None:
    """Return the unresolved drift of an open position's venue, book and symbol, if any."""
    found = drifts.get((position.venue, position.book_id, position.token_contract))
    return None if position.closed or found is None or found.resolved else found


def positions_table(
    positions: Iterable[Position],
    title: str = "Positions",
    drifts: Mapping[tuple[str, str, str], Drift] | None = None,
) -> Table:
    """Tabulate positions; ``working`` is the open size of working orders (and how many).

    With ``drifts`` (the last drift per venue, book and symbol), a ``drift`` column shows
    the venue's size against the ledger's for positions whose drift is not resolved.
    """
    columns = POSITION_COLUMNS + (("drift",) if drifts else ())
    table = new_table(title, columns, POSITION_NUMERIC)
    for p in positions:
        working = f"{num(p.working_size)} ({p.working_orders})" if p.working_orders else ""
        drift = drift_of(p, drifts) if drifts else None
        extra = (
            (f"venue {num(drift.venue_size)} vs ledger {num(drift.ledger_size)}" if drift else "",)
            if drifts
            else ()
        )
        table.add_row(
            p.position_id,
            f"{p.venue}/{p.book_id}",
            p.token_contract,
            Text("closed", style="dim") if p.closed else Text("open", style="green"),
            p.direction.value,
            f"{p.allocation_usd:,.0f}",
            num(p.size),
            working,
            num(p.avg_entry_price),
            f"{p.realized_pnl_usd:,.2f}",
            f"{p.fees_usd:,.4g}",
            str(p.fills_applied),
            str(p.results_applied),
            *extra,
            style="dim" if p.closed else None,
        )
    return table
