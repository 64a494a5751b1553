"""What-if replay: each recorded intent's ``prepare()`` again, under today's venue rules.

For every selected intent the recorded outcome (its final result on ``RESULTS``: a plan
or a skip) is found by a bounded merge over the results stream, the position is put back
as it was (from the recorded plan: an EXIT closed ``plan.size``, a TRIM of ``f`` cut
``plan.size / f``; a recorded ``no_position`` means flat), the mark is the recorded
plan's reference price (today's mark when nothing was planned), and ``prepare`` runs
against the venue executor's rules of today. Nothing live is touched: no order, no
claim, no message.

Skips that only the runtime makes (expired, superseded, halt switch, risk caps, unknown
position) are not re-evaluated: they are reported as such, never as vanished skips.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import IO, Any, cast

import msgspec
from nats.js import JetStreamContext

from intentbus.bus import PositionClient, Topology
from intentbus.cli.reader import Selected, read_stream
from intentbus.executor.base import BaseExecutor
from intentbus.executor.prepare import prepare
from intentbus.executor.sizing import MarketRules
from intentbus.schemas import (
    CLOSING_ACTIONS,
    INCREASING_ACTIONS,
    ExecutionIntent,
    ExecutionPlan,
    ExecutionResult,
    Position,
    Skip,
    SkipReason,
    results_stream_decoder,
)

RUNTIME_SKIPS = frozenset(
    {
        SkipReason.EXPIRED.value,
        SkipReason.SUPERSEDED.value,
        SkipReason.HALT_SWITCH.value,
        SkipReason.RISK_INTENT_NOTIONAL.value,
        SkipReason.RISK_POSITION_NOTIONAL.value,
        SkipReason.RISK_INTENT_RATE.value,
        SkipReason.UNKNOWN_POSITION.value,
    }
)
_SIZE_EPSILON = 1e-9
_results = results_stream_decoder()
_encoder = msgspec.json.Encoder()


class Change(StrEnum):
    """How an intent's outcome changes under today's rules."""

    UNCHANGED = "unchanged"
    NEW_SKIP = "new_skip"
    VANISHED_SKIP = "vanished_skip"
    SKIP_CHANGED = "skip_changed"
    PLAN_CHANGED = "plan_changed"
    NO_RECORD = "no_record"
    NOT_REEVALUATED = "not_reevaluated"
    NO_POSITION = "no_position"


class Row(msgspec.Struct, frozen=True):
    """One intent's what-if outcome (a row of the report and of the export)."""

    seq: int
    intent_id: str
    venue: str
    book: str
    position: str
    action: str
    change: Change
    recorded: str
    now: str
    detail: str = ""


@dataclass
class Report:
    """Counts of a what-if run; the changed rows are kept up to ``keep`` for the table."""

    keep: int = 50
    total: int = 0
    changes: Counter[str] = field(default_factory=Counter)
    new_skips: Counter[str] = field(default_factory=Counter)
    vanished_skips: Counter[str] = field(default_factory=Counter)
    changed: list[Row] = field(default_factory=list)

    def add(self, row: Row) -> None:
        """Count one row."""
        self.total += 1
        self.changes[row.change.value] += 1
        if row.change in (Change.NEW_SKIP, Change.SKIP_CHANGED):
            self.new_skips[row.now.removeprefix("skip ")] += 1
        if row.change in (Change.VANISHED_SKIP, Change.SKIP_CHANGED):
            self.vanished_skips[row.recorded.removeprefix("skip ")] += 1
        if row.change in _CHANGES and len(self.changed) < self.keep:
            self.changed.append(row)

    def sentences(self) -> list[str]:
        """Return the summary in words ("below_min_notional would now skip 14 intents")."""
        lines = [f"{reason} would now skip {n} intent(s)" for reason, n in self.new_skips.items()]
        lines += [
            f"{reason} would no longer skip {n} intent(s)"
            for reason, n in self.vanished_skips.items()
        ]
        if self.changes[Change.PLAN_CHANGED]:
            lines.append(f"{self.changes[Change.PLAN_CHANGED]} plan(s) would change")
        return lines or ["no intent would change"]


