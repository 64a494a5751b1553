"""The Hyperliquid executor's options, parsed from ``--option KEY=VALUE`` strings.

Keys never come from options (they would show in process lists): the API wallet's secret
key is read from the file named by ``key_file`` or from ``HYPERLIQUID_SECRET_KEY``. The
key is never logged and never part of a repr.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from intentbus.venues.hyperliquid import constants as c

OPTIONS = (
    "name",
    "network",
    "base_url",
    "account",
    "books",
    "vaults",
    "key_file",
    "margin",
    "default_leverage",
    "timeout_s",
    "retries",
    "order_window_s",
    "max_slippage_bps",
    "passive_offset_bps",
)
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


class ConfigError(ValueError):
    """An invalid option."""


@dataclass(frozen=True)
class BookAccount:
    """Where one book trades: the account address, and the vault or sub-account if any."""

    address: str
    vault: str | None = None

    @property
    def traded(self) -> str:
        """Return the address whose positions the book holds (the vault when there is one)."""
        return self.vault or self.address


@dataclass(frozen=True, kw_only=True)
class HyperliquidConfig:
    """Which venue, which accounts, how to sign and how patient to be."""

    name: str = c.VENUE
    base_url: str = c.TESTNET_API_URL
    account: str | None = None
    books: Mapping[str, str] = field(default_factory=dict)
    vaults: Mapping[str, str] = field(default_factory=dict)
    key_file: str | None = None
    cross_margin: bool = True
    default_leverage: int = 1
    timeout_s: float = 10.0
    retries: int = 4
    order_window_s: float = 2.0
    max_slippage_bps: int = 50
    passive_offset_bps: int = 10

    def __post_init__(self) -> None:
        for address in [self.account, *self.books.values(), *self.vaults.values()]:
            if address is not None and not _ADDRESS.match(address):
                raise ConfigError(f"{address!r} is not an address (0x + 40 hex)")
        if self.default_leverage < 1 or self.timeout_s <= 0 or self.retries < 0:
            raise ConfigError("default_leverage >= 1, timeout_s > 0 and retries >= 0 please")
        if not 0.5 <= self.order_window_s <= 60:
            raise ConfigError("order_window_s must be within [0.5, 60]")

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> HyperliquidConfig:
        """Build the config from ``KEY=VALUE`` options; unknown keys are an error."""
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise ConfigError(
                f"unknown hyperliquid option(s): {', '.join(unknown)}; known: {', '.join(OPTIONS)}"
            )
        network = options.get("network", "testnet")
        if network not in c.NETWORKS:
            raise ConfigError(f"network must be one of {sorted(c.NETWORKS)}")
        margin = options.get("margin", "cross")
        if margin not in ("cross", "isolated"):
            raise ConfigError("margin must be cross or isolated")
        try:
            return cls(
                name=options.get("name", c.VENUE),
                base_url=options.get("base_url", c.NETWORKS[network]).rstrip("/"),
                account=options.get("account"),
                books=_pairs(options.get("books", "")),
                vaults=_pairs(options.get("vaults", "")),
                key_file=options.get("key_file"),
                cross_margin=margin == "cross",
                default_leverage=int(options.get("default_leverage", "1")),
                timeout_s=float(options.get("timeout_s", "10")),
                retries=int(options.get("retries", "4")),
                order_window_s=float(options.get("order_window_s", "2")),
                max_slippage_bps=int(options.get("max_slippage_bps", "50")),
                passive_offset_bps=int(options.get("passive_offset_bps", "10")),
            )
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def book_account(self, book_id: str, signer: str | None = None) -> BookAccount:
        """Return where ``book_id`` trades (its own address, else ``account``, else the signer)."""
        address = self.books.get(book_id) or self.account or signer
        if address is None:
            raise ConfigError(f"no account for book {book_id!r}: set account= or books=")
        vault = self.vaults.get(book_id)
        return BookAccount(address.lower(), vault.lower() if vault else None)

    def secret_key(self, env: Mapping[str, str] | None = None) -> str:
        """Read the API wallet's secret key from ``key_file`` or the environment."""
        if self.key_file is not None:
            key = Path(self.key_file).read_text(encoding="utf-8").strip()
        else:
            key = (env if env is not None else os.environ).get(c.KEY_ENV, "").strip()
        if not key:
            raise ConfigError(f"no secret key: set key_file= or {c.KEY_ENV}")
        return key

    @property
    def is_mainnet(self) -> bool:
        """Say whether this signs for mainnet (the SDK's rule: the mainnet URL exactly)."""
        return self.base_url == c.MAINNET_API_URL


def _pairs(text: str) -> dict[str, str]:
    found = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        book, sep, address = item.partition(":")
        if not sep or not book or not address:
            raise ConfigError(f"expected BOOK:ADDRESS, got {item!r}")
        found[book] = address
    return found
