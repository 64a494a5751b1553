"""Wait for an event with a timeout, without a task per wait."""

from __future__ import annotations

import asyncio


async def event_set(event: asyncio.Event, timeout_s: float) -> bool:
    """Wait until ``event`` is set or ``timeout_s`` passed; return whether it is set.

    ``asyncio.wait_for(event.wait(), ...)`` wraps the wait in a task; a timeout scope
    around the wait itself costs a timer only.
    """
    if event.is_set():
        return True
    if timeout_s <= 0:
        return False
    try:
        async with asyncio.timeout(timeout_s):
            await event.wait()
    except TimeoutError:
        return event.is_set()
    return True
