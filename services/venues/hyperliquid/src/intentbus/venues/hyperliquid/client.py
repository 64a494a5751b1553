"""The venue's HTTP API through the official SDK, with shared nonces and bounded retries.

The SDK (``hyperliquid-python-sdk``, unmodified) signs and sends: ``API.post`` for the
transport, ``order_request_to_order_wire``/``order_wires_to_order_action`` for the wire
format and ``sign_l1_action`` for the signature. Its ``Exchange`` methods take the nonce
from the clock (two actions signed in one millisecond collide: ``Invalid nonce:
duplicate nonce``), so actions are signed here with a nonce from :func:`next_nonce`:
per signer, process-wide, strictly increasing across threads and executors.

Retries: ``/info`` queries are idempotent and are retried on 429, 5xx and transport
errors with exponential backoff, ``retries`` times. An ``/exchange`` action is re-signed
and retried only when the venue refused it before applying it: 429, and ``Invalid
nonce`` (another process signing with the same API wallet used that nonce); a 5xx or a
lost response raises
:class:`OutcomeUnknown`: the action may have been applied, the caller must ask.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from eth_account.signers.local import LocalAccount

from hyperliquid.api import API
from hyperliquid.utils.error import ClientError, ServerError
from hyperliquid.utils.signing import get_timestamp_ms, sign_l1_action
from intentbus.venues.hyperliquid import constants as c
from intentbus.venues.hyperliquid.limits import budget_for, exchange_weight, info_weight

_NONCE_LOCK = threading.Lock()
_LAST_NONCE: dict[str, int] = {}
BACKOFF_S = 0.1
BACKOFF_MAX_S = 2.0


def next_nonce(signer: str) -> int:
    """Return a nonce for ``signer``: the clock in ms, above every nonce handed out before."""
    with _NONCE_LOCK:
        nonce = max(int(get_timestamp_ms()), _LAST_NONCE.get(signer.lower(), 0) + 1)
        _LAST_NONCE[signer.lower()] = nonce
        return nonce


@dataclass
class Expiry:
    """``expiresAfter`` of each attempt: ``window_ms`` from signing, never past ``deadline_ms``.

    ``on_sign`` hears each value before its attempt is sent (what may still be applied).
    """

    window_ms: int
    deadline_ms: int | None = None
    on_sign: Callable[[int], None] | None = None

    def next(self) -> int:
        """Return the ``expiresAfter`` of an attempt signed now."""
        expires = int(get_timestamp_ms()) + self.window_ms
        if self.deadline_ms is not None:
            expires = min(expires, self.deadline_ms)
        if self.on_sign is not None:
            self.on_sign(expires)
        return expires


class VenueError(Exception):
    """The venue answered, but not with what was asked (e.g. retries ran out on 429)."""


class OutcomeUnknown(VenueError):
    """An ``/exchange`` action was sent, and whether the venue applied it is unknown."""


def _nonce_clash(answer: Any) -> bool:
    """Say whether the venue refused a whole action for its nonce (nothing was applied)."""
    if not isinstance(answer, dict) or answer.get("status") != "err":
        return False
    return str(answer.get("response", "")).startswith("Invalid nonce")


class HyperliquidClient:
    """Blocking calls to one venue (run them in a thread)."""

    def __init__(
        self, base_url: str, wallet: LocalAccount, *, timeout_s: float, retries: int
    ) -> None:
        self.api = API(base_url, timeout_s)
        self.wallet = wallet
        self.retries = retries
        self.is_mainnet = base_url == c.MAINNET_API_URL
        self.budget = budget_for(base_url)
        self.rate_limited = 0  # 429s seen (and waited out)
        self.nonce_clashes = 0  # "Invalid nonce" refusals seen (and re-signed)

    @property
    def signer(self) -> str:
        """Return the signing wallet's address (lower case)."""
        return str(self.wallet.address).lower()

    def info(self, query: dict[str, Any]) -> Any:
        """Ask ``/info``; retry on 429, 5xx and transport errors within the bound."""
        attempt = 0
        while True:
            self.budget.take(info_weight(query))
            try:
                return self.api.post("/info", query)
            except (ClientError, ServerError, requests.RequestException) as exc:
                if isinstance(exc, ClientError) and exc.status_code != 429:
                    raise VenueError(f"/info {query.get('type')}: {exc}") from exc
                attempt = self._backoff(attempt, exc)

    def exchange(
        self, action: dict[str, Any], *, vault: str | None, expires_after: Expiry | None = None
    ) -> Any:
        """Sign ``action`` with a fresh nonce and send it; retry only what was not applied."""
        attempt = 0
        while True:
            nonce = next_nonce(self.signer)
            expires = expires_after.next() if expires_after is not None else None
            signature = sign_l1_action(self.wallet, action, vault, nonce, expires, self.is_mainnet)
            payload = {
                "action": action,
                "nonce": nonce,
                "signature": signature,
                "vaultAddress": vault,
                "expiresAfter": expires,
            }
            self.budget.take(exchange_weight(action))
            try:
                answer = self.api.post("/exchange", payload)
            except ClientError as exc:
                if exc.status_code != 429:
                    raise VenueError(f"/exchange {action['type']}: {exc}") from exc
                attempt = self._backoff(attempt, exc)
                continue
            except (ServerError, requests.RequestException) as exc:
                raise OutcomeUnknown(f"/exchange {action['type']}: {exc!r}") from exc
            if not _nonce_clash(answer):
                return answer
            # Refused before it was applied: another process signed with this nonce.
            self.nonce_clashes += 1
            attempt = self._backoff(attempt, VenueError(str(answer)))

    def _backoff(self, attempt: int, exc: Exception) -> int:
        if isinstance(exc, ClientError) and exc.status_code == 429:
            self.rate_limited += 1
        if attempt >= self.retries:
            raise VenueError(f"gave up after {attempt + 1} attempts: {exc!r}") from exc
        time.sleep(min(BACKOFF_S * 2**attempt, BACKOFF_MAX_S))  # backoff, in a worker thread
        return attempt + 1
