"""Pure checks of a final result against the fills the ledger applied for its intent.

The result's ``filled_size`` and ``fees_usd`` are float sums made by the executor, so
they are compared with the ledger's exact sums within :data:`RELATIVE_TOLERANCE`; the
fill count is compared exactly. Only fills up to the result's ``last_fill_seq`` belong to
it; a fill of the intent beyond that point is reported too (it came after the summary),
in the same words whichever of the two the ledger saw first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, localcontext

from intentbus.ledger.accounting import ACCOUNTING, ZERO, dec
from intentbus.ledger.storage import AppliedFill
from intentbus.schemas import ExecutionResult

RELATIVE_TOLERANCE = Decimal("1e-9")


@dataclass(frozen=True, kw_only=True)
class FillTotals:
    """Sum up fills: how many, their size and their fees in USD."""

    count: int = 0
    size: Decimal = ZERO
    fees_usd: Decimal = ZERO


def totals(fills: Iterable[AppliedFill]) -> FillTotals:
    """Return the exact totals of ``fills``."""
    count, size, fees = 0, ZERO, ZERO
    with localcontext(ACCOUNTING):
        for fill in fills:
            count += 1
            size += fill.size
            fees += fill.fee_usd
    return FillTotals(count=count, size=size, fees_usd=fees)


def close_enough(a: Decimal, b: Decimal) -> bool:
    """Say whether two amounts agree within :data:`RELATIVE_TOLERANCE` (at least 1e-9 absolute)."""
    with localcontext(ACCOUNTING):
        return abs(a - b) <= RELATIVE_TOLERANCE * max(Decimal(1), abs(a), abs(b))


@dataclass(frozen=True, kw_only=True)
class Check:
    """Give the ledger's totals for a result and every way the result disagrees with them."""

    totals: FillTotals
    problems: tuple[str, ...]

    @property
    def mismatch(self) -> bool:
        """Say whether the result disagrees with the fills."""
        return bool(self.problems)


def check_result(result: ExecutionResult, fills: Iterable[AppliedFill]) -> Check:
    """Compare ``result`` with every applied fill of its intent."""
    own: list[AppliedFill] = []
    late: list[AppliedFill] = []
    for fill in fills:
        (own if fill.fills_seq <= result.last_fill_seq else late).append(fill)
    found = totals(own)
    problems: list[str] = []
    if found.count != result.fill_count:
        problems.append(
            f"fill_count: result says {result.fill_count}, ledger applied {found.count}"
        )
    if not close_enough(dec(result.filled_size), found.size):
        problems.append(
            f"filled_size: result says {result.filled_size!r}, ledger applied {found.size}"
        )
    if not close_enough(dec(result.fees_usd), found.fees_usd):
        problems.append(
            f"fees_usd: result says {result.fees_usd!r}, ledger applied {found.fees_usd}"
        )
    problems.extend(
        late_fill_problem(fill.fill_id, fill.fills_seq, result.last_fill_seq) for fill in late
    )
    return Check(totals=found, problems=tuple(problems))


def late_fill_problem(fill_id: str, fills_seq: int, last_fill_seq: int) -> str:
    """Describe a fill that arrived after its intent's final result was stored."""
    return f"fill {fill_id} at FILLS seq {fills_seq} is after last_fill_seq {last_fill_seq}"
