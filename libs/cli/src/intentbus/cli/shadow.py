"""Shadow replay: execute selected intents on a throwaway paper venue and ledger.

Everything runs in this process on a fresh namespace of the same server: a
:class:`~intentbus.venues.paper.server.PaperVenueServer`, a ledger (SQLite in a
temporary folder) and one executor runtime. Each selected position is opened there with
its live allocation and direction; each intent is published again (same id, a fresh
deadline as long as its original one) after the mark it was planned at (the recorded
plan's reference price) is set, and its final result is awaited before the next, so
the shadow market moves as it did for each intent. A resting order fills there only if
a later intent's mark crosses it. The namespace is deleted afterwards; nothing live is
touched. The report puts each position's shadow PnL beside the live ledger's.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import tempfile
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import msgspec
from nats.aio.client import Client
from nats.js import JetStreamContext

from intentbus.bus import BusSettings, PositionClient, Publisher, Topology, provision
from intentbus.bus.subjects import INTENT_PARTITIONS
from intentbus.cli.reader import Selection, selected_intents
from intentbus.cli.whatif import RecordedResults
from intentbus.command.common import bus_session, console
from intentbus.command.tables import new_table, num
from intentbus.executor.partitions import OwnershipSettings
from intentbus.executor.runtime import ExecutorRuntime, RuntimeSettings
from intentbus.ledger.service import LedgerService
from intentbus.schemas import ExecutionResult, Mark, OpenPosition, Position, decode
from intentbus.venues.paper import PaperConfig, PaperExecutor, PaperExecutorOptions
from intentbus.venues.paper.server import PaperVenueServer


@dataclass
class ShadowReport:
    """What the shadow run did, and each position beside the live ledger's."""

    statuses: Counter[str] = field(default_factory=Counter)
    shadow: dict[str, Position] = field(default_factory=dict)
    live: dict[str, Position] = field(default_factory=dict)

    @property
    def shadow_pnl(self) -> float:
        """Return realized PnL minus fees over the shadow positions."""
        return sum(p.realized_pnl_usd - p.fees_usd for p in self.shadow.values())

    @property
    def live_pnl(self) -> float:
        """Return realized PnL minus fees over the same positions in the live ledger."""
        return sum(p.realized_pnl_usd - p.fees_usd for p in self.live.values())


@asynccontextmanager
async def shadow_system(
    nc: Client, nats_url: str | None, config: PaperConfig, folder: Path
) -> AsyncIterator[tuple[Topology, PaperVenueServer]]:
    """Run a paper venue, a ledger and an executor on a fresh namespace; delete it after."""
    topology = Topology(f"shadow-{secrets.token_hex(6)}")
    js = nc.jetstream()
    await provision(js, topology)
    server = PaperVenueServer(nc, js, topology, config)
    ledger = LedgerService(
        BusSettings.from_env(nats_url, name="intentbus-shadow-ledger"),
        topology,
        folder / "shadow-ledger.sqlite3",
    )
    runtime = ExecutorRuntime(
        nc,
        js,
        topology,
        PaperExecutor(PaperExecutorOptions(name=config.name, timeout_s=5.0)),
        settings=RuntimeSettings(retry_s=0.05, retry_max_s=0.5, poll_s=0.5),
        ownership=OwnershipSettings(heartbeat_s=0.3, ttl_s=2.0),
    )
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    try:
        await server.start()
        await ledger.start()
        tasks.append(asyncio.create_task(ledger.run(stop)))
        tasks.append(asyncio.create_task(runtime.run(stop)))
        while len(runtime.partitions) < INTENT_PARTITIONS:
            if tasks[-1].done():
                await tasks[-1]
            await asyncio.sleep(0.05)
        yield topology, server
    finally:
        stop.set()
        for task in tasks:
            with contextlib.suppress(Exception):
                await task
        await ledger.stop()
        await server.stop()
        await _delete_namespace(js, topology)


async def _delete_namespace(js: JetStreamContext, topology: Topology) -> None:
    prefix = topology.intents_stream.removesuffix("INTENTS")
    for info in await js.streams_info():
        name = info.config.name or ""
        if name.startswith(prefix) or name.startswith(f"KV_{prefix}"):
            with contextlib.suppress(Exception):
                await js.delete_stream(name)


