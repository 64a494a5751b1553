"""The Hyperliquid venue: an executor on the official SDK, and a local Hyperliquid venue."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from intentbus.venues.hyperliquid.config import HyperliquidConfig

if TYPE_CHECKING:
    from intentbus.venues.hyperliquid.executor import HyperliquidExecutor
    from intentbus.venues.hyperliquid.factory import create_executor

__all__ = ["HyperliquidConfig", "HyperliquidExecutor", "create_executor"]


def __getattr__(name: str) -> Any:
    # The executor brings the SDK (eth_account, aiohttp): import it when asked for, so
    # loading this package's commands or config does not.
    if name == "HyperliquidExecutor":
        from intentbus.venues.hyperliquid.executor import HyperliquidExecutor

        return HyperliquidExecutor
    if name == "create_executor":
        from intentbus.venues.hyperliquid.factory import create_executor

        return create_executor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
