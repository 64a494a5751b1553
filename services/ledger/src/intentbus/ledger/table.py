"""The ledger's own table: final results checked against their fills.

The positions table is shared (``intentbus.command.tables``): the demo prints it too.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.table import Table
from rich.text import Text

from intentbus.command.tables import new_table
from intentbus.ledger.storage import ResultSummary


def checks_table(summaries: Iterable[ResultSummary], title: str = "Results") -> Table:
    """Tabulate final results with the ledger's totals of their fills and any mismatch."""
    table = new_table(
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
