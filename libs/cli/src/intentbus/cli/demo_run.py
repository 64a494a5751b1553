"""The demo's acts against running services: publish, watch the streams, print tables.

Every step waits on messages (``RESULTS``, ``FILLS``, ledger replies) with a timeout,
never on a sleep: an order rests, marks move the market through it one at a time and
each mark's fill is printed as it arrives.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from rich.table import Table
from rich.text import Text

from intentbus.bus import LedgerError, LedgerUnavailable, PositionClient, Publisher
from intentbus.cli.demo_script import (
    BTC_DEPTH,
    DEMO_POSITIONS,
    VENUE,
    closing_intents,
    expected_statuses,
    marks_through,
    opening_intents,
)
from intentbus.cli.demo_watch import StreamWatch
from intentbus.cli.tables import fills_table, intents_table, results_table
from intentbus.command.common import BusSession, console, fail
from intentbus.command.tables import new_table, num, positions_table
from intentbus.schemas import ExecutionIntent, Fill, Mark, OrderState, OrderUpdate

_FILL_COLUMNS = (
    f"{'mark':>12}  {'fill':>4}  {'size':>10}  {'price':>12}  {'liquidity':<9}  "
    f"{'fee $':>10}  {'filled / order size':>21}"
)


async def run_acts(bus: BusSession, watch: StreamWatch, timeout_s: float) -> bool:
    """Run the scripted book; return whether every expected outcome was seen."""
    positions = PositionClient(bus.nc, bus.topology, timeout_s=5.0)
    publisher = Publisher(bus.js, bus.topology)
    for request in DEMO_POSITIONS:
        await positions.open(request)
    opening, closing = opening_intents(), closing_intents()
    resting = await _act_rest(publisher, watch, positions, opening, timeout_s)
    await _act_fill(publisher, watch, resting, timeout_s)
    await _act_close(publisher, watch, closing, timeout_s)
    await _print_summary(watch, positions, [*opening, *closing], timeout_s)
    return _check(watch, opening, closing)


async def _act_rest(
    publisher: Publisher,
    watch: StreamWatch,
    positions: PositionClient,
    opening: list[ExecutionIntent],
    timeout_s: float,
) -> OrderUpdate:
    btc, others = opening[0], opening[1:]
    console.print(
        "\n[bold]1.[/] a low-urgency BTC ADD (a limit resting below the mark), an ETH ADD, "
        "an ETH ADD below the minimum notional and a reduce-only RECLAIM"
    )
    for intent in opening:
        await publisher.intent(intent)

    def settled() -> bool:
        btc_seen = btc.intent_id in watch.updates or btc.intent_id in watch.results
        return btc_seen and all(i.intent_id in watch.results for i in others)

    await watch.until(settled, f"the BTC order to rest and {len(others)} results", timeout_s)
    update = watch.updates.get(btc.intent_id)
    if update is None or update.price is None:
        result = watch.results[btc.intent_id]
        raise fail(f"the BTC order did not rest: {result.status.value} {result.error}", code=1)
    console.print(_resting_table(update))
    await caught_up(watch, positions, DEMO_POSITIONS[0].position_id, timeout_s)
    reply = await positions.list()
    console.print(positions_table(reply.positions, title="Positions while the BTC order rests"))
    return update


def _resting_table(update: OrderUpdate) -> Table:
    table = new_table(
        "Resting order (OrderUpdate on RESULTS)",
        ("intent", "position", "symbol", "side", "size", "limit", "state", "client order id"),
        frozenset({"size", "limit"}),
    )
    table.add_row(
        update.intent_id[:8],
        update.position_id,
        update.token_contract,
        update.side.value,
        num(update.size),
        num(update.price),
        update.order_state.value,
        update.client_order_id,
    )
    return table


async def _act_fill(
    publisher: Publisher, watch: StreamWatch, update: OrderUpdate, timeout_s: float
) -> None:
    intent_id, limit = update.intent_id, update.price or 0.0
    console.print(
        f"\n[bold]2.[/] BTC marks move down through the limit {num(limit)}; the venue fills "
        f"at most {BTC_DEPTH:g} BTC per mark update, so the order fills in parts"
    )
    console.print(Text(_FILL_COLUMNS, style="bold"))
    printed = 0
    for price in marks_through(limit):
        if _order_filled(watch.fills_of(intent_id), update.size):
            break
        await publisher.mark(
            Mark(venue=VENUE, symbol=update.token_contract, price=price, at=datetime.now(UTC))
        )

        def moved(before: int = printed) -> bool:
            return len(watch.fills_of(intent_id)) > before or intent_id in watch.results

        await watch.until(moved, f"a fill of the BTC order at mark {price:g}", timeout_s)
        fills = watch.fills_of(intent_id)
        for fill in fills[printed:]:
            printed += 1
            filled = sum(f.size for f in fills[:printed])
            console.print(_fill_line(price, printed, fill, filled, update.size))
        if intent_id in watch.results:
            break
    await watch.until(lambda: intent_id in watch.results, "the BTC order's result", timeout_s)
    result = watch.results[intent_id]
    console.print(
        f"BTC order {result.order_state.value if result.order_state else '?'}: "
        f"{num(result.filled_size)} BTC in {result.fill_count} fills at {num(result.avg_price)}"
    )


def _order_filled(fills: list[Fill], size: float) -> bool:
    if any(f.order_state is OrderState.FILLED for f in fills):
        return True
    return sum(f.size for f in fills) >= size * (1 - 1e-9)


def _fill_line(mark: float, n: int, fill: Fill, filled: float, size: float) -> Text:
    progress = f"{num(filled)}/{num(size)}"
    return Text(
        f"{mark:>12,.2f}  {n:>4}  {num(fill.size):>10}  {num(fill.price):>12}  "
        f"{fill.liquidity.value:<9}  {num(fill.fee, 4):>10}  {progress:>21}"
    )


async def _act_close(
    publisher: Publisher, watch: StreamWatch, closing: list[ExecutionIntent], timeout_s: float
) -> None:
    console.print("\n[bold]3.[/] a BTC TRIM, then a critical EXIT of what is left")
    for intent in closing:
        await publisher.intent(intent)
    await watch.until(
        lambda: all(i.intent_id in watch.results for i in closing),
        f"{len(closing)} results",
        timeout_s,
    )


async def _print_summary(
    watch: StreamWatch,
    positions: PositionClient,
    intents: list[ExecutionIntent],
    timeout_s: float,
) -> None:
    console.print()
    console.print(intents_table(intents, title="Intents published (in order)"))
    results = [watch.results[i.intent_id] for i in intents if i.intent_id in watch.results]
    console.print(results_table(results, title="Results from the paper executor"))
    console.print(fills_table(watch.fills, title="Fills on the FILLS stream"))
    await caught_up(watch, positions, DEMO_POSITIONS[0].position_id, timeout_s)
    reply = await positions.list()
    console.print(positions_table(reply.positions, title="Positions in the ledger"))


async def caught_up(
    watch: StreamWatch, positions: PositionClient, position_id: str, timeout_s: float
) -> None:
    """Wait until the ledger applied every result and fill the demo has seen."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            await positions.get(
                position_id,
                min_results_seq=watch.results_seq,
                min_fills_seq=watch.fills_seq,
            )
            return
        except (LedgerError, LedgerUnavailable) as exc:  # behind: each request waits ~2 s
            behind = isinstance(exc, LedgerUnavailable) or "behind" in str(exc)
            if not behind or time.monotonic() > deadline:
                raise fail(f"the ledger did not catch up in time: {exc}", code=1) from None


def _check(
    watch: StreamWatch, opening: list[ExecutionIntent], closing: list[ExecutionIntent]
) -> bool:
    problems = []
    for intent_id, status in expected_statuses(opening, closing).items():
        result = watch.results.get(intent_id)
        if result is None:
            problems.append(f"no result for {intent_id}")
        elif result.status is not status:
            problems.append(f"{intent_id}: {result.status.value}, expected {status.value}")
    resting_fills = len(watch.fills_of(opening[0].intent_id))
    if resting_fills < 2:
        problems.append(f"the resting BTC order filled in {resting_fills} part(s), not several")
    for problem in problems:
        console.print(f"[red]{problem}[/]")
    return not problems
