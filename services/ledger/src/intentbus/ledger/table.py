"""Tables of the ledger's commands: positions (with working orders) and result checks."""

from __future__ import annotations

from collections.abc import Iterable

from rich.table import Table
from rich.text import Text

from intentbus.ledger.storage import ResultSummary
from intentbus.schemas import Position

POSITION_COLUMNS = (
    "position", "venue/book", "symbol", "state", "dir", "alloc $", "size", "working",
    "avg entry", "rPnL $", "fees $", "fills", "results",
)  # fmt: skip
NUMERIC = frozenset(
    {"alloc $", "size", "working", "avg entry", "rPnL $", "fees $", "fills", "results"}
)


def _num(value: float, digits: int = 6) -> str:
    return f"{value:.{digits}g}"


def _table(title: str, columns: tuple[str, ...], numeric: frozenset[str]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, justify="right" if column in numeric else "left", overflow="fold")
    return table


def positions_table(positions: Iterable[Position], title: str = "Positions") -> Table:
    """Tabulate positions; ``working`` is the open size of working orders (and how many)."""
    table = _table(title, POSITION_COLUMNS, NUMERIC)
    for p in positions:
        working = f"{_num(p.working_size)} ({p.working_orders})" if p.working_orders else ""
        table.add_row(
            p.position_id,
            f"{p.venue}/{p.book_id}",
            p.token_contract,
            Text("closed", style="dim") if p.closed else Text("open", style="green"),
            p.direction.value,
            f"{p.allocation_usd:,.0f}",
            _num(p.size),
            working,
            _num(p.avg_entry_price),
            f"{p.realized_pnl_usd:,.2f}",
            f"{p.fees_usd:,.4g}",
            str(p.fills_applied),
            str(p.results_applied),
            style="dim" if p.closed else None,
        )
    return table


def checks_table(summaries: Iterable[ResultSummary], title: str = "Results") -> Table:
    """Tabulate final results with the ledger's totals of their fills and any mismatch."""
    table = _table(
        title,
        ("seq", "result", "position", "action", "status", "fills", "size", "fees $", "check"),
        frozenset({"seq", "fills", "size", "fees $"}),
    )
    for s in summaries:
        check = Text("; ".join(s.notes), style="red") if s.mismatch else Text("ok", style="green")
        table.add_row(
            str(s.results_seq),
            s.result_id,
            s.position_id,
            s.action,
            s.status,
            str(s.fill_count),
            str(s.filled_size),
            str(s.fees_usd),
            check,
        )
    return table
