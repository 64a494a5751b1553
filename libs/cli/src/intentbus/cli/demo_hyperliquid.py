"""The demo's Hyperliquid act: the local venue and a Hyperliquid executor as processes.

``intentbus venue-sim hyperliquid`` serves the local venue (real HTTP and WebSocket, every
order signed by the official SDK and its signature recovered by the venue) with a funded
master account and an approved API wallet, both throwaway keys made here. The API
wallet's key goes to a 0600 file in the demo's folder (``-o key_file``), never to a flag,
a log or the screen. ``intentbus executor --venue hyperliquid`` trades the master
through it; the ledger is the demo's. The act opens a position, buys with an ADD and
closes it with an EXIT; the ledger's realized PnL is the venue's ``closedPnl``.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from intentbus.bus import PositionClient, Publisher
from intentbus.cli.demo_run import caught_up
from intentbus.cli.demo_watch import StreamWatch
from intentbus.cli.processes import ServiceProcesses
from intentbus.cli.tables import fills_table, results_table
from intentbus.command.common import BusSession, console, fail
from intentbus.command.tables import positions_table
from intentbus.schemas import (
    ActionType,
    Direction,
    ExecutionIntent,
    ExecutionStatus,
    OpenPosition,
    build_intent,
)

HL_VENUE = "hyperliquid"
HL_MID = 65_000.0
HL_POSITION = OpenPosition(
    position_id="hl-btc",
    venue=HL_VENUE,
    book_id="main",
    token_contract="BTC",
    direction=Direction.LONG,
    allocation_usd=6_000.0,
)
HL_RESULTS_TITLE = "Results from the Hyperliquid executor"
HL_FILLS_TITLE = "Hyperliquid fills"
HL_POSITIONS_TITLE = "Hyperliquid position in the ledger"
_URL_PAUSE_S = 0.1  # between looks at the venue's log for the URL it prints


async def start_hyperliquid(
    services: ServiceProcesses, workdir: Path, common: list[str], timeout_s: float
) -> str:
    """Start the local venue and a Hyperliquid executor; return the venue's URL."""
    import eth_account

    master, agent = eth_account.Account.create(), eth_account.Account.create()
    key_file = workdir / "hl-agent.key"
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(agent.key.hex())
    account = str(master.address).lower()
    services.start(
        "venue-sim",
        "venue-sim", HL_VENUE, "--port", "0", "--mid", f"BTC={HL_MID:g}",
        "--fund", f"{account}=100000", "--agent", f"{agent.address}={account}",
    )  # fmt: skip
    url = await _printed_url(services, workdir / "venue-sim.log", timeout_s)
    options = {"base_url": url, "account": account, "key_file": str(key_file)}
    flags = [flag for key, value in options.items() for flag in ("--option", f"{key}={value}")]
    services.start("executor-hyperliquid", "executor", "--venue", HL_VENUE, *flags, *common)
    return url


async def _printed_url(services: ServiceProcesses, log: Path, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    with console.status("waiting for the local Hyperliquid venue"):
        while True:
            url = _url_in(log)
            if url:
                return url
            if "venue-sim" in services.failed():
                raise fail(f"venue-sim exited:\n{services.log_tail('venue-sim')}", code=1)
            if time.monotonic() > deadline:
                raise fail("the local Hyperliquid venue did not print its URL in time", code=1)
            await asyncio.sleep(_URL_PAUSE_S)


def _url_in(log: Path) -> str | None:
    """Return the URL the venue printed on its first line (``None`` before it did)."""
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    return next((line.strip() for line in lines if line.startswith("http")), None)


def _intent(action: ActionType, size_frac: float, reason: str) -> ExecutionIntent:
    return build_intent(
        action=action,
        size_frac=size_frac,
        position_id=HL_POSITION.position_id,
        token_contract=HL_POSITION.token_contract,
        token_chain=HL_VENUE,
        book_id=HL_POSITION.book_id,
        urgency="critical",
        reason_codes=(reason,),
    )


async def run_hyperliquid_act(
    bus: BusSession, watch: StreamWatch, url: str, timeout_s: float
) -> bool:
    """Open a Hyperliquid position, ADD then EXIT; print results, fills and the position."""
    console.print(
        f"\n[bold]5.[/] Hyperliquid: the local venue at {url} (BTC mid {HL_MID:,.0f}) and "
        "[bold]intentbus executor --venue hyperliquid[/] (the official SDK signing with a "
        "throwaway API wallet); an ADD of half the allocation, then an EXIT"
    )
    positions = PositionClient(bus.nc, bus.topology, timeout_s=5.0)
    publisher = Publisher(bus.js, bus.topology)
    await positions.open(HL_POSITION)
    intents = [
        _intent(ActionType.ADD, 0.5, "demo_buy"),
        _intent(ActionType.EXIT, 1.0, "demo_exit"),
    ]
    for intent in intents:  # one at a time: the EXIT sells what the ADD bought
        await publisher.intent(intent)
        intent_id = intent.intent_id
        await watch.until(
            lambda: intent_id in watch.results,  # noqa: B023 - awaited within this iteration
            f"the Hyperliquid {intent.action.value}'s result",
            timeout_s,
        )
    ids = [i.intent_id for i in intents]
    console.print(results_table([watch.results[i] for i in ids], title=HL_RESULTS_TITLE))
    console.print(fills_table([f for f in watch.fills if f.intent_id in ids], HL_FILLS_TITLE))
    await caught_up(watch, positions, HL_POSITION.position_id, timeout_s)
    reply = await positions.list(venue=HL_VENUE)
    console.print(positions_table(reply.positions, title=HL_POSITIONS_TITLE))
    return _check(watch, intents)


def _check(watch: StreamWatch, intents: list[ExecutionIntent]) -> bool:
    problems = []
    for intent in intents:
        result = watch.results[intent.intent_id]
        if result.status is not ExecutionStatus.SUCCESS or not result.fill_count:
            problems.append(
                f"Hyperliquid {intent.action.value}: {result.status.value} "
                f"{result.skip_reason or result.error or ''}"
            )
    for problem in problems:
        console.print(f"[red]{problem}[/]")
    return not problems
