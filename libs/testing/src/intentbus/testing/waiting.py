"""Wait on a condition with a timeout instead of sleeping."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def wait_for(
    probe: Callable[[], Awaitable[T]],
    *,
    until: Callable[[T], bool] = bool,
    timeout_s: float = 10.0,
    interval_s: float = 0.02,
    what: str = "condition",
) -> T:
    """Poll ``probe`` until ``until(value)`` holds; raise ``AssertionError`` on timeout."""
    deadline = time.monotonic() + timeout_s
    value = await probe()
    while not until(value):
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout_s}s waiting for {what}; last: {value!r}"
            )
        await asyncio.sleep(interval_s)
        value = await probe()
    return value
