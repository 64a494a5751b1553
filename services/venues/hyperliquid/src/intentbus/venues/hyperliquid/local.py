"""A local venue with funded accounts and API wallets, and executors configured for it.

Used by the tests and the demo: :class:`LocalVenue` starts a :class:`~.sim.server.
HyperliquidSim` on 127.0.0.1 (a free port), funds a master account, approves an API
wallet for it (its key written to a file only this process reads) and builds executors
that trade the master through the API wallet, as in production.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import eth_account

from intentbus.venues.hyperliquid.config import HyperliquidConfig
from intentbus.venues.hyperliquid.executor import HyperliquidExecutor
from intentbus.venues.hyperliquid.sim.matching import EngineSettings
from intentbus.venues.hyperliquid.sim.server import HyperliquidSim


@dataclass
class LocalVenue:
    """A started local venue, one funded master account and its API wallet."""

    sim: HyperliquidSim
    master: str
    agent_key_file: Path
    executors: list[HyperliquidExecutor] = field(default_factory=list)
    _tmp: Any = None

    @classmethod
    async def start(
        cls,
        *,
        mids: dict[str, float] | None = None,
        depths: dict[str, float] | None = None,
        usdc: float = 1_000_000.0,
        settings: EngineSettings | None = None,
    ) -> LocalVenue:
        """Start the venue and fund a master account with an approved API wallet."""
        sim = HyperliquidSim(mids=mids or {"BTC": 65_000.0, "ETH": 3_200.0}, settings=settings)
        sim.engine.depths.update(depths or {})
        await sim.start()
        master = eth_account.Account.create()
        agent = eth_account.Account.create()
        sim.fund(master.address, usdc)
        sim.approve_agent(master.address, agent.address)
        tmp = tempfile.TemporaryDirectory(prefix="intentbus-hl-")
        key_file = Path(tmp.name) / "agent.key"
        key_file.write_text(agent.key.hex(), encoding="utf-8")
        key_file.chmod(0o600)
        return cls(sim, str(master.address).lower(), key_file, _tmp=tmp)

    def config(self, **options: Any) -> HyperliquidConfig:
        """Return an executor config for this venue (keywords override)."""
        values: dict[str, Any] = {
            "base_url": self.sim.url,
            "account": self.master,
            "key_file": str(self.agent_key_file),
            "order_window_s": 2.0,
            "timeout_s": 5.0,
            **options,
        }
        return HyperliquidConfig(**values)

    def executor(self, **options: Any) -> HyperliquidExecutor:
        """Return a new (unstarted) executor trading the master through the API wallet."""
        executor = HyperliquidExecutor(self.config(**options))
        self.executors.append(executor)
        return executor

    def set_mid(self, coin: str, mid: float) -> None:
        """Move the venue's mid."""
        self.sim.set_mid(coin, mid)

    def marks_seen(self, coin: str, mid: float) -> bool:
        """Say whether every started executor's mark of ``coin`` is ``mid``."""
        live = [ex for ex in self.executors if ex.started]
        return all(math.isclose(ex.mark(coin) or 0.0, mid, rel_tol=1e-8) for ex in live)

    async def stop(self) -> None:
        """Stop every executor made here and the venue."""
        for executor in self.executors:
            await executor.stop()
        await self.sim.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
