"""The order follower: venue events in, ``Fill`` messages and final results out.

One per executor replica. It follows the orders this replica placed or adopted (a
partition taken over, a restart): every venue fill becomes a ``Fill`` message (its id
derived from the venue fill id, so a fill seen twice is stored once); when an order is
final and every fill the venue counts is published, the intent's ``ExecutionResult``
goes out, its claim is marked done and the working record is deleted. An order still
live at its intent's ``valid_until`` is cancelled. The venue's live feed may drop
events, so after a gap (and every ``poll_s`` for an order that has been quiet) the
follower asks the venue again: the order's status by client order id and the account's
fills since the order was placed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Concatenate, ParamSpec, TypeVar

from nats.js.api import PubAck

from intentbus import telemetry
from intentbus.bus import Publisher, waits
from intentbus.executor import results
from intentbus.executor.base import (
    BaseExecutor,
    OrderNotFound,
    VenueEvent,
    VenueFill,
    VenueGap,
    VenueOrder,
)
from intentbus.executor.claims import ClaimStore
from intentbus.executor.orders import WorkingOrder, WorkingOrderStore
from intentbus.executor.settings import RuntimeSettings, RuntimeStats
from intentbus.executor.tracking import FollowedOrders, Tracked, newer
from intentbus.schemas import CLOSING_ACTIONS, OrderState

log = logging.getLogger(__name__)
# Fills may carry a venue time slightly before our placement stamp (clock skew).
_FILLS_LOOKBACK = timedelta(seconds=5)
P = ParamSpec("P")
R = TypeVar("R")


def _in_order_trace(
    method: Callable[Concatenate[OrderFollower, Tracked, P], Awaitable[R]],
) -> Callable[Concatenate[OrderFollower, Tracked, P], Awaitable[R]]:
    """Run a method about one order in its intent's trace and log scope.

    Venue events and polls arrive outside the intent's handling: the working order's
    stored ``traceparent`` puts its venue calls, fills and final result back in place.
    """

    async def wrapper(self: OrderFollower, tracked: Tracked, /, *args: P.args, **kw: P.kwargs) -> R:
        w = tracked.working
        with telemetry.resumed(w.traceparent, w.intent.intent_id):
            return await method(self, tracked, *args, **kw)

    return wrapper


class OrderFollower(FollowedOrders):
    """Follow working orders to their end; see the module docstring.

    What it follows and the read floors are :class:`FollowedOrders`'s.
    """

    def __init__(
        self,
        executor: BaseExecutor,
        publisher: Publisher,
        claims: ClaimStore,
        store: WorkingOrderStore,
        *,
        owner: str,
        settings: RuntimeSettings,
        stats: RuntimeStats,
    ) -> None:
        super().__init__(settings.orphan_ttl_s)
        self._executor = executor
        self._publisher = publisher
        self._claims = claims
        self._store = store
        self._owner = owner
        self._settings = settings
        self._stats = stats
        self._background: set[asyncio.Task[None]] = set()
        self.on_gap: Callable[[], None] | None = None  # after a gap's resync (reconcile)

    # what the intake asks ---------------------------------------------------------
    async def follow(
        self, working: WorkingOrder, order: VenueOrder | None, *, recorded: bool = True
    ) -> Tracked:
        """Start following an order (placed now, or adopted: ``order`` None asks the venue)."""
        tracked = self._track(working, recorded=recorded)
        for kept in self._take_orphans(working.plan.client_order_id):
            await self._apply(tracked, kept)
        if order is not None:
            await self._apply(tracked, order)
        else:
            await self._resync(tracked)
        if not tracked.done.is_set() and tracked.expiry is None:  # it lives: watch its deadline
            tracked.expiry = asyncio.create_task(self._expire(tracked))
        return tracked

    async def cancel_position(self, position_id: str, deadline: datetime, before_seq: int) -> bool:
        """Cancel the working orders of the position's earlier intents (before ``before_seq``).

        Say whether all of them finished (fills and final results published) before
        ``deadline``.
        """
        pending = self.working(position_id, before_seq)
        for tracked in pending:
            await self._cancel(tracked, "superseded by a newer intent")
        for tracked in pending:
            remaining = (deadline - datetime.now(UTC)).total_seconds()
            if remaining <= 0:
                return all(t.done.is_set() for t in pending)
            await waits.event_set(tracked.done, remaining)
        return all(t.done.is_set() for t in pending)

    async def cancel_matching(self, predicate: Callable[[WorkingOrder], bool], why: str) -> int:
        """Cancel every unfinished followed order ``predicate`` picks; return how many.

        The cancel's outcome is followed like any other: fills and the final result are
        published as the venue reports them.
        """
        picked = [
            t for t in list(self._by_cloid.values()) if not t.done.is_set() and predicate(t.working)
        ]
        for tracked in picked:
            await self._cancel(tracked, why)
        return len(picked)

    # the venue's events -------------------------------------------------------------
    async def on_event(self, event: VenueEvent) -> None:
        """Take one live venue event (the executor's event sink)."""
        try:
            if isinstance(event, VenueGap):
                self._stats.gaps += 1
                if self.on_gap is not None:  # reconcile (in the background) after a reconnect
                    self.on_gap()
                await asyncio.gather(*(self._resync(t) for t in list(self._by_cloid.values())))
                return
            tracked = self._by_cloid.get(event.client_order_id)
            if tracked is None:
                self._keep_orphan(event)
                return
            await self._apply(tracked, event)
        except Exception:
            # The poll loop asks the venue again; nothing is lost by giving up here.
            log.exception("could not handle venue event %r", event)

    @_in_order_trace
    async def _apply(self, tracked: Tracked, event: VenueOrder | VenueFill) -> None:
        async with tracked.lock:
            tracked.heard_at = time.monotonic()
            if isinstance(event, VenueFill):
                await self._publish_fill(tracked, event)
            else:
                tracked.order = newer(tracked.order, event)
            await self._finish_if_final(tracked)

    async def _publish_fill(self, tracked: Tracked, fill: VenueFill) -> None:
        if fill.venue_fill_id in tracked.fills or tracked.done.is_set():
            return
        w = tracked.working
        # The order's state right after this fill, from the fills themselves.
        complete = tracked.filled_seen + fill.size >= w.plan.size - results.SIZE_EPSILON
        state = OrderState.FILLED if complete else OrderState.PARTIALLY_FILLED
        ack = await self._publisher.fill(results.fill_message(w.intent, w.plan, fill, state))
        tracked.fills[fill.venue_fill_id] = fill.size
        tracked.totals.add(fill.size, fill.price, fill.fee)
        tracked.last_fill_seq = max(tracked.last_fill_seq, ack.seq)
        self.noted(w.intent.position_id, fills_seq=ack.seq)
        self._stats.fills += 1

    async def _finish_if_final(self, tracked: Tracked, *, fetched: bool = False) -> None:
        order = tracked.order
        if tracked.done.is_set() or order is None or not order.state.is_final:
            return
        if tracked.filled_seen < order.filled_size - results.SIZE_EPSILON:
            if not fetched:  # the fills are most likely on the live feed right behind
                self._fetch_later(tracked)
            return  # else the venue does not show them yet: the poll loop asks again
        w = tracked.working
        result = results.final(
            w.intent,
            w.plan,
            order,
            fill_count=len(tracked.fills),
            last_fill_seq=tracked.last_fill_seq,
            fills=tracked.totals,
        )
        # Any order is safe: a done claim is republished, a missing record is re-found
        # through the claim; until the result and the record's delete succeeded the order
        # stays followed here. The done claim goes unconfirmed: lost, it leaves the claim
        # "claimed", which a redelivered intent settles by asking the venue.
        writes: list[Awaitable[object]] = [
            self._publisher.result(result),
            self._claims.finish(
                w.intent.intent_id,
                self._owner,
                result,
                claimed_at=w.placed_at,
                confirmed=False,
            ),
        ]
        if tracked.recorded:
            writes.append(self._store.delete(w))
        ack, *_ = await asyncio.gather(*writes)
        assert isinstance(ack, PubAck)
        closes = w.intent.action in CLOSING_ACTIONS
        self.noted(w.intent.position_id, results_seq=ack.seq, closes=closes)
        tracked.done.set()
        tracked.stop_timers()
        self._untrack(tracked)
        self._stats.finished += 1

    def _fetch_later(self, tracked: Tracked) -> None:
        """Ask the venue for the fills if the live feed has not brought them soon.

        A timer, not a task: the fills nearly always arrive first and it is cancelled.
        """
        if tracked.late_fetch is not None:
            return
        loop = asyncio.get_running_loop()
        tracked.late_fetch = loop.call_later(self._settings.fill_grace_s, self._fetch_now, tracked)

    def _fetch_now(self, tracked: Tracked) -> None:
        if tracked.done.is_set():
            return

        async def fetch() -> None:
            try:
                await self._resync(tracked)
            except Exception:
                log.exception("fills of %s not fetched; the poll retries", tracked.working.key)
            finally:
                tracked.late_fetch = None

        self._background.add(task := asyncio.create_task(fetch()))
        task.add_done_callback(self._background.discard)

    # asking the venue again ------------------------------------------------------------
    async def _fetch_fills(self, tracked: Tracked) -> None:
        w = tracked.working
        since = w.placed_at - _FILLS_LOOKBACK
        for fill in await self._executor.fills_since(w.plan.account, since):
            if fill.client_order_id == w.plan.client_order_id:
                await self._publish_fill(tracked, fill)

    @_in_order_trace
    async def _resync(self, tracked: Tracked) -> None:
        w = tracked.working
        try:
            order = await self._executor.order_status(
                w.plan.account, w.plan.symbol, w.plan.client_order_id
            )
        except OrderNotFound:
            log.error("venue does not know followed order %s", w.plan.client_order_id)
            return
        async with tracked.lock:
            tracked.heard_at = time.monotonic()
            await self._fetch_fills(tracked)
            tracked.order = newer(tracked.order, order)
            await self._finish_if_final(tracked, fetched=True)

    @_in_order_trace
    async def _cancel(self, tracked: Tracked, why: str) -> None:
        w = tracked.working
        try:
            order = await self._executor.cancel(
                w.plan.account, w.plan.symbol, w.plan.client_order_id
            )
        except OrderNotFound:
            return
        except Exception:
            log.exception("cancel of %s failed (%s); the poll retries", w.plan.client_order_id, why)
            return
        await self._apply(tracked, order)

    async def _expire(self, tracked: Tracked) -> None:
        """Cancel the order at its intent's deadline (retrying until it is finished)."""
        deadline = tracked.working.intent.valid_until
        while not tracked.done.is_set():
            wait_s = (deadline - datetime.now(UTC)).total_seconds()
            if wait_s > 0:
                await waits.event_set(tracked.done, wait_s)
                continue
            await self._cancel(tracked, "deadline passed")
            await waits.event_set(tracked.done, self._settings.poll_s)

    async def run(self, stop: asyncio.Event) -> None:
        """Ask the venue about quiet orders every ``poll_s`` until ``stop`` is set."""
        while not stop.is_set():
            await waits.event_set(stop, self._settings.poll_s)
            quiet = time.monotonic() - self._settings.poll_s
            for tracked in list(self._by_cloid.values()):
                if tracked.heard_at < quiet and not tracked.done.is_set():
                    try:
                        await self._resync(tracked)
                    except Exception:
                        log.exception("resync of %s failed", tracked.working.plan.client_order_id)
        for tracked in self._by_cloid.values():
            if tracked.expiry is not None:
                tracked.expiry.cancel()