_CHANGES = frozenset(
    {Change.NEW_SKIP, Change.VANISHED_SKIP, Change.SKIP_CHANGED, Change.PLAN_CHANGED}
)


class RecordedResults:
    """Find each intent's final result by a merge over ``RESULTS`` with bounded memory.

    Reading starts ``slack`` before the first intent asked about; results are read ahead
    only while they are not newer than the intent's deadline plus ``slack``; results of
    intents long before the current one are dropped.
    """

    def __init__(
        self,
        js: JetStreamContext,
        topology: Topology,
        venue: str | None,
        book: str | None,
        *,
        slack: timedelta = timedelta(minutes=2),
        cap: int = 20_000,
    ) -> None:
        self._js = js
        self._stream = topology.results_stream
        self._filter = topology.results_filter(venue, book if venue else None)
        self._messages: AsyncIterator[Any] | None = None
        self._slack = slack
        self._cap = cap
        self._buffer: dict[str, ExecutionResult] = {}
        self._exhausted = False
        self._newest: ExecutionResult | None = None

    async def find(self, intent: ExecutionIntent) -> ExecutionResult | None:
        """Return the recorded final result of ``intent``, or None."""
        horizon = intent.valid_until + self._slack
        if self._messages is None:  # start near the first intent asked about, not at seq 1
            self._messages = read_stream(
                self._js, self._stream, self._filter, start_time=intent.created_at - self._slack
            )
        while intent.intent_id not in self._buffer and not self._exhausted:
            if self._newest is not None and self._newest.created_at > horizon:
                break
            try:
                msg = await anext(self._messages)
            except StopAsyncIteration:
                self._exhausted = True
                break
            message = _results.decode(msg.data)
            if isinstance(message, ExecutionResult):
                self._buffer[message.intent_id] = message
                self._newest = message
        self._drop_older_than(intent)
        return self._buffer.pop(intent.intent_id, None)

    def _drop_older_than(self, intent: ExecutionIntent) -> None:
        floor = intent.created_at - self._slack
        while self._buffer:
            oldest_id = next(iter(self._buffer))
            oldest = self._buffer[oldest_id]
            if len(self._buffer) <= self._cap and (oldest.intent_created_at or floor) >= floor:
                return
            del self._buffer[oldest_id]


class _AtMark:
    """The venue executor's rules of today, at a given (recorded) mark."""

    def __init__(self, executor: BaseExecutor, mark: float | None) -> None:
        self._executor = executor
        self._mark = mark
        self.venue = executor.venue

    def account_for(self, book_id: str) -> str:
        return self._executor.account_for(book_id)

    def rules(self, symbol: str) -> MarketRules | None:
        return self._executor.rules(symbol)

    def mark(self, symbol: str) -> float | None:
        return self._mark if self._mark is not None else self._executor.mark(symbol)

    def can_trade_now(self, symbol: str) -> bool:
        return self.mark(symbol) is not None

    def adjust(self, plan: ExecutionPlan) -> ExecutionPlan | Skip:
        return self._executor.adjust(plan)


def position_then(
    base: Position, intent: ExecutionIntent, recorded: ExecutionResult | None
) -> tuple[Position, float]:
    """Return the position and the venue's signed net as they were when the intent ran."""
    held = base.size
    plan = recorded.plan if recorded is not None else None
    if plan is not None and intent.action in CLOSING_ACTIONS:
        held = plan.size
    elif plan is not None and intent.action not in INCREASING_ACTIONS and intent.size_frac > 0:
        held = plan.size / intent.size_frac
    elif plan is not None:
        held = 0.0  # an ADD's size depends on the allocation only
    elif recorded is not None and recorded.skip_reason in {
        SkipReason.NO_POSITION.value,
        SkipReason.NOTHING_TO_CLOSE.value,
    }:
        held = 0.0
    closed = recorded is not None and recorded.skip_reason == SkipReason.POSITION_CLOSED.value
    then = msgspec.structs.replace(base, size=held, closed=closed, working_size=0.0)
    net = held if base.direction.value == "long" else -held
    return then, net


def outcome(result: ExecutionResult | None) -> str:
    """Describe a recorded outcome in one cell."""
    if result is None:
        return "none"
    if result.skip_reason is not None:
        return f"skip {result.skip_reason}"
    return describe(result.plan) if result.plan is not None else result.status.value


