"""Who may act on the local venue: signature recovery, API wallets, vaults and nonces.

Signatures are recovered with the SDK's own functions (``hyperliquid.utils.signing``):
L1 actions through the EIP-712 phantom agent, user-signed actions (``approveAgent``)
through their typed payload; the venue answers an unknown signer (any bad signature
recovers some unknown address) with ``User or API Wallet 0x.. does not exist.``. An API
wallet acts for its master; a vault or sub-account is traded by its master (or the
master's API wallet) through ``vaultAddress``. Nonces are kept per signer: the 100
highest, a new one must be unused, above the smallest kept, and within (now - 2 days,
now + 1 day).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

from hyperliquid.utils.signing import (
    recover_agent_or_user_from_l1_action,
    recover_user_from_user_signed_action,
)
from intentbus.venues.hyperliquid import constants as c

NONCES_KEPT = 100
DAY_MS = 86_400_000
APPROVE_AGENT_TYPES = [
    {"name": "hyperliquidChain", "type": "string"},
    {"name": "agentAddress", "type": "address"},
    {"name": "agentName", "type": "string"},
    {"name": "nonce", "type": "uint64"},
]
USER_SIGNED = {"approveAgent": (APPROVE_AGENT_TYPES, "HyperliquidTransaction:ApproveAgent")}


class Refused(Exception):
    """A whole action the venue refuses (HTTP 200, ``{"status": "err"}``)."""


@dataclass
class Signers:
    """Known users, API wallets (agent -> master), vault owners and nonces per signer."""

    is_mainnet: bool = False
    users: set[str] = field(default_factory=set)
    agents: dict[str, str] = field(default_factory=dict)
    vaults: dict[str, str] = field(default_factory=dict)  # vault/sub-account -> master
    nonces: dict[str, list[int]] = field(default_factory=dict)

    def add_user(self, address: str) -> None:
        """Register a master account (it deposited)."""
        self.users.add(address.lower())

    def add_agent(self, agent: str, master: str) -> None:
        """Approve an API wallet for ``master``."""
        self.agents[agent.lower()] = master.lower()

    def add_vault(self, vault: str, master: str) -> None:
        """Let ``master`` trade the vault or sub-account ``vault``."""
        self.vaults[vault.lower()] = master.lower()
        self.users.add(vault.lower())

    def recover(self, payload: dict[str, Any]) -> str:
        """Return the lower-case address that signed an ``/exchange`` payload."""
        action = payload["action"]
        signature = payload["signature"]
        if action.get("type") in USER_SIGNED:
            types, primary = USER_SIGNED[action["type"]]
            signed = dict(action)
            signed.setdefault("agentName", "")  # the SDK signs "" and then drops it
            address = recover_user_from_user_signed_action(
                signed, signature, types, primary, self.is_mainnet
            )
        else:
            address = recover_agent_or_user_from_l1_action(
                action,
                signature,
                payload.get("vaultAddress"),
                payload["nonce"],
                payload.get("expiresAfter"),
                self.is_mainnet,
            )
        return str(address).lower()

    def acting_account(self, payload: dict[str, Any], now_ms: int) -> tuple[str, str]:
        """Return (signer, account traded) of a verified payload, or raise :class:`Refused`."""
        signer = self.recover(payload)
        master = self.agents.get(signer, signer if signer in self.users else None)
        if master is None:
            raise Refused(c.ERR_UNKNOWN_SIGNER.format(address=signer))
        expires = payload.get("expiresAfter")
        if expires is not None and now_ms > int(expires):
            raise Refused(c.ERR_EXPIRED.format(expires_after=expires, now=now_ms))
        self.use_nonce(signer, int(payload["nonce"]), now_ms)
        vault = payload.get("vaultAddress")
        if vault is None:
            return signer, master
        if self.vaults.get(vault.lower()) != master:
            raise Refused(c.ERR_UNKNOWN_SIGNER.format(address=vault.lower()))
        return signer, vault.lower()

    def use_nonce(self, signer: str, nonce: int, now_ms: int) -> None:
        """Accept ``nonce`` once per signer, or raise :class:`Refused` with the venue's text."""
        kept = self.nonces.setdefault(signer, [])
        if nonce in kept:
            raise Refused(c.ERR_DUPLICATE_NONCE.format(nonce=nonce))
        if len(kept) >= NONCES_KEPT and nonce < kept[0]:
            raise Refused(c.ERR_NONCE_TOO_LOW.format(nonce=nonce, lowest=kept[0]))
        if not now_ms - 2 * DAY_MS < nonce < now_ms + DAY_MS:
            raise Refused(c.ERR_NONCE_TOO_LOW.format(nonce=nonce, lowest=now_ms - 2 * DAY_MS))
        bisect.insort(kept, nonce)
        if len(kept) > NONCES_KEPT:
            del kept[0]