async def run_shadow(
    nc: Client,
    js: JetStreamContext,
    topology: Topology,
    selection: Selection,
    *,
    nats_url: str | None,
    config: PaperConfig | None = None,
    result_slack_s: float = 10.0,
) -> ShadowReport:
    """Execute the selection in a shadow system; see the module docstring."""
    config = config or PaperConfig()
    report = ShadowReport()
    live = PositionClient(nc, topology)
    recorded = RecordedResults(js, topology, selection.venue, selection.book)
    with tempfile.TemporaryDirectory(prefix="intentbus-shadow-") as folder:
        async with shadow_system(nc, nats_url, config, Path(folder)) as (shadow, server):
            positions = PositionClient(nc, shadow, timeout_s=10.0)
            publisher = Publisher(js, shadow)
            results: asyncio.Queue[ExecutionResult] = asyncio.Queue()

            async def on_result(msg: object) -> None:
                data = getattr(msg, "data", b"")
                with contextlib.suppress(msgspec.MsgspecError):
                    results.put_nowait(decode(data, ExecutionResult))

            sub = await js.subscribe(
                shadow.results_filter(), stream=shadow.results_stream, cb=on_result,
                ordered_consumer=True,
            )  # fmt: skip
            try:
                async for selected in selected_intents(js, topology, selection):
                    intent = selected.intent
                    if intent.position_id not in report.live:
                        base = await live.get(intent.position_id)
                        if base is None:
                            report.statuses["no_position"] += 1
                            continue
                        report.live[intent.position_id] = base
                        await positions.open(
                            OpenPosition(
                                position_id=base.position_id,
                                venue=base.venue,
                                book_id=base.book_id,
                                token_contract=base.token_contract,
                                direction=base.direction,
                                allocation_usd=base.allocation_usd,
                            )
                        )
                    then = await recorded.find(intent)
                    if then is not None and then.plan is not None and then.plan.reference_price:
                        await _set_mark(publisher, server, intent.token_contract,
                                        then.plan.reference_price, config.name)  # fmt: skip
                    now = datetime.now(UTC)
                    await publisher.intent(
                        msgspec.structs.replace(
                            intent,
                            created_at=now,
                            valid_until=now + (intent.valid_until - intent.created_at),
                        )
                    )
                    limit = (intent.valid_until - intent.created_at).total_seconds()
                    result = await _result_of(results, intent.intent_id, limit + result_slack_s)
                    report.statuses[result.status.value] += 1
            finally:
                await sub.unsubscribe()
            last_results = (await js.stream_info(shadow.results_stream)).state.last_seq
            last_fills = (await js.stream_info(shadow.fills_stream)).state.last_seq
            for position_id in report.live:
                found = await positions.get(
                    position_id, min_results_seq=last_results, min_fills_seq=last_fills
                )
                if found is not None:
                    report.shadow[position_id] = found
    return report


async def _set_mark(
    publisher: Publisher, server: PaperVenueServer, symbol: str, price: float, venue: str
) -> None:
    done = server.marks_applied.get(symbol, 0)
    await publisher.mark(Mark(venue=venue, symbol=symbol, price=price, at=datetime.now(UTC)))
    async with asyncio.timeout(10.0):
        while server.marks_applied.get(symbol, 0) <= done:  # noqa: ASYNC110 (no event to wait on)
            await asyncio.sleep(0.01)


async def _result_of(
    results: asyncio.Queue[ExecutionResult], intent_id: str, timeout_s: float
) -> ExecutionResult:
    async with asyncio.timeout(timeout_s):
        while True:
            result = await results.get()
            if result.intent_id == intent_id:
                return result


def print_shadow(report: ShadowReport) -> None:
    """Print the shadow report: statuses, and each position's PnL beside the live one."""
    table = new_table(
        "Shadow replay: PnL (realized - fees) per position",
        ("position", "shadow size", "shadow rPnL $", "shadow fees $", "live size",
         "live rPnL $", "live fees $"),
        frozenset({"shadow size", "shadow rPnL $", "shadow fees $", "live size",
                   "live rPnL $", "live fees $"}),
    )  # fmt: skip
    for position_id, live in report.live.items():
        shadow = report.shadow.get(position_id)
        table.add_row(
            position_id,
            num(shadow.size if shadow else None),
            num(shadow.realized_pnl_usd if shadow else None),
            num(shadow.fees_usd if shadow else None),
            num(live.size),
            num(live.realized_pnl_usd),
            num(live.fees_usd),
        )
    console.print(table)
    console.print("results: " + ", ".join(f"{k}: {v}" for k, v in sorted(report.statuses.items())))
    console.print(
        f"PnL: shadow {report.shadow_pnl:,.2f} USD, live {report.live_pnl:,.2f} USD "
        "(live counts everything those positions did, selected or not)"
    )


async def run_shadow_command(
    selection: Selection, nats_url: str | None, namespace: str, options: dict[str, str]
) -> None:
    """Run ``replay --mode shadow``."""
    config = PaperConfig.from_options(options)
    async with bus_session(nats_url, namespace, name="intentbus-shadow") as bus:
        report = await run_shadow(
            bus.nc, bus.js, bus.topology, selection, nats_url=nats_url, config=config
        )
    print_shadow(report)
