"""Open-loop pacing: message ``i`` of a run is due at ``start + i / rate``.

The schedule is absolute, so a late send never shifts the ones after it: a stalled
publisher catches up with a burst instead of quietly lowering the offered load.
"""

from __future__ import annotations

import asyncio
import time


def due_at(start: float, index: int, rate: float) -> float:
    """Return the monotonic time message ``index`` is due (``rate`` <= 0: now, unpaced)."""
    if rate <= 0:
        return start
    return start + index / rate


async def wait_turn(start: float, index: int, rate: float) -> None:
    """Sleep until message ``index`` is due; return at once when it is already late."""
    delay = due_at(start, index, rate) - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)
