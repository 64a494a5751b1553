"""What-if pieces without a server: outcome classes, the position then, the export."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import msgspec

from intentbus.cli.whatif import Change, Exporter, Report, Row, compare, position_then
from intentbus.schemas import (
    ActionType,
    Direction,
    ExecutionResult,
    ExecutionStatus,
    Position,
    Skip,
    SkipReason,
    build_intent,
    decode,
)

GOLDEN = Path(__file__).resolve().parents[2] / "schemas" / "golden"
RESULT = decode((GOLDEN / "ExecutionResult.json").read_bytes().strip(), ExecutionResult)
SKIPPED = decode((GOLDEN / "ExecutionResult.skipped.json").read_bytes().strip(), ExecutionResult)
POSITION = Position(
    position_id="pos-btc-1",
    venue="hyperliquid",
    book_id="main",
    token_contract="BTC",
    direction=Direction.SHORT,
    allocation_usd=10_000.0,
    size=9.0,
    closed=True,
)


def _skip(reason: SkipReason) -> Skip:
    return Skip(reason=reason.value)


def test_outcomes_are_classified_and_runtime_skips_are_not_reevaluated() -> None:
    assert RESULT.plan is not None
    assert compare(RESULT, RESULT.plan) is Change.UNCHANGED
    bigger = msgspec.structs.replace(RESULT.plan, size=RESULT.plan.size * 2)
    assert compare(RESULT, bigger) is Change.PLAN_CHANGED
    assert compare(RESULT, _skip(SkipReason.BELOW_MIN_NOTIONAL)) is Change.NEW_SKIP
    assert compare(None, RESULT.plan) is Change.NO_RECORD
    below = msgspec.structs.replace(SKIPPED, skip_reason=SkipReason.BELOW_MIN_NOTIONAL.value)
    assert compare(below, RESULT.plan) is Change.VANISHED_SKIP
    assert compare(below, _skip(SkipReason.ZERO_SIZE)) is Change.SKIP_CHANGED
    assert compare(below, _skip(SkipReason.BELOW_MIN_NOTIONAL)) is Change.UNCHANGED
    expired = msgspec.structs.replace(SKIPPED, skip_reason=SkipReason.EXPIRED.value)
    assert compare(expired, RESULT.plan) is Change.NOT_REEVALUATED


def test_the_position_is_put_back_as_it_was_from_the_recorded_plan() -> None:
    assert RESULT.plan is not None
    trim = build_intent(
        action=ActionType.TRIM, size_frac=0.25, position_id="pos-btc-1", token_contract="BTC",
        token_chain="hyperliquid", book_id="main",
    )  # fmt: skip
    traded = msgspec.structs.replace(RESULT, action=ActionType.TRIM, status=ExecutionStatus.SUCCESS)
    then, net = position_then(POSITION, trim, traded)
    assert then.size == RESULT.plan.size / 0.25
    assert net == -then.size  # a short holds a negative net
    assert then.closed is False  # closed now, open then
    exit_ = msgspec.structs.replace(trim, action=ActionType.EXIT, size_frac=1.0)
    assert position_then(POSITION, exit_, traded)[0].size == RESULT.plan.size
    flat = msgspec.structs.replace(SKIPPED, skip_reason=SkipReason.NO_POSITION.value)
    assert position_then(POSITION, exit_, flat)[0].size == 0.0
    assert position_then(POSITION, exit_, None)[0].size == POSITION.size  # the ledger's now


def test_the_report_counts_and_the_export_writes_json_lines_and_csv() -> None:
    rows = [
        Row(1, "i1", "paper", "main", "p1", "add", Change.NEW_SKIP, "buy 1 limit/gtc",
            "skip below_min_notional"),
        Row(2, "i2", "paper", "main", "p1", "add", Change.UNCHANGED, "buy 2 limit/gtc",
            "buy 2 limit/gtc"),
    ]  # fmt: skip
    report = Report()
    for row in rows:
        report.add(row)
    assert report.sentences() == ["below_min_notional would now skip 1 intent(s)"]
    assert [r.intent_id for r in report.changed] == ["i1"]
    lines = io.StringIO()
    out = Exporter(lines, "jsonl")
    for row in rows:
        out.write(row)
    assert [json.loads(x)["change"] for x in lines.getvalue().splitlines()] == [
        "new_skip",
        "unchanged",
    ]
    table = io.StringIO()
    out = Exporter(table, "csv")
    for row in rows:
        out.write(row)
    parsed = list(csv.DictReader(io.StringIO(table.getvalue())))
    assert [(r["seq"], r["change"], r["now"]) for r in parsed] == [
        ("1", "new_skip", "skip below_min_notional"),
        ("2", "unchanged", "buy 2 limit/gtc"),
    ]
