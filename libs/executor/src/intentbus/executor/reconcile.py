"""Reconciliation: compare the venue's books with the ledger, publish any drift.

At start (once the replica's first partitions are acquired) and after every
:class:`~intentbus.executor.base.VenueGap` (a reconnect), the replica compares, for
every book of its venue that the ledger knows (mapped to its account with
``account_for``) and every symbol of those books, the account's net at the venue with
the ledger's open positions (signed: long > 0, short < 0). A difference beyond the
tolerance is published as a :class:`~intentbus.schemas.Drift` on ``drift.<venue>.<book>``;
when a later reconciliation finds the pair equal again after a drift, a ``resolved``
drift clears it.

The ledger lags fills, so a pair is compared only while nothing moves it: no followed
working order in the account and symbol, no intent of its position being handled, and
the same read-your-writes floor before and after the reads (the ledger is read with
that floor, so every fill this replica published is in the view). Followed working
orders are asked about by client order id instead; one the venue does not know is an
open-order difference. Reconciliations run one at a time, at most one per
``reconcile_debounce_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from intentbus.bus import LedgerUnavailable, PositionClient, Publisher, Topology
from intentbus.executor.base import BaseExecutor, OrderNotFound
from intentbus.executor.follower import OrderFollower
from intentbus.executor.settings import RuntimeSettings, RuntimeStats
from intentbus.schemas import Direction, Drift, OrderDrift, Position, decoder, derived_id
from intentbus.schemas.drift import DriftReason

log = logging.getLogger(__name__)
_decode_drift = decoder(Drift).decode


def signed(position: Position) -> float:
    """Return the position's signed size (long > 0, short < 0; a closed one holds 0)."""
    if position.closed:
        return 0.0
    return position.size if position.direction is Direction.LONG else -position.size


@dataclass
class _Pair:
    """One book and symbol of the ledger: its positions (the open one named)."""

    book: str
    symbol: str
    positions: list[Position] = field(default_factory=list)

    @property
    def open_position(self) -> Position | None:
        return next((p for p in self.positions if not p.closed), None)


class Reconciler:
    """Compare the venue with the ledger per account and symbol; see the module docstring."""

    def __init__(
        self,
        executor: BaseExecutor,
        js: JetStreamContext,
        topology: Topology,
        positions: PositionClient,
        follower: OrderFollower,
        *,
        venue: str,
        book: str | None,
        busy: Callable[[str], bool],
        settings: RuntimeSettings,
        stats: RuntimeStats,
    ) -> None:
        self._executor = executor
        self._js = js
        self._topology = topology
        self._publisher = Publisher(js, topology)
        self._positions = positions
        self._follower = follower
        self._venue = venue
        self._book = book
        self._busy = busy
        self._settings = settings
        self._stats = stats
        self._task: asyncio.Task[None] | None = None
        self._again: DriftReason | None = None
        self._last = float("-inf")

    def request(self, reason: DriftReason) -> None:
        """Reconcile soon: now, or once the debounce since the last one has passed."""
        if self._task is not None and not self._task.done():
            self._again = self._again or reason
            return
        self._task = asyncio.create_task(self._run(reason))

    async def stop(self) -> None:
        """Cancel a reconciliation under way or pending."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, reason: DriftReason) -> None:
        while True:
            wait_s = self._last + self._settings.reconcile_debounce_s - time.monotonic()
            if wait_s > 0:
                await asyncio.sleep(wait_s)  # the debounce, not a synchronisation
            self._last = time.monotonic()
            try:
                await self.reconcile(reason)
            except LedgerUnavailable as exc:
                # Started before the ledger, or it restarts: try again after the debounce.
                log.warning("reconciliation (%s) waits for the ledger: %s", reason, exc)
                self._stats.reconcile_waits += 1
                self._again = self._again or reason
            except Exception:
                log.exception("reconciliation (%s) failed; the next gap or start retries", reason)
            if self._again is None:
                return
            reason, self._again = self._again, None

    async def reconcile(self, reason: DriftReason) -> list[Drift]:
        """Compare every pair once; publish and return the drifts (and resolutions) found."""
        reply = await self._positions.list(venue=self._venue, book_id=self._book)
        pairs: dict[tuple[str, str], _Pair] = {}
        for position in reply.positions:
            key = (position.book_id, position.token_contract)
            pairs.setdefault(key, _Pair(*key)).positions.append(position)
        published = []
        for pair in pairs.values():
            drift = await self._compare(pair, reason)
            if drift is not None:
                await self._publisher.drift(drift)
                if not drift.resolved:
                    self._stats.drifts += 1
                published.append(drift)
        self._stats.reconciliations += 1  # done
        return published

    async def _compare(self, pair: _Pair, reason: DriftReason) -> Drift | None:
        account = self._executor.account_for(pair.book)
        position = pair.open_position
        pid = position.position_id if position is not None else None
        followed = self._follower.open_orders(account, pair.symbol)
        floor = self._follower.read_floor(pid) if pid is not None else (0, 0)
        if pid is not None and self._busy(pid):
            return None  # an intent of the position is moving it now
        orders: list[OrderDrift] = []
        for tracked in followed:
            cloid = tracked.working.plan.client_order_id
            try:
                await self._executor.order_status(account, pair.symbol, cloid)
            except OrderNotFound:
                expected = tracked.order.open_size if tracked.order else tracked.working.plan.size
                orders.append(OrderDrift(client_order_id=cloid, expected_open=expected,
                                         venue_open=0.0, venue_state="unknown"))  # fmt: skip
        ledger = 0.0
        for known in pair.positions:
            if not known.closed:  # a closed position holds nothing
                results_seq, fills_seq = self._follower.read_floor(known.position_id)
                fresh = await self._positions.get(
                    known.position_id, min_results_seq=results_seq, min_fills_seq=fills_seq
                )
                ledger += signed(fresh) if fresh is not None else 0.0
        net = await self._executor.net_position(account, pair.symbol)
        moved = (
            (pid is not None and (self._busy(pid) or self._follower.read_floor(pid) != floor))
            or self._follower.open_orders(account, pair.symbol)
            or followed
        )
        size_drift = not moved and abs(net - ledger) > self._tolerance(pair.symbol, net, ledger)
        subject = self._topology.drift_subject(self._venue, pair.book, pair.symbol)
        now = datetime.now(UTC)
        if size_drift or orders:
            resolved = False
        elif not moved and await self._unresolved(subject):
            resolved = True
        else:
            return None
        return Drift(
            drift_id=derived_id("drift", self._venue, pair.book, subject, now.isoformat()),
            venue=self._venue,
            book_id=pair.book,
            account=account,
            symbol=pair.symbol,
            position_id=pid,
            ledger_size=ledger,
            venue_size=net,
            difference=net - ledger,
            open_orders=tuple(orders),
            detected_at=now,
            reason=reason,
            resolved=resolved,
        )

    def _tolerance(self, symbol: str, *sizes: float) -> float:
        rules = self._executor.rules(symbol)
        lot = rules.lot_size if rules is not None else 0.0
        return max(self._settings.drift_tolerance, lot / 2, 1e-9 * max(map(abs, sizes)))

    async def _unresolved(self, subject: str) -> bool:
        """Say whether the last drift published for this pair is not resolved."""
        try:
            raw = await self._js.get_last_msg(self._topology.drift_stream, subject)
        except NotFoundError:
            return False
        return raw.data is not None and not _decode_drift(raw.data).resolved
