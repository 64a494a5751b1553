"""A local Hyperliquid venue over real HTTP and WebSocket (see :mod:`.server`)."""

from intentbus.venues.hyperliquid.sim.server import Faults, HyperliquidSim

__all__ = ["Faults", "HyperliquidSim"]
