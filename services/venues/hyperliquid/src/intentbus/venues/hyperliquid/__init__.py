"""The Hyperliquid venue: an executor on the official SDK, and a local Hyperliquid venue."""

from intentbus.venues.hyperliquid.config import HyperliquidConfig
from intentbus.venues.hyperliquid.executor import HyperliquidExecutor
from intentbus.venues.hyperliquid.factory import create_executor

__all__ = ["HyperliquidConfig", "HyperliquidExecutor", "create_executor"]
