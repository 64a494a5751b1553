"""Placing a claimed order and handing it to the follower; settling a claim found again.

The intake (:mod:`~intentbus.executor.intake`) decides and claims; this module sends
the claimed order exactly once. An outcome it cannot learn is asked about by client
order id, never re-guessed; a claimed order that must not go out any more is fenced at
the venue before it is skipped.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from intentbus import telemetry
from intentbus.bus import Publisher, waits
from intentbus.executor import results
from intentbus.executor.base import BaseExecutor, OrderNotFound, VenueOrder
from intentbus.executor.claims import Claim, ClaimState, ClaimStore
from intentbus.executor.follower import OrderFollower
from intentbus.executor.guards import Guard
from intentbus.executor.lanes import Abandoned, Expired, Lanes
from intentbus.executor.orders import WorkingOrder, WorkingOrderStore
from intentbus.executor.settings import RuntimeSettings, RuntimeStats
from intentbus.schemas import (
    CLOSING_ACTIONS,
    ExecutionIntent,
    ExecutionPlan,
    ExecutionResult,
    Skip,
    SkipReason,
)

log = logging.getLogger(__name__)


class OrderPlacement:
    """Place claimed orders, settle claims found again and publish final results."""

    def __init__(
        self,
        executor: BaseExecutor,
        publisher: Publisher,
        claims: ClaimStore,
        orders: WorkingOrderStore,
        follower: OrderFollower,
        *,
        lanes: Lanes,
        guard: Guard,
        owner: str,
        settings: RuntimeSettings,
        stats: RuntimeStats,
    ) -> None:
        self._executor = executor
        self._publisher = publisher
        self._claims = claims
        self._orders = orders
        self._follower = follower
        self._lanes = lanes
        self._guard = guard
        self._owner = owner
        self._settings = settings
        self._stats = stats

    @telemetry.traced("executor place")
    async def place(self, intent: ExecutionIntent, plan: ExecutionPlan, partition: int) -> None:
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
                    await self.fence_and_skip(intent, plan, partition)
                    return
                if not self._lanes.alive(intent.intent_id):
                    raise Abandoned("the partition was handed over while placing") from exc
                self._stats.waits += 1
                await asyncio.sleep(self._settings.retry_s)
        self._stats.placed += 1
        await self.hand_over(intent, plan, partition, order, placed_at)

    async def hand_over(
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
            intent_seq=self._lanes.seq(intent.intent_id),
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

    async def settle(self, intent: ExecutionIntent, claim: Claim, partition: int) -> None:
        if claim.state is ClaimState.DONE and claim.result is not None:
            await self.publish(claim.result)
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
            await self.hand_over(intent, plan, partition, found, claim.claimed_at or _now())
        elif intent.is_expired():
            await self.fence_and_skip(intent, plan, partition)
        elif (stopped := self._guard.halted(intent)) is not None:
            await self.fence_and_skip(intent, plan, partition, stopped)
        else:
            await self.place(intent, plan, partition)

    async def _status(self, intent: ExecutionIntent, plan: ExecutionPlan) -> VenueOrder | None:
        """Ask the venue for the order by client order id; None: it was never placed."""
        venue = self._executor

        async def ask() -> VenueOrder | None:
            try:
                return await venue.order_status(plan.account, plan.symbol, plan.client_order_id)
            except OrderNotFound:
                return None

        try:
            return await self._lanes.waiting(intent, "order status", ask)
        except Expired:
            result = results.unknown(intent, plan, "the venue could not say whether it exists")
            await self.finish(intent, result)
            raise

    async def fence_and_skip(
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
            await self.finish(intent, results.unknown(intent, plan, error))
            return
        if order is not None:  # a stalled claimant placed it after all: follow it
            await self.hand_over(intent, plan, partition, order, _now())
            return
        skip = skip or Skip(reason=SkipReason.EXPIRED.value, detail="claimed, never placed")
        await self.finish(intent, results.skipped(intent, self._executor.venue, skip))

    async def finish(self, intent: ExecutionIntent, result: ExecutionResult) -> None:
        await self._claims.finish(intent.intent_id, self._owner, result)
        await self.publish(result)

    async def publish(self, result: ExecutionResult) -> None:
        ack = await self._publisher.result(result)
        closes = result.action in CLOSING_ACTIONS
        self._follower.noted(result.position_id, results_seq=ack.seq, closes=closes)


def _now() -> datetime:
    return datetime.now(UTC)
