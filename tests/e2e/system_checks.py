"""Reading a whole system's state for end-to-end checks: streams, ledger, venue accounts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from nats.aio.client import Client
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy

from intentbus.bus import LedgerError, LedgerUnavailable, PositionClient, Topology
from intentbus.executor.base import VenueContext
from intentbus.schemas import (
    Direction,
    ExecutionIntent,
    ExecutionResult,
    ExecutionStatus,
    Fill,
    OpenPosition,
    Position,
    decoder,
    results_stream_decoder,
)
from intentbus.testing import wait_for
from intentbus.venues.paper import PaperExecutor, PaperExecutorOptions


async def stream_messages(js: JetStreamContext, stream: str, subjects: str) -> list[bytes]:
    """Return every message of a stream, in order (an ordered consumer, not one get each)."""
    info = await js.stream_info(stream)
    total = info.state.messages
    if not total:
        return []
    sub = await js.subscribe(
        subjects, stream=stream, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
    )
    found: list[bytes] = []
    try:
        while len(found) < total:
            try:
                msg = await sub.next_msg(timeout=5.0)
            except NatsTimeoutError:
                break
            found.append(msg.data)
    finally:
        await sub.unsubscribe()
    return found


async def final_results(js: JetStreamContext, topology: Topology) -> list[ExecutionResult]:
    """Return every final result on RESULTS."""
    decode = results_stream_decoder().decode
    raw = await stream_messages(js, topology.results_stream, topology.results_filter())
    return [m for m in map(decode, raw) if isinstance(m, ExecutionResult)]


async def fills(js: JetStreamContext, topology: Topology) -> list[Fill]:
    """Return every fill on FILLS."""
    decode = decoder(Fill).decode
    return [
        decode(d) for d in await stream_messages(js, topology.fills_stream, topology.fills_filter())
    ]


@dataclass(frozen=True)
class Books:
    """The ledger's positions and the venue's nets, by (account, symbol)."""

    ledger: dict[tuple[str, str], float]
    venue: dict[tuple[str, str], float]
    positions: tuple[Position, ...]


async def books(nc: Client, topology: Topology, symbols: tuple[str, ...]) -> Books:
    """Read the ledger (once it applied everything on the streams) and the paper venue."""
    js = nc.jetstream()
    results_seq = (await js.stream_info(topology.results_stream)).state.last_seq
    fills_seq = (await js.stream_info(topology.fills_stream)).state.last_seq
    client = PositionClient(nc, topology, timeout_s=2.0)
    listed = await client.list()
    anchor = listed.positions[0].position_id

    async def caught_up() -> bool:
        try:
            await client.get(anchor, min_results_seq=results_seq, min_fills_seq=fills_seq)
        except (LedgerUnavailable, LedgerError):
            return False
        return True

    await wait_for(caught_up, timeout_s=60, what="the ledger to apply every fill and result")
    positions = (await client.list()).positions
    ledger: dict[tuple[str, str], float] = {}
    for p in positions:
        signed = p.size if p.direction is Direction.LONG else -p.size
        key = (p.book_id, p.token_contract)
        ledger[key] = ledger.get(key, 0.0) + signed
    paper = PaperExecutor(PaperExecutorOptions())
    await paper.start(VenueContext(nc=nc, js=js, topology=topology))
    try:
        venue = {key: await paper.net_position(paper.account_for(key[0]), key[1]) for key in ledger}
    finally:
        await paper.stop()
    return Books(ledger=ledger, venue=venue, positions=positions)


async def wait_for_ledger(client: PositionClient, timeout_s: float) -> None:
    """Wait until the ledger answers position requests."""

    async def answers() -> bool:
        try:
            await client.list()
        except LedgerUnavailable:
            return False
        return True

    await wait_for(answers, timeout_s=timeout_s, interval_s=0.1, what="the ledger")


def spread_positions(prefix: str, count: int, symbols: tuple[str, ...]) -> list[OpenPosition]:
    """Return paper positions, one per symbol in each book, long and short alternately."""
    return [
        OpenPosition(
            position_id=f"{prefix}p-{n:02d}",
            venue="paper",
            book_id=f"{prefix}{n // len(symbols):02d}",  # a book is one account
            token_contract=symbols[n % len(symbols)],
            direction=Direction.LONG if n % 2 == 0 else Direction.SHORT,
            allocation_usd=100_000.0,
        )
        for n in range(count)
    ]


def once_each(results: list[ExecutionResult]) -> Counter[str]:
    """Count final results per intent."""
    return Counter(r.intent_id for r in results)


async def assert_executed_exactly_once(
    nc: Client,
    topology: Topology,
    batch: list[ExecutionIntent],
    positions: list[OpenPosition],
    symbols: tuple[str, ...],
    timeout_s: float = 120,
) -> None:
    """Every intent executed once; nothing superseded or refused; ledger equals venue."""
    js = nc.jetstream()
    wanted = {one.intent_id for one in batch}

    async def finished() -> int:
        return len(wanted & set(once_each(await final_results(js, topology))))

    await wait_for(finished, until=lambda n: n == len(wanted), timeout_s=timeout_s, interval_s=0.5)
    results = [r for r in await final_results(js, topology) if r.intent_id in wanted]
    assert set(once_each(results).values()) == {1}
    not_done = [
        (r.intent_id, r.status, r.skip_reason, r.error)
        for r in results
        if r.status is not ExecutionStatus.SUCCESS
    ]
    assert not_done == [], (len(not_done), not_done[:10])
    stored = await fills(js, topology)
    assert len({f.fill_id for f in stored}) == len(stored)
    state = await books(nc, topology, symbols)
    for key, held in state.ledger.items():
        assert abs(held - state.venue[key]) < 1e-9, (key, held, state.venue[key])
    per_position = {p.position_id: p.fills_applied for p in state.positions}
    seen: dict[str, int] = {}
    for fill in stored:
        seen[fill.position_id] = seen.get(fill.position_id, 0) + 1
    assert per_position == {p.position_id: seen.get(p.position_id, 0) for p in positions}
