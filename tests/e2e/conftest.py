"""Run the real services as separate processes against the session's nats-server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from intentbus.bus import Topology
from intentbus.cli.processes import ServiceProcesses
from intentbus.testing.system import ProcessSystem


@pytest.fixture
def system(nats_url: str, topology: Topology, tmp_path: Path) -> Iterator[ProcessSystem]:
    """Give a test its own system; every process is stopped afterwards."""
    with ServiceProcesses(tmp_path) as processes:
        yield ProcessSystem(nats_url, topology, tmp_path, processes)