def describe(plan: ExecutionPlan | Skip) -> str:
    """Describe a plan or a skip in one cell."""
    if isinstance(plan, Skip):
        return f"skip {plan.reason}"
    price = f" @ {plan.price:g}" if plan.price is not None else ""
    return (
        f"{plan.side.value} {plan.size:g} {plan.order_type.value}/{plan.time_in_force.value}{price}"
    )


def compare(recorded: ExecutionResult | None, now: ExecutionPlan | Skip) -> Change:
    """Classify the difference between the recorded outcome and today's."""
    if recorded is None:
        return Change.NO_RECORD
    if recorded.skip_reason is not None:
        if recorded.skip_reason in RUNTIME_SKIPS:
            return Change.NOT_REEVALUATED
        if isinstance(now, Skip):
            return Change.UNCHANGED if now.reason == recorded.skip_reason else Change.SKIP_CHANGED
        return Change.VANISHED_SKIP
    if isinstance(now, Skip):
        return Change.NEW_SKIP
    plan = recorded.plan
    if plan is None:
        return Change.NOT_REEVALUATED
    same = (
        plan.side is now.side
        and abs(plan.size - now.size) <= _SIZE_EPSILON * max(1.0, plan.size)
        and plan.order_type is now.order_type
        and plan.time_in_force is now.time_in_force
        and (plan.price or 0.0) == (now.price or 0.0)
    )
    return Change.UNCHANGED if same else Change.PLAN_CHANGED


class WhatIf:
    """Re-run ``prepare`` for selected intents; see the module docstring."""

    def __init__(
        self,
        js: JetStreamContext,
        topology: Topology,
        positions: PositionClient,
        executors: Callable[[str], BaseExecutor],
        *,
        venue: str | None,
        book: str | None,
    ) -> None:
        self._results = RecordedResults(js, topology, venue, book)
        self._positions = positions
        self._executors = executors
        self._known: dict[tuple[str, str], dict[str, Position]] = {}

    async def _base(self, intent: ExecutionIntent) -> Position | None:
        key = (intent.token_chain, intent.book_id)
        if key not in self._known:
            reply = await self._positions.list(venue=key[0], book_id=key[1])
            self._known[key] = {p.position_id: p for p in reply.positions}
        return self._known[key].get(intent.position_id)

    async def row(self, selected: Selected) -> Row:
        """Return the what-if row of one selected intent."""
        intent = selected.intent
        recorded = await self._results.find(intent)
        base = await self._base(intent)

        def row(change: Change, now: str, detail: str) -> Row:
            return Row(
                selected.seq,
                intent.intent_id,
                intent.token_chain,
                intent.book_id,
                intent.position_id,
                intent.action.value,
                change,
                outcome(recorded),
                now,
                detail,
            )

        if base is None:
            return row(Change.NO_POSITION, "", "unknown to the ledger")
        position, net = position_then(base, intent, recorded)
        plan = recorded.plan if recorded is not None else None
        mark = plan.reference_price if plan is not None else None
        venue = cast(BaseExecutor, _AtMark(self._executors(intent.token_chain), mark))
        now = prepare(venue, intent, position, net)
        detail = now.detail if isinstance(now, Skip) else ""
        return row(compare(recorded, now), describe(now), detail)


class Exporter:
    """Write rows as JSON Lines or CSV as they come (flat memory)."""

    def __init__(self, out: IO[str], fmt: str) -> None:
        self._out = out
        self._csv: Any = None
        if fmt == "csv":
            self._csv = csv.DictWriter(out, fieldnames=list(Row.__struct_fields__))
            self._csv.writeheader()

    def write(self, row: Row) -> None:
        """Write one row."""
        if self._csv is not None:
            cells = msgspec.structs.asdict(row)
            cells["change"] = row.change.value
            self._csv.writerow(cells)
        else:
            self._out.write(_encoder.encode(row).decode() + "\n")


def export_text(rows: list[Row], fmt: str) -> str:
    """Return rows exported as one string (tests, small reports)."""
    out = io.StringIO()
    exporter = Exporter(out, fmt)
    for row in rows:
        exporter.write(row)
    return out.getvalue()
