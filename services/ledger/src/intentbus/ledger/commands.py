"""Commands: ``intentbus ledger`` runs the service; ``intentbus positions`` reads and opens."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import msgspec
import psycopg
import typer
from nats.errors import NoServersError

from intentbus.bus import (
    BusSettings,
    InvalidSubjectToken,
    LedgerError,
    LedgerUnavailable,
    PositionClient,
    Topology,
    check_token,
    last_drifts,
    refusals,
)
from intentbus.command.common import (
    BusSession,
    MetricsPortOption,
    NamespaceOption,
    NatsUrlOption,
    bus_session,
    console,
    fail,
    run,
    start_metrics,
)
from intentbus.command.tables import drift_of, positions_table
from intentbus.ledger.service import DEFAULT_DURABLE, LedgerConfigError, LedgerHalted, LedgerService
from intentbus.ledger.storage import ResultSummary
from intentbus.ledger.stores import store_for
from intentbus.ledger.table import checks_table
from intentbus.ledger.writer_claim import WRITER_WAIT_S
from intentbus.schemas import Direction, Drift, OpenPosition, Position, validated
from intentbus.telemetry import scrub

T = TypeVar("T")
DEFAULT_DB = "./intentbus-ledger.sqlite3"
DB_HELP = (
    "SQLite database file, or a PostgreSQL URL (postgresql://user@host:5432/dbname; "
    "the password from PGPASSWORD or ~/.pgpass rather than the URL)."
)
DbOption = Annotated[str, typer.Option("--db", envvar="INTENTBUS_LEDGER_DB", help=DB_HELP)]
ANSWER_TIMEOUT_S = 3.0
REACH_TIMEOUT_S = 10.0
log = logging.getLogger(__name__)

positions_app = typer.Typer(
    help="Show the ledger's positions, or open one.", invoke_without_command=True
)


def ledger(
    db: DbOption = DEFAULT_DB,
    durable: Annotated[
        str,
        typer.Option(help="Durable consumer name on RESULTS (<name>-fills on FILLS)."),
    ] = DEFAULT_DURABLE,
    rebuild: Annotated[
        bool,
        typer.Option(
            "--rebuild",
            help="Keep the old db aside (SQLite: <db>.pre-rebuild-<time>; PostgreSQL: schema "
            "intentbus_ledger_pre_rebuild_<time>), start a new one with the opened positions' "
            "terms, and re-apply every fill and result from sequence 1.",
        ),
    ] = False,
    writer_wait: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Seconds to wait for another ledger writing the same db to stop before "
            "refusing to start (one ledger writes a db).",
        ),
    ] = WRITER_WAIT_S,
    nats_url: NatsUrlOption = None,
    namespace: NamespaceOption = "",
    metrics_port: MetricsPortOption = None,
) -> None:
    """Run the position ledger until SIGINT or SIGTERM; its database is migrated at start."""
    try:
        topology = Topology(namespace)
        service = LedgerService(
            BusSettings.from_env(nats_url, name="intentbus-ledger"),
            topology,
            db,
            durable=durable,
            rebuild=rebuild,
            writer_wait_s=writer_wait,
        )
        check_token("durable", durable)
    except (InvalidSubjectToken, OSError) as exc:
        raise fail(str(exc)) from None
    start_metrics("intentbus-ledger", metrics_port)
    run(_run_ledger(service), service=True)


async def _run_ledger(service: LedgerService) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await service.start()
    except (LedgerConfigError, OSError) as exc:
        await service.stop()
        raise fail(scrub(str(exc)), code=1) from None
    except psycopg.Error as exc:
        await service.stop()
        raise fail(f"cannot use {service.store.label}: {scrub(str(exc))}", code=1) from None
    except Exception as exc:
        await service.stop()
        raise fail(f"ledger could not start: {scrub(repr(exc))}", code=1) from None
    console.print(
        f"ledger: db {service.store.label}, durable {service.results.spec.durable}, "
        f"applied RESULTS up to seq {service.results.progress.seq}, "
        f"FILLS up to seq {service.fills.progress.seq}"
    )
    try:
        await service.run(stop)
    except LedgerHalted as exc:
        raise fail(str(exc), code=1) from None
    finally:
        await service.stop()
    console.print("ledger stopped")


@positions_app.callback()
def show_positions(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
    venue: Annotated[str | None, typer.Option(help="Only this venue.")] = None,
    book: Annotated[str | None, typer.Option(help="Only this book.")] = None,
    nats_url: NatsUrlOption = None,
    namespace: NamespaceOption = "",
) -> None:
    """Print every position the ledger keeps (a table, or JSON with --json)."""
    if ctx.invoked_subcommand is not None:
        return
    try:
        for kind, value in (("venue", venue), ("book", book)):
            if value is not None:
                check_token(kind, value)
    except InvalidSubjectToken as exc:
        raise fail(str(exc)) from None
    positions, drifts = run(_ask(nats_url, namespace, lambda c, bus: _list(c, bus, venue, book)))
    if as_json:  # each position, with its unresolved drift or null
        rows = [
            {**msgspec.to_builtins(p), "drift": msgspec.to_builtins(drift_of(p, drifts))}
            for p in positions
        ]
        sys.stdout.write(msgspec.json.encode(rows).decode() + os.linesep)
    else:
        console.print(positions_table(positions, drifts=drifts))


async def _list(
    client: PositionClient, bus: BusSession, venue: str | None, book: str | None
) -> tuple[list[Position], dict[tuple[str, str, str], Drift]]:
    reply = await client.list(venue=venue, book_id=book)
    drifts = await last_drifts(bus.js, bus.topology, venue, book)
    return list(reply.positions), {(d.venue, d.book_id, d.symbol): d for d in drifts}


@positions_app.command("open")
def open_command(
    position_id: Annotated[str, typer.Argument(help="Position id.")],
    venue: Annotated[str, typer.Option(help="Venue namespace.")],
    book: Annotated[str, typer.Option(help="Book id.")],
    symbol: Annotated[str, typer.Option(help="Token contract / venue symbol.")],
    allocation: Annotated[float, typer.Option(help="Allocation in USD (> 0).")],
    direction: Annotated[Direction, typer.Option()] = Direction.LONG,
    nats_url: NatsUrlOption = None,
    namespace: NamespaceOption = "",
) -> None:
    """Open a position with its allocation (again with the same terms: no change)."""
    try:
        request = validated(
            OpenPosition(
                position_id=position_id,
                venue=venue,
                book_id=book,
                token_contract=symbol,
                direction=direction,
                allocation_usd=allocation,
            )
        )
    except msgspec.MsgspecError as exc:
        raise fail(f"invalid position: {exc}") from None
    position = run(_ask(nats_url, namespace, lambda c, _: c.open(request)))
    console.print(positions_table([position], title="Opened"))


async def _ask(
    nats_url: str | None,
    namespace: str,
    call: Callable[[PositionClient, BusSession], Awaitable[T]],
) -> T:
    try:
        topology = Topology(namespace)
    except InvalidSubjectToken as exc:
        raise fail(str(exc)) from None
    # The bus reconnects forever and logs every failed attempt; a one-shot command
    # gives up after REACH_TIMEOUT_S with one clear line instead.
    logging.getLogger("nats.aio.client").setLevel(logging.CRITICAL)
    before = refusals.mark()
    try:
        async with (
            asyncio.timeout(REACH_TIMEOUT_S),
            bus_session(
                nats_url, namespace, name="intentbus-positions", provision_streams=False
            ) as bus,
        ):
            return await call(PositionClient(bus.nc, topology, timeout_s=ANSWER_TIMEOUT_S), bus)
    except (TimeoutError, LedgerUnavailable) as exc:
        refused = refusals.since(before)  # a refused request is never answered either
        if refused is not None:
            raise fail(refused.describe(), code=3) from None
        if isinstance(exc, LedgerUnavailable):
            raise fail(
                f"no ledger is running: nobody answered on {topology.ledger_subject('list')} "
                "(start one with `intentbus ledger`, and check --namespace)",
                code=1,
            ) from None
        url = nats_url or os.environ.get("NATS_URL") or "nats://127.0.0.1:4222"
        raise fail(f"cannot reach NATS at {url} within {REACH_TIMEOUT_S:g}s", code=1) from None
    except LedgerError as exc:
        raise fail(f"the ledger refused: {exc}", code=1) from None
    except (OSError, NoServersError) as exc:
        raise fail(f"cannot reach NATS: {exc}", code=1) from None


def ledger_check(
    db: DbOption = DEFAULT_DB,
    show_all: Annotated[
        bool, typer.Option("--all", help="Show every final result, not only mismatches.")
    ] = False,
) -> None:
    """Show final results that disagree with the fills the ledger applied (exit 1 if any)."""
    summaries = run(_read_checks(db, mismatch_only=not show_all))
    mismatches = len([s for s in summaries if s.mismatch])
    console.print(checks_table(summaries, title="Results" if show_all else "Mismatches"))
    console.print(f"{mismatches} result(s) disagree with their fills")
    if mismatches:
        raise typer.Exit(1)


async def _read_checks(db: str, *, mismatch_only: bool) -> list[ResultSummary]:
    store = store_for(db, read_only=True)
    try:
        await store.open()
        return await store.summaries(mismatch_only=mismatch_only)
    except (LedgerConfigError, OSError, psycopg.Error) as exc:
        raise fail(f"cannot read {store.label}: {scrub(str(exc))}", code=1) from None
    finally:
        await store.close()


def register(app: typer.Typer) -> None:
    """Add ``ledger``, ``ledger-check`` and ``positions``."""
    app.command("ledger")(ledger)
    app.command("ledger-check")(ledger_check)
    app.add_typer(positions_app, name="positions")
