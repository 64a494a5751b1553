"""The README's demo command: embedded NATS, real processes, tables, exit 0."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.timeout(150)
def test_demo_runs_on_an_embedded_server_and_exits_zero() -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"NATS_URL", "INTENTBUS_NAMESPACE"}}
    env["COLUMNS"] = "200"
    done = subprocess.run(
        [sys.executable, "-m", "intentbus.command.app", "demo"],
        capture_output=True,
        text=True,
        timeout=140,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "embedded nats-server" in out
    for title in (
        "Intents published",
        "Results from the paper executor",
        "Positions in the ledger",
    ):
        assert title in out
    assert "below_min_notional" in out
    assert "reduce_only" in out
    assert out.count("success") >= 4


@pytest.mark.timeout(150)
def test_demo_uses_the_server_it_is_given(nats_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "INTENTBUS_NAMESPACE"}
    env["NATS_URL"] = nats_url
    done = subprocess.run(
        [sys.executable, "-m", "intentbus.command.app", "demo"],
        capture_output=True,
        text=True,
        timeout=140,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "embedded nats-server" not in done.stdout
    assert "Positions in the ledger" in done.stdout
