"""The ``intentbus.venues`` entry point of the Hyperliquid venue."""

from __future__ import annotations

from intentbus.venues.hyperliquid.config import HyperliquidConfig
from intentbus.venues.hyperliquid.executor import HyperliquidExecutor


def create_executor(options: dict[str, str]) -> HyperliquidExecutor:
    """Build a HyperliquidExecutor from venue options (no I/O); bad options raise ValueError."""
    return HyperliquidExecutor(HyperliquidConfig.from_options(options))
