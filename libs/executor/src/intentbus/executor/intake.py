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
   ``OrderUpdate`` and hand it to the follower; then the intent is acked.

Waits (ledger down, venue unreachable) happen here, in the lane, with the delivery kept
alive, never by sending the intent back: later intents of the position wait behind it.
Each wait ends at the intent's deadline at the latest.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from nats.aio.msg import Msg

from intentbus import telemetry
from intentbus.bus import (
    LedgerError,
    LedgerUnavailable,
    PositionClient,
    PositionReads,
    Publisher,
    waits,
)
from intentbus.executor import results
from intentbus.executor.base import BaseExecutor, OrderNotFound, VenueOrder
from intentbus.executor.claims import Claim, ClaimState, ClaimStore
from intentbus.executor.follower import OrderFollower
from intentbus.executor.guards import Guard
from intentbus.executor.ids import client_order_id
from intentbus.executor.keepalive import KeepAlive
from intentbus.executor.orders import WorkingOrder, WorkingOrderStore
from intentbus.executor.prepare import prepare
from intentbus.executor.settings import RuntimeSettings, RuntimeStats
from intentbus.schemas import (
    CLOSING_ACTIONS,
    INCREASING_ACTIONS,
    ExecutionIntent,
    ExecutionPlan,
    ExecutionResult,
    Position,
    Skip,
    SkipReason,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


class _Expired(Exception):
    """The intent's deadline passed while it waited."""


class Abandoned(Exception):
    """This replica gave the intent's partition up while the intent waited."""


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
    ) -> None:
        self._guard = guard or Guard(stats=stats)
        self._executor = executor
        self._publisher = publisher
        self._positions = positions
        self._claims = claims
        self._orders = orders
        self._follower = follower
        self._owner = owner
        self._settings = settings
        self._stats = stats
        self._alive: dict[str, Callable[[], bool]] = {}
        self._seq: dict[str, int] = {}  # intents in hand -> their INTENTS stream sequence
        self._keep_alive = KeepAlive(settings.ack_wait_s / 3)

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
        self._alive[intent.intent_id] = alive
        self._seq[intent.intent_id] = msg.metadata.sequence.stream
        try:
            with self._keep_alive.holding(msg):
                await self._handle_until_expired(intent, partition, msg.metadata.num_delivered)
        finally:
            self._alive.pop(intent.intent_id, None)
            self._seq.pop(intent.intent_id, None)

    async def _handle_until_expired(
        self, intent: ExecutionIntent, partition: int, deliveries: int
    ) -> None:
        try:
            await self._handle(intent, partition, deliveries)
        except _Expired as exc:
            await self._skip(intent, SkipReason.EXPIRED, str(exc), partition)

    async def _handle(self, intent: ExecutionIntent, partition: int, deliveries: int) -> None:
        if self._follower.tracked(client_order_id(intent.intent_id)) is not None:
            return  # its order is followed already (adopted): the follower finishes it
        if deliveries > 1:  # delivered before: a claim is likely, settle it first
            claim = await self._claims.get(intent.intent_id)
            if claim is not None:
                await self._settle(intent, claim, partition)
                return
        # A first delivery reads no claim: creating one (or a skip's done record) is the
        # check. An intent delivered again after a takeover (acked above the old ack
        # floor) is older than any working order of its position, so it cancels nothing
        # and finds its claim when it tries to create it.
        if intent.is_expired():
            raise _Expired(f"valid_until {intent.valid_until.isoformat()} passed")
        refused = self._guard.admit(intent)  # the halt switch and the intent rate
        if refused is not None:
            skipped = results.skipped(intent, self._executor.venue, refused)
            await self._record_skip(intent, skipped, partition)
            return
        seq = self._seq.get(intent.intent_id, 0)
        if not await self._follower.cancel_position(intent.position_id, intent.valid_until, seq):
            raise _Expired("the position's working orders did not finish before the deadline")
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
            raise _Expired("deadline passed while the order was prepared")
        claimed = await self._claims.claim(intent.intent_id, self._owner, prepared)
        if claimed is None:  # a stalled replica claimed it meanwhile
            again = await self._claims.get(intent.intent_id)
            if again is not None:
                await self._settle(intent, again, partition)
            return
        await self._place(intent, prepared, partition)

    async def _net(self, intent: ExecutionIntent) -> float:
        """Return the account's net in the symbol."""
        venue = self._executor
        account = venue.account_for(intent.book_id)
        symbol = intent.token_contract
        return await self._waiting(intent, "venue net", lambda: venue.net_position(account, symbol))

    # placing and resuming ---------------------------------------------------------
    @telemetry.traced("executor place")
    async def _place(self, intent: ExecutionIntent, plan: ExecutionPlan, partition: int) -> None:
        """Send the claimed order once; an unknown outcome is asked about, never re-guessed."""
        placed_at = datetime.now(UTC)
        while True:
            try:
                order = await self._executor.place(plan)
                break
            except Exception as exc:
                log.warning("place %s failed (%r): asking the venue", plan.client_order_id, exc)
                found = await self._status(intent, plan)
                if found is not None:
                    order = found
                    break
                if intent.is_expired():
                    await self._fence_and_skip(intent, plan, partition)
                    return
                if not self._alive.get(intent.intent_id, lambda: True)():
                    raise Abandoned("the partition was handed over while placing") from exc
                self._stats.waits += 1
                await asyncio.sleep(self._settings.retry_s)
        self._stats.placed += 1
        await self._hand_over(intent, plan, partition, order, placed_at)

    async def _hand_over(
        self,
        intent: ExecutionIntent,
        plan: ExecutionPlan,
        partition: int,
        order: VenueOrder | None,
        placed_at: datetime,
    ) -> None:
        """Give the order to the follower; the intent may be acked once this returns.

        An order that finished at placement (an IOC, a marketable limit) is finished here
        while the intent is in hand, with no working record: a crash before its result
        leaves the claim, which the redelivered intent settles. Any other order is
        recorded as working first, so it is followed after the intent is acked.
        """
        working = WorkingOrder(
            intent=intent,
            plan=plan,
            partition=partition,
            placed_at=placed_at,
            owner=self._owner,
            intent_seq=self._seq.get(intent.intent_id, 0),
            traceparent=telemetry.current_traceparent(),
        )
        follower = self._follower
        if order is not None and order.state.is_final:
            tracked = await follower.follow(working, order, recorded=False)
            await waits.event_set(tracked.done, self._settings.settle_wait_s)
            if tracked.done.is_set():
                return
            # Not finished yet (its fills are late): record it so it is followed to the
            # end after the ack; if it finished while the record was written, drop it.
            await self._orders.put(working)
            if tracked.done.is_set():
                await self._orders.delete(working)
            else:
                await follower.follow(working, order)  # now recorded: its finish deletes it
            return
        await self._orders.put(working)
        if order is not None and order.state.is_live:
            await self._publisher.order_update(results.order_update(intent, plan, order))
        await follower.follow(working, order)
        switch = self._guard.forbids(intent)
        if switch is not None:  # the switch changed while the order was sent
            cloid = plan.client_order_id
            why = f"halt switch {switch.scope} is {switch.mode.value}: {switch.reason}"
            await follower.cancel_matching(lambda w: w.plan.client_order_id == cloid, why)

    async def _settle(self, intent: ExecutionIntent, claim: Claim, partition: int) -> None:
        if claim.state is ClaimState.DONE and claim.result is not None:
            await self._publish(claim.result)
            self._stats.republished += 1
            return
        plan = claim.plan
        if plan is None:
            log.error("claim of %s has no plan: not written by this runtime", intent.intent_id)
            return
        if self._follower.tracked(plan.client_order_id) is not None:
            return  # followed already: the follower publishes its result
        working = await self._orders.get(plan.venue, partition, intent.intent_id)
        if working is not None:
            self._stats.adopted += 1
            await self._follower.follow(working, None)
            return
        found = await self._status(intent, plan)
        if found is not None:
            self._stats.adopted += 1
            await self._hand_over(intent, plan, partition, found, claim.claimed_at or _now())
        elif intent.is_expired():
            await self._fence_and_skip(intent, plan, partition)
        elif (stopped := self._guard.halted(intent)) is not None:
            await self._fence_and_skip(intent, plan, partition, stopped)
        else:
            await self._place(intent, plan, partition)

    async def _status(self, intent: ExecutionIntent, plan: ExecutionPlan) -> VenueOrder | None:
        """Ask the venue for the order by client order id; None: it was never placed."""
        venue = self._executor

        async def ask() -> VenueOrder | None:
            try:
                return await venue.order_status(plan.account, plan.symbol, plan.client_order_id)
            except OrderNotFound:
                return None

        try:
            return await self._waiting(intent, "order status", ask)
        except _Expired:
            result = results.unknown(intent, plan, "the venue could not say whether it exists")
            await self._finish(intent, result)
            raise

    async def _fence_and_skip(
        self,
        intent: ExecutionIntent,
        plan: ExecutionPlan,
        partition: int,
        skip: Skip | None = None,
    ) -> None:
        """Skip a claimed, unplaced order only once the venue guarantees it never will be."""
        try:
            order = await self._executor.fence(plan.account, plan.symbol, plan.client_order_id)
        except NotImplementedError:
            error = "expired, but the claimed order cannot be fenced here"
            await self._finish(intent, results.unknown(intent, plan, error))
            return
        if order is not None:  # a stalled claimant placed it after all: follow it
            await self._hand_over(intent, plan, partition, order, _now())
            return
        skip = skip or Skip(reason=SkipReason.EXPIRED.value, detail="claimed, never placed")
        await self._finish(intent, results.skipped(intent, self._executor.venue, skip))

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
                await self._settle(intent, claim, partition)
            return
        await self._publish(result)
        self._stats.skipped += 1

    async def _finish(self, intent: ExecutionIntent, result: ExecutionResult) -> None:
        await self._claims.finish(intent.intent_id, self._owner, result)
        await self._publish(result)

    async def _publish(self, result: ExecutionResult) -> None:
        ack = await self._publisher.result(result)
        closes = result.action in CLOSING_ACTIONS
        self._follower.noted(result.position_id, results_seq=ack.seq, closes=closes)

    # waiting ----------------------------------------------------------------------------
    async def _read_position(self, intent: ExecutionIntent) -> Position | None:
        follower = self._follower

        async def read() -> Position | None:
            results_seq, fills_seq = follower.read_floor(intent.position_id)
            return await self._positions.get(
                intent.position_id, min_results_seq=results_seq, min_fills_seq=fills_seq
            )

        return await self._waiting(intent, "ledger", read)

    async def _waiting(
        self, intent: ExecutionIntent, what: str, call: Callable[[], Awaitable[T]]
    ) -> T:
        """Retry ``call`` with backoff until it answers; raise :class:`_Expired` at the deadline."""
        delay = self._settings.retry_s
        alive = self._alive.get(intent.intent_id, lambda: True)
        while True:
            if not alive():
                raise Abandoned(f"gave up waiting for {what}: the partition was handed over")
            try:
                return await call()
            except (LedgerUnavailable, LedgerError, OSError, TimeoutError) as exc:
                if intent.is_expired():
                    raise _Expired(f"{what} did not answer before the deadline: {exc}") from exc
                log.warning("waiting for %s for intent %s: %s", what, intent.intent_id, exc)
                self._stats.waits += 1
            except Exception as exc:
                if intent.is_expired():
                    raise _Expired(f"{what} failed until the deadline: {exc!r}") from exc
                log.exception("%s failed for intent %s; retrying", what, intent.intent_id)
                self._stats.waits += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._settings.retry_max_s)


def _now() -> datetime:
    return datetime.now(UTC)


__all__ = ["IntentIntake", "client_order_id"]
