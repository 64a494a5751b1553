"""The request weight budget: calls wait for their weight instead of earning a 429."""

from __future__ import annotations

from intentbus.venues.hyperliquid.limits import WeightBudget, exchange_weight, info_weight


class Clock:
    """A clock the budget's waits advance (the budget sleeps on it)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_weights_as_the_venue_counts_them() -> None:
    assert info_weight({"type": "orderStatus"}) == 2
    assert info_weight({"type": "userFillsByTime"}) == 20
    assert exchange_weight({"type": "order", "orders": [{}] * 39}) == 1
    assert exchange_weight({"type": "order", "orders": [{}] * 40}) == 2
    assert exchange_weight({"type": "updateLeverage"}) == 1


def test_the_budget_waits_for_its_refill() -> None:
    clock = Clock()
    budget = WeightBudget(1200, clock=clock, sleep=clock.sleep)
    for _ in range(60):
        budget.take(20)  # a full minute's weight at once
    assert clock.now == 0.0
    budget.take(20)  # 20 more: one second of refill (20 a second)
    assert abs(clock.now - 1.0) < 1e-9
    assert abs(budget.waited_s - 1.0) < 1e-9
