"""Ids the runtime derives from an intent."""

from __future__ import annotations

import hashlib


def client_order_id(intent_id: str) -> str:
    """Derive the deterministic venue client order id of an intent (``0x`` + 32 hex)."""
    return "0x" + hashlib.sha256(intent_id.encode()).hexdigest()[:32]
