"""The demo's PM act: ``intentbus feed`` and ``intentbus pm`` as processes, in lockstep.

The feed publishes seeded synthetic BTC candles (and each close as the paper mark); the
PM plans two books with the reference planner, opens their positions in the ledger and
publishes intents the paper executor trades. The PM acknowledges a candle only once its
intents have final results and the feed waits for that acknowledgement, so when the feed
exits every intent the PM published has its result. The demo then prints them.

The features use shorter EMAs than the PM's defaults (warm after 80 candles, not 333)
so a few hundred candles show several decisions on both books.
"""

from __future__ import annotations

from pathlib import Path

from rich.table import Table
from rich.text import Text

from intentbus.bus import PositionClient
from intentbus.cli.demo_run import caught_up
from intentbus.cli.demo_script import VENUE
from intentbus.cli.demo_watch import StreamWatch
from intentbus.cli.processes import ServiceProcesses
from intentbus.command.common import BusSession, console, fail
from intentbus.command.tables import new_table, num, positions_table
from intentbus.pm.demo import DEMO_PM_NAME
from intentbus.schemas import ExecutionIntent, ExecutionStatus

PM_BOOKS = ("trend", "swing")
PM_SYMBOL = "BTC"
PM_CANDLES = 160
PM_SEED = 1
PM_INTENTS_TITLE = "Intents the PM published and their results"
PM_POSITIONS_TITLE = "Positions of the PM's books"
_FINAL_OK = {ExecutionStatus.SUCCESS, ExecutionStatus.SKIPPED}


def pm_config_text() -> str:
    """Return the demo PM's configuration: two books on paper BTC, reference planner."""
    books = "".join(
        f'[books.{book}]\nvenue = "{VENUE}"\ntimeframe = "1h"\nplanner = "reference"\n'
        f'symbols = ["{PM_SYMBOL}"]\nallocation_usd = {allocation}\nmax_open_positions = 1\n'
        f"max_intents_per_tick = 5\ndeadline_bars = 0.01\n\n"
        f"[books.{book}.planner_options]\ncooldown_bars = {cooldown}\n\n"
        for book, allocation, cooldown in (("trend", 10_000, 12), ("swing", 5_000, 4))
    )
    return (
        f'[pm]\nname = "{DEMO_PM_NAME}"\nresult_wait_s = 10\n\n'
        "[features]\nperiods = [10, 20, 40, 60, 80]\nvolatility_period = 20\n\n" + books
    )


def pm_commands(config: Path, common: list[str]) -> list[tuple[str, list[str]]]:
    """Return (process name, ``intentbus`` arguments) of the PM and the feed, in start order."""
    return [
        ("pm", ["pm", "--config", str(config), *common]),
        (
            "feed",
            [
                "feed", "--synthetic", str(PM_CANDLES), "--seed", str(PM_SEED),
                "--venue", VENUE, "--symbol", PM_SYMBOL, "--timeframe", "1h",
                "--lockstep", DEMO_PM_NAME, *common,
            ],
        ),
    ]  # fmt: skip


def pm_intents(watch: StreamWatch) -> list[ExecutionIntent]:
    """Return the intents of the PM's books seen on ``INTENTS``, in stream order."""
    return [i for i in watch.intents if i.token_chain == VENUE and i.book_id in PM_BOOKS]


async def run_pm_act(
    bus: BusSession,
    services: ServiceProcesses,
    watch: StreamWatch,
    workdir: Path,
    common: list[str],
    timeout_s: float,
) -> bool:
    """Run the feed and the PM until the feed is done; print and check what the PM did."""
    console.print(
        f"\n[bold]4.[/] the PM: [bold]intentbus feed[/] publishes {PM_CANDLES} seeded "
        f"synthetic {PM_SYMBOL} 1h candles in lockstep with [bold]intentbus pm[/], which "
        f"plans books {' and '.join(PM_BOOKS)} with the reference planner"
    )
    config = workdir / "pm.toml"
    config.write_text(pm_config_text())
    for name, args in pm_commands(config, common):
        services.start(name, *args)
    await watch.until(
        lambda: "feed" in services.failed(), f"the feed's {PM_CANDLES} candles", timeout_s
    )
    code = services.stop("feed")
    if code != 0:
        raise fail(f"the feed exited with {code}:\n{services.log_tail('feed')}", code=1)
    stream = await bus.js.stream_info(bus.topology.intents_stream)
    last = stream.state.last_seq

    def settled() -> bool:
        return watch.intents_seq >= last and all(
            i.intent_id in watch.results for i in pm_intents(watch)
        )

    await watch.until(settled, "the results of the PM's intents", timeout_s)
    intents = pm_intents(watch)
    console.print(_intents_results_table(watch, intents))
    positions = PositionClient(bus.nc, bus.topology, timeout_s=5.0)
    if intents:
        await caught_up(watch, positions, intents[-1].position_id, timeout_s)
    reply = await positions.list(venue=VENUE)
    mine = [p for p in reply.positions if p.book_id in PM_BOOKS]
    console.print(positions_table(mine, title=PM_POSITIONS_TITLE))
    return _check(watch, intents)


def _intents_results_table(watch: StreamWatch, intents: list[ExecutionIntent]) -> Table:
    table = new_table(
        PM_INTENTS_TITLE,
        ("#", "book", "position", "action", "size_frac", "urgency", "reasons",
         "status", "filled", "avg price", "skip / error"),
        frozenset({"#", "size_frac", "filled", "avg price"}),
    )  # fmt: skip
    for n, intent in enumerate(intents, start=1):
        result = watch.results.get(intent.intent_id)
        status = Text(result.status.value if result else "no result")
        if result is None or result.status not in _FINAL_OK:
            status.stylize("red")
        table.add_row(
            str(n),
            intent.book_id,
            intent.position_id,
            intent.action.value,
            f"{intent.size_frac:.4g}",
            intent.urgency.value,
            " ".join(intent.reason_codes),
            status,
            num(result.filled_size or None) if result else "",
            num(result.avg_price) if result else "",
            (result.skip_reason or result.error or "") if result else "",
        )
    return table


def _check(watch: StreamWatch, intents: list[ExecutionIntent]) -> bool:
    problems = []
    books = {i.book_id for i in intents}
    if books != set(PM_BOOKS):
        problems.append(f"the PM published intents on {sorted(books)}, not on {list(PM_BOOKS)}")
    for intent in intents:
        result = watch.results.get(intent.intent_id)
        if result is None:
            problems.append(f"no result for the PM's {intent.intent_id}")
        elif result.status not in _FINAL_OK:
            problems.append(f"the PM's {intent.intent_id}: {result.status.value} {result.error}")
    for problem in problems:
        console.print(f"[red]{problem}[/]")
    return not problems
