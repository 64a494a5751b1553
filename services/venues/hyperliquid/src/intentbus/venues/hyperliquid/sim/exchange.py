"""``/exchange`` of the local venue: verified actions applied to the engine, venue answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from intentbus.venues.hyperliquid import constants as c
from intentbus.venues.hyperliquid.sim.auth import Refused, Signers
from intentbus.venues.hyperliquid.sim.matching import Engine, now_ms

SCHEDULE_CANCEL_MIN_MS = 5_000


def ok(kind: str, data: Any = None) -> dict[str, Any]:
    """Return a successful answer."""
    response: dict[str, Any] = {"type": kind}
    if data is not None:
        response["data"] = data
    return {"status": "ok", "response": response}


def err(message: str) -> dict[str, Any]:
    """Return a whole-action error (HTTP 200)."""
    return {"status": "err", "response": message}


@dataclass
class Exchange:
    """Apply signed actions: orders, cancels, leverage, scheduled cancels, API wallets."""

    engine: Engine
    signers: Signers
    scheduled: dict[str, int] = field(default_factory=dict)  # account -> cancel-all time

    def handle(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Verify and apply one ``/exchange`` payload; return the venue's answer."""
        self.run_scheduled()
        action = payload.get("action") or {}
        try:
            signer, account = self.signers.acting_account(payload, now_ms())
            kind = action.get("type")
            if kind == "order":
                return self._order(account, action)
            if kind in ("cancel", "cancelByCloid"):
                return self._cancel(account, action)
            if kind == "updateLeverage":
                return self._leverage(account, action)
            if kind == "scheduleCancel":
                return self._schedule(account, action)
            if kind == "approveAgent":
                if signer not in self.signers.users:
                    raise Refused(c.ERR_UNKNOWN_SIGNER.format(address=signer))
                self.signers.add_agent(action["agentAddress"], signer)
                return ok("default")
            raise Refused(f"Unknown action type {kind}")
        except Refused as refused:
            return err(str(refused))

    def _order(self, account: str, action: dict[str, Any]) -> dict[str, Any]:
        statuses = [self.engine.place(account, order) for order in action["orders"]]
        return ok("order", {"statuses": statuses})

    def _cancel(self, account: str, action: dict[str, Any]) -> dict[str, Any]:
        statuses: list[Any] = []
        for cancel in action["cancels"]:
            if action["type"] == "cancel":
                asset, done = cancel["a"], self.engine.cancel(account, oid=int(cancel["o"]))
            else:
                cloid = str(cancel["cloid"]).lower()
                asset, done = cancel["asset"], self.engine.cancel(account, cloid=cloid)
            statuses.append(
                "success" if done else {"error": f"{c.ERR_CANCEL_MISSING} asset={asset}"}
            )
        return ok("cancel", {"statuses": statuses})

    def _leverage(self, account: str, action: dict[str, Any]) -> dict[str, Any]:
        asset = self.engine.assets[int(action["asset"])]
        leverage, is_cross = action["leverage"], bool(action["isCross"])
        if not isinstance(leverage, int) or not 1 <= leverage <= asset.max_leverage:
            raise Refused(c.ERR_LEVERAGE)
        if is_cross and asset.only_isolated:
            raise Refused(c.ERR_ONLY_ISOLATED)
        acct = self.engine.account(account)
        current_cross, _ = self.engine.leverage(acct, asset)
        if current_cross != is_cross and acct.position(asset.name).szi:
            raise Refused(c.ERR_SWITCH_MARGIN)
        acct.leverage[asset.name] = (is_cross, leverage)
        return ok("default")

    def _schedule(self, account: str, action: dict[str, Any]) -> dict[str, Any]:
        when = action.get("time")
        if when is None:
            self.scheduled.pop(account, None)
        elif int(when) < now_ms() + SCHEDULE_CANCEL_MIN_MS:
            raise Refused("Scheduled cancel time too early, must be at least 5 seconds from now.")
        else:
            self.scheduled[account] = int(when)
        return ok("default")

    def run_scheduled(self) -> None:
        """Cancel every resting order of accounts whose scheduled cancel came due."""
        now = now_ms()
        for account, when in list(self.scheduled.items()):
            if when <= now:
                del self.scheduled[account]
                self.engine.cancel_all(account)
