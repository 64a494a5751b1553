"""The README's demo command: embedded NATS, real processes, a resting order that fills
in parts, the PM trading two books from a feed, a Hyperliquid book, tables, exit 0.

The checks read the tables the demo prints (its product), cell by cell, so they hold
whatever the column widths.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

RESTING = "Resting order"
WHILE_RESTING = "Positions while the BTC order rests"
INTENTS = "Intents published"
RESULTS = "Results from the paper executor"
FILLS = "Fills on the FILLS stream"
POSITIONS = "Positions in the ledger"
PM_INTENTS = "Intents the PM published and their results"
PM_POSITIONS = "Positions of the PM's books"
HL_RESULTS = "Results from the Hyperliquid executor"
HL_FILLS = "Hyperliquid fills"
HL_POSITIONS = "Hyperliquid position in the ledger"
TITLES = (
    RESTING,
    WHILE_RESTING,
    INTENTS,
    RESULTS,
    FILLS,
    POSITIONS,
    PM_INTENTS,
    PM_POSITIONS,
    HL_RESULTS,
    HL_FILLS,
    HL_POSITIONS,
)


def _run_demo(env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "intentbus.command.app", "demo"],
        capture_output=True,
        text=True,
        timeout=140,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _section(out: str, title: str) -> str:
    """Return the text from ``title`` to the next table's title (or the end)."""
    assert title in out, f"{title!r} missing from:\n{out}"
    start = out.index(title)
    ends = [i for other in TITLES if (i := out.find(other, start + len(title))) != -1]
    return out[start : min(ends, default=len(out))]


def _rows(section: str) -> list[list[str]]:
    """Return the body rows of the first table in ``section`` as lists of stripped cells."""
    return [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in section.splitlines()
        if line.strip().startswith("│")
    ]


def _check_demo_output(out: str) -> None:
    # the BTC order rests: its OrderUpdate, and the ledger shows its open size as working
    resting = _rows(_section(out, RESTING))
    assert len(resting) == 1, out
    intent, position, symbol, side, size, limit, state = resting[0][:7]
    assert (position, symbol, side, state) == ("alpha-btc", "BTC", "buy", "working"), resting
    assert float(limit) < 65_000.0
    while_resting = {row[0]: row for row in _rows(_section(out, WHILE_RESTING))}
    assert while_resting["alpha-btc"][7] == f"{size} (1)", while_resting
    assert while_resting["alpha-btc"][6] == "0", while_resting  # nothing filled yet

    # marks move through it: several maker fills at its limit, printed as they arrive
    live = out[out.index("2. BTC marks") : out.index("3. a BTC TRIM")]
    live_fills = [line for line in live.splitlines() if " maker " in line]
    assert len(live_fills) >= 2, live
    fills = [row for row in _rows(_section(out, FILLS)) if row[1] == intent]
    assert len(fills) == len(live_fills), fills
    assert {(row[4], row[6], row[7]) for row in fills} == {("buy", limit, "maker")}, fills
    assert sum(float(row[5]) for row in fills) == pytest.approx(float(size))

    # the final summaries: every intent once, in order
    results = _rows(_section(out, RESULTS))
    published = _rows(_section(out, INTENTS))
    assert [row[0] for row in results] == [row[1] for row in published], out
    by_intent = {row[0]: row for row in results}
    assert by_intent[intent][3:5] == ["success", "filled"], by_intent[intent]
    assert by_intent[intent][7] == str(len(fills))
    statuses = [row[3] for row in results]
    assert statuses == ["success", "success", "skipped", "skipped", "success", "success"], out
    reasons = [row[10] for row in results]
    assert "below_min_notional" in reasons
    assert any(reason.startswith("reduce_only") for reason in reasons)

    positions = {row[0]: row for row in _rows(_section(out, POSITIONS))}
    assert positions["alpha-btc"][3] == "closed"
    assert positions["alpha-btc"][6] == "0"
    assert positions["beta-eth"][3] == "open"
    assert float(positions["beta-eth"][6]) > 0
    _check_pm_act(out)
    _check_hyperliquid_act(out)
    assert "demo done" in out


def _check_pm_act(out: str) -> None:
    """The PM's intents on both books, each with a final result; the ledger holds them."""
    intents = _rows(_section(out, PM_INTENTS))
    assert len(intents) >= 4, out
    assert {row[1] for row in intents} == {"trend", "swing"}, intents
    assert {row[7] for row in intents} <= {"success", "skipped"}, intents
    assert any(row[7] == "success" and float(row[8]) > 0 for row in intents), intents
    positions = _rows(_section(out, PM_POSITIONS))
    assert {row[1] for row in positions} == {"paper/trend", "paper/swing"}, positions
    assert {row[0] for row in positions} == {row[2] for row in intents}, out
    assert sum(int(row[12]) for row in positions) == len(intents), positions  # results


def _check_hyperliquid_act(out: str) -> None:
    """An ADD and an EXIT filled on the local Hyperliquid venue; the ledger's PnL is theirs."""
    results = _rows(_section(out, HL_RESULTS))
    assert [row[1:6] for row in results] == [
        ["hl-btc", "add", "success", "filled", "buy"],
        ["hl-btc", "exit", "success", "filled", "sell"],
    ], results
    fills = _rows(_section(out, HL_FILLS))
    assert [(row[2], row[4]) for row in fills] == [("hl-btc", "buy"), ("hl-btc", "sell")], fills
    bought, sold = fills
    assert bought[5] == sold[5] == results[0][6]
    pnl = (float(sold[6]) - float(bought[6])) * float(bought[5])
    (position,) = _rows(_section(out, HL_POSITIONS))
    assert position[:4] == ["hl-btc", "hyperliquid/main", "BTC", "closed"], position
    assert position[6] == "0"
    assert float(position[9]) == pytest.approx(pnl, abs=0.01)
    assert position[11:13] == ["2", "2"], position


@pytest.mark.timeout(150)
def test_demo_runs_on_an_embedded_server_and_exits_zero() -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"NATS_URL", "INTENTBUS_NAMESPACE"}}
    env["COLUMNS"] = "200"
    out = _run_demo(env)
    assert "embedded nats-server" in out
    _check_demo_output(out)


@pytest.mark.timeout(150)
def test_demo_uses_the_server_it_is_given(nats_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "INTENTBUS_NAMESPACE"}
    env["NATS_URL"] = nats_url
    out = _run_demo(env)
    assert "embedded nats-server" not in out
    _check_demo_output(out)
