"""The PM stand-in: positions to open, intents to publish on them, and the publisher."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import msgspec
from nats.js import JetStreamContext

from bench.pacing import wait_turn
from intentbus.bus import Topology
from intentbus.schemas import (
    ActionType,
    Direction,
    ExecutionIntent,
    OpenPosition,
    build_intent,
    encode,
)

VENUE = "paper"
BOOKS = ("alpha", "beta", "gamma", "delta")
TTL = timedelta(seconds=120)
MSG_ID = "Nats-Msg-Id"
ADD_TRIM = ((ActionType.ADD, 0.01), (ActionType.TRIM, 0.5))  # the synthetic stage's cycle


def symbol_of(n: int) -> str:
    """Return the symbol of position ``n``: one symbol per position, as a PM holds them."""
    return f"TOK{n:03d}"


def prices_option(positions: int) -> str:
    """Return the paper venue's ``prices`` option covering every position's symbol."""
    return ",".join(f"{symbol_of(n)}:{100.0 + n:g}" for n in range(positions))


class IntentSource:
    """Cycle over positions; each position steps through ``cycle`` (ADD 1%, TRIM 50%).

    ``positions`` is a count (one symbol each, long) or the positions themselves. Every
    intent trades (nothing is below min notional or reduce-only), so the pipeline
    measured is prepare + execute + apply, not a skip path.
    """

    def __init__(
        self,
        topology: Topology,
        positions: int | list[OpenPosition],
        cycle: tuple[tuple[ActionType, float], ...] = (
            (ActionType.ADD, 0.01),
            (ActionType.TRIM, 0.5),
        ),
    ) -> None:
        self.positions = positions if isinstance(positions, list) else [
            OpenPosition(
                position_id=f"bench-{n:03d}",
                venue=VENUE,
                book_id=BOOKS[n % len(BOOKS)],
                token_contract=symbol_of(n),
                direction=Direction.LONG,
                allocation_usd=1_000_000.0,
            )
            for n in range(positions)
        ]  # fmt: skip
        self._templates = [
            (
                topology.intents_subject(p.venue, p.book_id, p.position_id),
                tuple(self._template(p, action, frac) for action, frac in cycle),
            )
            for p in self.positions
        ]
        self._turn = [0] * len(self.positions)
        self._next = 0
        self._run = f"{time.time_ns():x}"
        self._serial = 0

    @staticmethod
    def _template(position: OpenPosition, action: ActionType, frac: float) -> ExecutionIntent:
        return build_intent(
            action=action,
            size_frac=frac,
            position_id=position.position_id,
            token_contract=position.token_contract,
            token_chain=position.venue,
            book_id=position.book_id,
            urgency="high",
            reason_codes=("bench",),
            ttl=TTL,
        )

    def next(self, now_ns: int) -> tuple[str, ExecutionIntent]:
        """Return the subject and intent to publish next, created at ``now_ns``."""
        index = self._next
        self._next = (index + 1) % len(self._templates)
        subject, templates = self._templates[index]
        turn = self._turn[index]
        self._turn[index] = turn + 1
        self._serial += 1
        created = datetime.fromtimestamp(now_ns / 1e9, UTC)
        intent = msgspec.structs.replace(
            templates[turn % len(templates)],
            intent_id=f"b{self._run}-{self._serial}",
            created_at=created,
            valid_until=created + TTL,
        )
        return subject, intent


async def publish_intents(
    js: JetStreamContext, source: IntentSource, count: int, rate: float, sent: dict[str, int]
) -> list[str]:
    """Publish ``count`` intents at ``rate``/s (0: unpaced) and record each send time."""
    ids: list[str] = []
    start = time.monotonic()
    for n in range(count):
        await wait_turn(start, n, rate)
        now_ns = time.time_ns()
        subject, intent = source.next(now_ns)
        sent[intent.intent_id] = now_ns
        ids.append(intent.intent_id)
        await js.publish_async(subject, encode(intent), headers={MSG_ID: intent.intent_id})
    await asyncio.wait_for(js.publish_async_completed(), timeout=60.0)
    return ids
