"""Each service image holds its member and that member's dependencies, nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from intentbus.testing.docker_engine import docker

LIST_MEMBERS = (
    "import importlib.metadata as m, json, shutil; print(json.dumps({'members': sorted("
    "d.metadata['Name'] for d in m.distributions() if d.metadata['Name'].startswith("
    "('intentbus', 'nats-server'))), 'nats_server': shutil.which('nats-server')}))"
)
COMMON = {"intentbus-schemas", "intentbus-telemetry", "intentbus-bus", "intentbus-command"}
IMAGES = {
    "intentbus-ledger:local": {"intentbus-ledger"},
    "intentbus-paper:local": {"intentbus-venue-paper", "intentbus-executor"},
    "intentbus-pm:local": {"intentbus-pm"},
    "intentbus-hyperliquid:local": {"intentbus-venue-hyperliquid", "intentbus-executor"},
}


@pytest.mark.parametrize(("image", "own"), IMAGES.items())
def test_an_image_holds_only_its_service(docker_engine: Path, image: str, own: set[str]) -> None:
    found = json.loads(docker("run", "--rm", "--entrypoint", "python", image, "-c", LIST_MEMBERS))
    assert set(found["members"]) == COMMON | own
    assert found["nats_server"] is None
    config = json.loads(docker("image", "inspect", image))[0]["Config"]
    assert config["User"] == "65534:65534"
    assert config["Healthcheck"]["Test"][0] == "CMD"


def test_the_ledger_image_offers_only_the_ledger_commands(docker_engine: Path) -> None:
    shown = docker("run", "--rm", "-e", "COLUMNS=100", "intentbus-ledger:local", "--help")
    rows = shown.split("Commands")[1].splitlines()
    commands = {row.split()[1] for row in rows if row.startswith("│ ") and row[2] != " "}
    # its own commands, and `provision` (every image: a deployment provisions with any)
    assert commands == {"ledger", "ledger-check", "positions", "provision"}
