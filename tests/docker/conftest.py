"""The docker tests' engine: set up (installed, started, images built) once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from intentbus.testing.docker_engine import ensure_engine

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def docker_engine(request: pytest.FixtureRequest) -> Path:
    """Run ``python3 dev.py docker`` with its progress shown (minutes on a fresh machine)."""
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        ensure_engine(ROOT)
    return ROOT
