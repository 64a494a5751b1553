"""The intent handler: claim, cancel what the position has working, size, place, hand over.

Runs in the intent's position lane (a position's intents one after another, in stream
order, on the one replica owning its partition). Per intent:

1. A claim exists (redelivery, takeover, or an acked intent redelivered after a
   takeover): ``done`` -> republish its result; ``claimed`` -> resume: follow the order
   if the venue has it, else place it now with the same client order id (or, past the
   deadline, fence it and skip).
2. Past ``valid_until`` -> skipped ``expired``; a halt switch that forbids the action or
   the book's intent rate -> skipped with its reason (:mod:`~intentbus.executor.guards`;
   a claimed, unsent order under such a switch is fenced and skipped).
3. Supersede: cancel the position's working orders and wait until the follower has
   published their fills and final results.
4. Read the ledger position (read-your-writes on every fill and result this replica
   published) and the venue account's net in the symbol; size the order from the
   venue's rules and mark; let the venue adjust it; or skip with a reason (the notional
   caps and the halt switch are checked again on the plan).
5. Claim with the plan (before sending), place it, record it as working, publish its
   ``OrderUpdate`` and hand it to the follower (:mod:`~intentbus.executor.placement`);
   then the intent is acked.

Waits (ledger down, venue unreachable) happen here, in the lane
(:mod:`~intentbus.executor.lanes`), with the delivery kept alive, never by sending the
intent back: later intents of the position wait behind it. Each wait ends at the
intent's deadline at the latest.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from nats.aio.msg import Msg
from opentelemetry import trace

from intentbus.bus import Ack, Disposition, Nak, PositionClient, PositionReads, Publisher, Term
from intentbus.executor import results
from intentbus.executor.base import BaseExecutor
from intentbus.executor.claims import ClaimStore
from intentbus.executor.follower import OrderFollower
from intentbus.executor.guards import Guard
from intentbus.executor.ids import client_order_id
from intentbus.executor.keepalive import KeepAlive
from intentbus.executor.lanes import Abandoned, Expired, Lanes
from intentbus.executor.orders import WorkingOrderStore
from intentbus.executor.placement import OrderPlacement
from intentbus.executor.prepare import prepare
from intentbus.executor.settings import RuntimeSettings, RuntimeStats
from intentbus.schemas import (
    INCREASING_ACTIONS,
    ExecutionIntent,
    ExecutionResult,
    Position,
    Skip,
    SkipReason,
)

log = logging.getLogger(__name__)


class IntentIntake:
    """Handle one venue's intents; see the module docstring."""

    def __init__(
        self,
        executor: BaseExecutor,
        publisher: Publisher,
        positions: PositionReads | PositionClient,
        claims: ClaimStore,
        orders: WorkingOrderStore,
        follower: OrderFollower,
        *,
        owner: str,
        settings: RuntimeSettings,
        stats: RuntimeStats,
        guard: Guard | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self._guard = guard or Guard(stats=stats)
        self._executor = executor
        self._positions = positions
        self._claims = claims
        self._follower = follower
        self._owner = owner
        self._settings = settings
        self._stats = stats
        self._lanes = Lanes(settings, stats)
        self._placement = OrderPlacement(
            executor, publisher, claims, orders, follower,
            lanes=self._lanes, guard=self._guard, owner=owner, settings=settings, stats=stats,
        )  # fmt: skip
        self._keep_alive = KeepAlive(settings.ack_wait_s / 3)
        self._on_error = on_error or (lambda _error: None)
        self._handling: dict[str, int] = {}  # position id -> intents being handled

    def busy(self, position_id: str) -> bool:
        """Say whether an intent of the position is in hand (reconciliation leaves it be)."""
        return self._handling.get(position_id, 0) > 0

    async def deliver(
        self, intent: ExecutionIntent, msg: Msg, partition: int, alive: Callable[[], bool]
    ) -> Disposition:
        """Handle one delivered intent; retry in its lane while ``alive()`` (partition ours)."""
        tokens = msg.subject.split(".")
        wanted = (intent.token_chain, intent.book_id, intent.position_id)
        venue = self._executor.venue
        if intent.token_chain != venue or tuple(tokens[-4:-2] + tokens[-1:]) != wanted:
            return Term(
                f"intent for {intent.token_chain}/{intent.book_id}/{intent.position_id} "
                f"arrived on {msg.subject} at the {venue!r} executor"
            )
        delay = self._settings.retry_s
        pid = intent.position_id
        self._handling[pid] = self._handling.get(pid, 0) + 1
        try:
            while alive():
                try:
                    await self.handle(intent, msg, partition, alive)
                    return Ack()
                except Abandoned:
                    break
                except Exception as exc:
                    log.exception("intent %s failed; retrying in its lane", intent.intent_id)
                    trace.get_current_span().record_exception(exc)  # an event on its span
                    self._on_error(f"intent {intent.intent_id}: {exc!r}")
                    self._stats.waits += 1
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self._settings.retry_max_s)
        finally:
            if self._handling[pid] <= 1:
                del self._handling[pid]
            else:
                self._handling[pid] -= 1
        # The partition is being handed over: never ack what was not handled; the next
        # owner's consumer starts at the ack floor and delivers it again.
        return Nak(delay_s=self._settings.ack_wait_s, reason="partition handed over")

    async def handle(
        self,
        intent: ExecutionIntent,
        msg: Msg,
        partition: int,
        alive: Callable[[], bool] = lambda: True,
    ) -> None:
        """Handle one intent to the point where it may be acked.

        Raise :class:`Abandoned` when ``alive()`` turns false during a wait.
        """
        in_hand = self._lanes.holding(intent.intent_id, msg.metadata.sequence.stream, alive)
        with in_hand, self._keep_alive.holding(msg):
            await self._handle_until_expired(intent, partition, msg.metadata.num_delivered)

    async def _handle_until_expired(
        self, intent: ExecutionIntent, partition: int, deliveries: int
    ) -> None:
        try:
            await self._handle(intent, partition, deliveries)
        except Expired as exc:
            await self._skip(intent, SkipReason.EXPIRED, str(exc), partition)

    async def _handle(self, intent: ExecutionIntent, partition: int, deliveries: int) -> None:
        if self._follower.tracked(client_order_id(intent.intent_id)) is not None:
            return  # its order is followed already (adopted): the follower finishes it
        if deliveries > 1:  # delivered before: a claim is likely, settle it first
            claim = await self._claims.get(intent.intent_id)
            if claim is not None:
                await self._placement.settle(intent, claim, partition)
                return
        # A first delivery reads no claim: creating one (or a skip's done record) is the
        # check. An intent delivered again after a takeover (acked above the old ack
        # floor) is older than any working order of its position, so it cancels nothing
        # and finds its claim when it tries to create it.
        if intent.is_expired():
            raise Expired(f"valid_until {intent.valid_until.isoformat()} passed")
        refused = self._guard.admit(intent)  # the halt switch and the intent rate
        if refused is not None:
            skipped = results.skipped(intent, self._executor.venue, refused)
            await self._record_skip(intent, skipped, partition)
            return
        seq = self._lanes.seq(intent.intent_id)
        if not await self._follower.cancel_position(intent.position_id, intent.valid_until, seq):
            raise Expired("the position's working orders did not finish before the deadline")
        # The ledger's view and the account's net are independent reads: ask both at once
        # (only reducing orders are sized on the net).
        if intent.action in INCREASING_ACTIONS:
            position, net = await self._read_position(intent), 0.0
        else:
            position, net = await asyncio.gather(self._read_position(intent), self._net(intent))
        if position is None:
            await self._skip(
                intent, SkipReason.UNKNOWN_POSITION, "the ledger does not know it", partition
            )
            return
        prepared = prepare(self._executor, intent, position, net)
        if not isinstance(prepared, Skip):  # the notional caps, and a switch changed meanwhile
            prepared = self._guard.check_plan(intent, prepared, position) or prepared
            prepared = self._guard.halted(intent) or prepared
        if isinstance(prepared, Skip):
            skipped = results.skipped(intent, self._executor.venue, prepared)
            await self._record_skip(intent, skipped, partition)
            return
        if intent.is_expired():
            raise Expired("deadline passed while the order was prepared")
        claimed = await self._claims.claim(intent.intent_id, self._owner, prepared)
        if claimed is None:  # a stalled replica claimed it meanwhile
            again = await self._claims.get(intent.intent_id)
            if again is not None:
                await self._placement.settle(intent, again, partition)
            return
        await self._placement.place(intent, prepared, partition)

    async def _net(self, intent: ExecutionIntent) -> float:
        """Return the account's net in the symbol."""
        venue = self._executor
        account = venue.account_for(intent.book_id)
        symbol = intent.token_contract
        return await self._lanes.waiting(
            intent, "venue net", lambda: venue.net_position(account, symbol)
        )

    # results --------------------------------------------------------------------------
    async def _skip(
        self, intent: ExecutionIntent, reason: SkipReason, detail: str, partition: int
    ) -> None:
        skip = Skip(reason=reason.value, detail=detail)
        await self._record_skip(
            intent, results.skipped(intent, self._executor.venue, skip), partition
        )

    async def _record_skip(
        self, intent: ExecutionIntent, result: ExecutionResult, partition: int
    ) -> None:
        """Create the done claim first: a skip never goes out over a claimed order."""
        if not await self._claims.record(intent.intent_id, self._owner, result):
            claim = await self._claims.get(intent.intent_id)
            if claim is not None:  # decided or claimed before (a redelivery): settle it
                await self._placement.settle(intent, claim, partition)
            return
        await self._placement.publish(result)
        self._stats.skipped += 1

    # waiting ----------------------------------------------------------------------------
    async def _read_position(self, intent: ExecutionIntent) -> Position | None:
        follower = self._follower

        async def read() -> Position | None:
            results_seq, fills_seq = follower.read_floor(intent.position_id)
            return await self._positions.get(
                intent.position_id, min_results_seq=results_seq, min_fills_seq=fills_seq
            )

        return await self._lanes.waiting(intent, "ledger", read)


__all__ = ["Abandoned", "IntentIntake", "client_order_id"]
