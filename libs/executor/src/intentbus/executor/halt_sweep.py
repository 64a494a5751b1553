"""Cancel the followed orders a halt switch forbids, when a switch changes.

The halt watch calls :meth:`HaltSweep.switch_changed` for every switch it sees set
(the switches are known before any intent is taken); each call cancels, in the
background, every unfinished followed order whose action the switches now stop. The
cancels' outcomes are followed like any other: fills and final results go out as the
venue reports them.
"""

from __future__ import annotations

import asyncio

from intentbus.bus.control import HaltView
from intentbus.executor.follower import OrderFollower
from intentbus.executor.orders import WorkingOrder
from intentbus.executor.settings import RuntimeStats
from intentbus.schemas import HaltSwitch
from intentbus.telemetry import instruments


class HaltSweep:
    """Cancel what the halt switches forbid; count the orders cancelled so."""

    def __init__(self, venue: str, stats: RuntimeStats) -> None:
        self._venue = venue
        self._stats = stats
        self._halt: HaltView | None = None
        self._follower: OrderFollower | None = None
        self._sweeps: set[asyncio.Task[int]] = set()
        self._cancelled: set[str] = set()  # client order ids

    def bind(self, halt: HaltView, follower: OrderFollower) -> None:
        """Sweep through these switches and this follower from now on."""
        self._halt, self._follower = halt, follower

    def switch_changed(self, switch: HaltSwitch) -> None:
        """Publish the switch's state as a metric and sweep (the halt watch's callback)."""
        instruments.halt_state().set(
            instruments.HALT_LEVELS[switch.mode.value], {"scope": switch.scope}
        )
        self.sweep(f"halt switch {switch.scope} set to {switch.mode.value}: {switch.reason}")

    def sweep(self, why: str) -> None:
        """Cancel, in the background, every followed order a halt switch forbids now."""
        halt, follower = self._halt, self._follower
        if halt is None or follower is None:
            return
        venue = self._venue

        def forbidden(working: WorkingOrder) -> bool:
            intent = working.intent
            if halt.stopping(venue, intent.book_id, intent.action) is None:
                return False
            self._cancelled.add(working.plan.client_order_id)
            self._stats.halt_cancels = len(self._cancelled)  # orders, not cancel requests
            return True

        async def sweep() -> int:
            return await follower.cancel_matching(forbidden, why)

        task = asyncio.create_task(sweep())
        self._sweeps.add(task)
        task.add_done_callback(self._sweeps.discard)
