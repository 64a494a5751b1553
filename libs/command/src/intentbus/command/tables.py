"""The table a service's command prints (positions) and the helpers every table uses."""

from __future__ import annotations

from collections.abc import Iterable

from rich.table import Table

from intentbus.schemas import Position


def num(value: float | None, digits: int = 6) -> str:
    """Format a number with ``digits`` significant digits; ``None`` is blank."""
    return "" if value is None else f"{value:.{digits}g}"


def new_table(title: str, columns: tuple[str, ...], numeric: frozenset[str]) -> Table:
    """Return an empty table with these columns, the ``numeric`` ones right-aligned."""
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, justify="right" if column in numeric else "left", overflow="fold")
    return table


def positions_table(positions: Iterable[Position], title: str = "Positions") -> Table:
    """Tabulate positions."""
    table = new_table(
        title,
        (
            "position",
            "venue/book",
            "symbol",
            "dir",
            "alloc $",
            "size",
            "avg entry",
            "rPnL $",
            "fees $",
            "results",
        ),
        frozenset({"alloc $", "size", "avg entry", "rPnL $", "fees $", "results"}),
    )
    for p in positions:
        table.add_row(
            p.position_id,
            f"{p.venue}/{p.book_id}",
            p.token_contract,
            p.direction.value,
            f"{p.allocation_usd:,.0f}",
            num(p.size),
            num(p.avg_entry_price),
            f"{p.realized_pnl_usd:,.2f}",
            f"{p.fees_usd:,.2f}",
            str(p.results_applied),
        )
    return table
