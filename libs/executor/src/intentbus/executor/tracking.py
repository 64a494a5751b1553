"""What the order follower keeps: its followed orders, early events and read floors.

:class:`FollowedOrders` is the follower's state and the questions the intake, the
runtime and reconciliation ask of it; it does no I/O. The follower
(:mod:`~intentbus.executor.follower`) acts on venue events with it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from intentbus.executor import results
from intentbus.executor.base import VenueFill, VenueOrder
from intentbus.executor.orders import WorkingOrder


@dataclass(eq=False)
class Tracked:
    """One followed order: the latest venue state and the fills already published."""

    working: WorkingOrder
    order: VenueOrder | None = None
    fills: dict[str, float] = field(default_factory=dict)  # venue fill id -> size
    totals: results.FillTotals = field(default_factory=results.FillTotals)
    last_fill_seq: int = 0
    heard_at: float = field(default_factory=time.monotonic)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    expiry: asyncio.Task[None] | None = None
    late_fetch: asyncio.TimerHandle | None = None
    recorded: bool = True  # its working record is in EXEC_ORDERS

    @property
    def filled_seen(self) -> float:
        """Return the size of the fills published so far."""
        return sum(self.fills.values())

    def stop_timers(self) -> None:
        """Cancel its deadline watch and its late fill fetch."""
        for timer in (self.expiry, self.late_fetch):
            if timer is not None and timer is not asyncio.current_task():
                timer.cancel()


def newer(current: VenueOrder | None, update: VenueOrder) -> VenueOrder:
    """Keep the most advanced state: final beats live, more filled beats less."""
    if current is None:
        return update
    if current.state.is_final and not update.state.is_final:
        return current
    if update.filled_size + results.SIZE_EPSILON < current.filled_size:
        return current
    return update


class FollowedOrders:
    """Keep the followed orders by client order id, early events and read floors."""

    def __init__(self, orphan_ttl_s: float) -> None:
        self._by_cloid: dict[str, Tracked] = {}
        self._orphans: dict[str, list[tuple[float, VenueOrder | VenueFill]]] = {}
        self._orphan_ttl_s = orphan_ttl_s
        # Read-your-writes, per position: the RESULTS and FILLS sequences of the last
        # messages this replica published for it, over a floor that covers what other
        # replicas published before this one took the position's partition over.
        self._seqs: dict[str, tuple[int, int]] = {}
        self._floor = (0, 0)

    # read-your-writes ---------------------------------------------------------------
    def raise_floor(self, results_seq: int, fills_seq: int) -> None:
        """Make every later ledger read include the streams up to these sequences."""
        self._floor = (max(self._floor[0], results_seq), max(self._floor[1], fills_seq))

    def noted(
        self, position_id: str, *, results_seq: int = 0, fills_seq: int = 0, closes: bool = False
    ) -> None:
        """Remember a message published for a position (its stream sequence).

        A position's size moves only with fills; of the results, only the final result
        of an EXIT changes what sizing reads (the position closes), so only those raise
        the position's RESULTS floor (``closes``).
        """
        r, f = self._seqs.get(position_id, (0, 0))
        self._seqs[position_id] = (max(r, results_seq if closes else 0), max(f, fills_seq))

    def read_floor(self, position_id: str) -> tuple[int, int]:
        """Return the (RESULTS, FILLS) sequences a read of the position must include."""
        r, f = self._seqs.get(position_id, (0, 0))
        return max(r, self._floor[0]), max(f, self._floor[1])

    # the followed orders ------------------------------------------------------------
    def working(self, position_id: str, before_seq: int | None = None) -> list[Tracked]:
        """Return the position's unfinished orders (of intents before ``before_seq``)."""
        return [
            t
            for t in self._by_cloid.values()
            if t.working.intent.position_id == position_id
            and not t.done.is_set()
            and (before_seq is None or t.working.intent_seq < before_seq)
        ]

    def open_orders(self, account: str, symbol: str) -> list[Tracked]:
        """Return the unfinished followed orders of an account in a symbol."""
        return [
            t
            for t in self._by_cloid.values()
            if t.working.plan.account == account
            and t.working.plan.symbol == symbol
            and not t.done.is_set()
        ]

    def tracked(self, client_order_id: str) -> Tracked | None:
        """Return the followed order with this client order id."""
        return self._by_cloid.get(client_order_id)

    def forget(self, partition: int) -> None:
        """Stop following a partition's orders (another replica takes them over)."""
        for cloid, tracked in list(self._by_cloid.items()):
            if tracked.working.partition == partition:
                tracked.stop_timers()
                del self._by_cloid[cloid]

    def _track(self, working: WorkingOrder, *, recorded: bool) -> Tracked:
        """Return the followed order of ``working``, followed from now on."""
        cloid = working.plan.client_order_id
        tracked = self._by_cloid.get(cloid)
        if tracked is not None:
            tracked.recorded = tracked.recorded or recorded
        else:
            tracked = Tracked(working=working, recorded=recorded)
            self._by_cloid[cloid] = tracked
        return tracked

    def _untrack(self, tracked: Tracked) -> None:
        self._by_cloid.pop(tracked.working.plan.client_order_id, None)

    # events of orders not followed yet ------------------------------------------------
    def _keep_orphan(self, event: VenueOrder | VenueFill) -> None:
        # An order's first events can arrive before place() returned to the intake; the
        # events of other replicas' orders arrive here too. Forget the oldest first (in
        # insertion order, stopping at the first still fresh): constant time per event.
        now = time.monotonic()
        horizon = now - self._orphan_ttl_s
        while self._orphans:
            oldest = next(iter(self._orphans))
            if self._orphans[oldest][-1][0] >= horizon:
                break
            del self._orphans[oldest]
        self._orphans.setdefault(event.client_order_id, []).append((now, event))

    def _take_orphans(self, client_order_id: str) -> list[VenueOrder | VenueFill]:
        """Return (and forget) the events kept for an order now followed, oldest first."""
        return [event for _, event in self._orphans.pop(client_order_id, [])]
