"""The Hyperliquid executor's options: networks, accounts per book, keys never in options."""

from __future__ import annotations

from pathlib import Path

import pytest

from intentbus.executor.registry import create_executor, installed_venues
from intentbus.venues.hyperliquid.config import ConfigError, HyperliquidConfig
from intentbus.venues.hyperliquid.executor import HyperliquidExecutor

MASTER = "0x" + "a" * 40
VAULT = "0x" + "b" * 40
KEY = "0x" + "1" * 64


def test_the_venue_is_installed_and_built_without_io() -> None:
    assert "hyperliquid" in installed_venues()
    executor = create_executor("hyperliquid", [f"account={MASTER}"], env={})
    assert isinstance(executor, HyperliquidExecutor)
    assert executor.venue == "hyperliquid"


def test_networks_and_urls() -> None:
    assert HyperliquidConfig.from_options({}).base_url == "https://api.hyperliquid-testnet.xyz"
    mainnet = HyperliquidConfig.from_options({"network": "mainnet"})
    assert (mainnet.base_url, mainnet.is_mainnet) == ("https://api.hyperliquid.xyz", True)
    local = HyperliquidConfig.from_options({"base_url": "http://127.0.0.1:9999/"})
    assert (local.base_url, local.is_mainnet) == ("http://127.0.0.1:9999", False)
    with pytest.raises(ConfigError, match="network"):
        HyperliquidConfig.from_options({"network": "devnet"})


def test_books_map_to_accounts_and_vaults() -> None:
    config = HyperliquidConfig.from_options(
        {"account": MASTER, "books": f"alt:{VAULT}", "vaults": f"fund:{VAULT}"}
    )
    assert config.book_account("main").traded == MASTER
    assert config.book_account("alt").traded == VAULT
    fund = config.book_account("fund")
    assert (fund.address, fund.vault, fund.traded) == (MASTER, VAULT, VAULT)
    with pytest.raises(ConfigError, match="address"):
        HyperliquidConfig.from_options({"account": "0x123"})


def test_keys_come_from_a_file_or_the_environment_never_from_options(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown"):
        HyperliquidConfig.from_options({"secret_key": KEY})
    key_file = tmp_path / "agent.key"
    key_file.write_text(KEY + "\n")
    config = HyperliquidConfig.from_options({"key_file": str(key_file)})
    assert config.secret_key() == KEY
    assert KEY not in repr(config)
    env = HyperliquidConfig.from_options({})
    assert env.secret_key({"HYPERLIQUID_SECRET_KEY": KEY}) == KEY
    with pytest.raises(ConfigError, match="HYPERLIQUID_SECRET_KEY"):
        env.secret_key({})
