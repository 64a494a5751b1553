"""The deployment's nats-server configs load, with the passwords env.example names."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from intentbus.bus.embedded import find_nats_server

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def example_env() -> dict[str, str]:
    """Return the variables of deploy/env.example."""
    pairs = (
        line.split("=", 1)
        for line in (DEPLOY / "env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    return {name: value for name, value in pairs}


def test_env_example_names_every_password_auth_conf_reads() -> None:
    wanted = set(re.findall(r"password:\s*\$(\w+)", (DEPLOY / "nats" / "auth.conf").read_text()))
    named = {name for name in example_env() if name.startswith("INTENTBUS_NATS_")}
    assert wanted == {name for name in named if name.endswith("_PASSWORD")}


@pytest.mark.parametrize("config", ["nats/nats.conf", "nats/cluster/nats.conf"])
def test_the_config_is_valid(config: str) -> None:
    env = {**example_env(), "NATS_SERVER_NAME": "nats-1"}
    checked = subprocess.run(
        [find_nats_server(), "-t", "-c", str(DEPLOY / config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    assert "is valid" in checked.stderr + checked.stdout
