"""The shared executor contract (venue level and lifecycle), run against the local venue."""

from __future__ import annotations

from intentbus.testing.executor_contract import ExecutorContractSuite
from intentbus.testing.lifecycle_contract import LifecycleContractSuite


class TestHyperliquidContract(ExecutorContractSuite):
    """Hyperliquid passes the contract every venue passes."""


class TestHyperliquidLifecycle(LifecycleContractSuite):
    """Orders that live through the runtime, on the local Hyperliquid venue."""
