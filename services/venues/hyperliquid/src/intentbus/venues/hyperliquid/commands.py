"""``intentbus venue-sim hyperliquid``: serve the local Hyperliquid venue until SIGINT/SIGTERM.

It prints its URL (``base_url`` of executors and of the SDK). Accounts are created with
``--fund ADDRESS=USDC``; API wallets are approved through the SDK's ``approve_agent`` as on
the venue, or at start with ``--agent AGENT=MASTER``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from typing import Annotated

import typer

VENUES = ("hyperliquid",)


def _pairs(values: list[str] | None, what: str) -> dict[str, str]:
    found = {}
    for value in values or ():
        key, sep, rest = value.partition("=")
        if not sep or not key or not rest:
            typer.echo(f"error: {what} expects KEY=VALUE, got {value!r}", err=True)
            raise typer.Exit(2)
        found[key] = rest
    return found


def venue_sim(
    venue: Annotated[str, typer.Argument(help="The venue to simulate: hyperliquid.")],
    port: Annotated[int, typer.Option("--port", help="Port (0: a free one).")] = 0,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    mid: Annotated[
        list[str] | None, typer.Option("--mid", help="Starting mid COIN=PRICE (repeatable).")
    ] = None,
    fund: Annotated[
        list[str] | None,
        typer.Option("--fund", help="Create a master account ADDRESS=USDC (repeatable)."),
    ] = None,
    agent: Annotated[
        list[str] | None,
        typer.Option("--agent", help="Approve an API wallet AGENT=MASTER (repeatable)."),
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Move mids by a seeded random walk.")
    ] = None,
    interval_s: Annotated[float, typer.Option("--interval-s", help="Random walk step.")] = 1.0,
) -> None:
    """Serve a local venue the official SDK cannot tell from the real one."""
    if venue not in VENUES:
        typer.echo(f"error: no local venue {venue!r}; known: {', '.join(VENUES)}", err=True)
        raise typer.Exit(2)
    try:
        mids = {k: float(v) for k, v in _pairs(mid, "--mid").items()}
        funds = {k: float(v) for k, v in _pairs(fund, "--fund").items()}
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    agents = _pairs(agent, "--agent")
    try:
        asyncio.run(_serve(host, port, mids, funds, agents, seed, interval_s))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


async def _serve(
    host: str,
    port: int,
    mids: dict[str, float],
    funds: dict[str, float],
    agents: dict[str, str],
    seed: int | None,
    interval_s: float,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    # Imported here: the `intentbus` command loads every member's commands at start, and
    # the simulator brings the Hyperliquid SDK (eth_account, aiohttp) along.
    from intentbus.venues.hyperliquid.sim.server import HyperliquidSim

    sim = HyperliquidSim(mids=mids or {"BTC": 65_000.0, "ETH": 3_200.0})
    for address, usdc in funds.items():
        sim.fund(address, usdc)
    for agent_address, master in agents.items():
        sim.approve_agent(master, agent_address)
    url = await sim.start(host, port)
    if seed is not None:
        sim.drive_prices(seed=seed, interval_s=interval_s)
    sys.stdout.write(f"{url}\n")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        await sim.stop()


def register(app: typer.Typer) -> None:
    """Add the ``venue-sim`` command."""
    app.command("venue-sim")(venue_sim)
