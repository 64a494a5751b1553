"""The venue's request weight budget (1200 per minute per IP), kept before the venue does.

``/exchange`` weighs ``1 + floor(orders / 40)``; ``/info`` 2 for the light queries and
20 for the rest. One budget per process and base URL (the limit is per IP), shared by
every executor and thread: a call waits for its weight instead of earning a 429.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

WEIGHT_PER_MINUTE = 1200
LIGHT_INFO = frozenset(
    {"l2Book", "allMids", "clearinghouseState", "orderStatus", "spotClearinghouseState"}
)


def info_weight(query: dict[str, Any]) -> int:
    """Return the weight of one ``/info`` query."""
    return 2 if query.get("type") in LIGHT_INFO else 20


def exchange_weight(action: dict[str, Any]) -> int:
    """Return the weight of one ``/exchange`` action."""
    batch = len(action.get("orders") or action.get("cancels") or ())
    return 1 + batch // 40


class WeightBudget:
    """A token bucket refilled at ``per_minute / 60`` per second, holding ``per_minute``."""

    def __init__(
        self,
        per_minute: float = WEIGHT_PER_MINUTE,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = per_minute
        self._at = clock()
        self.waited_s = 0.0

    def take(self, weight: float) -> None:
        """Wait until ``weight`` is available, then spend it (blocking: call from a thread)."""
        while True:
            with self._lock:
                now = self._clock()
                rate = self.per_minute / 60.0
                self._tokens = min(self.per_minute, self._tokens + (now - self._at) * rate)
                self._at = now
                if self._tokens >= weight:
                    self._tokens -= weight
                    return
                wait_s = (weight - self._tokens) / rate
            self.waited_s += wait_s
            self._sleep(wait_s)


_BUDGETS: dict[str, WeightBudget] = {}
_BUDGETS_LOCK = threading.Lock()


def budget_for(base_url: str, per_minute: float = WEIGHT_PER_MINUTE) -> WeightBudget:
    """Return the process-wide budget of ``base_url``."""
    with _BUDGETS_LOCK:
        return _BUDGETS.setdefault(base_url, WeightBudget(per_minute))
