"""Describe the machine a run came from: CPUs, CPU model, Python, nats-server, load."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from intentbus.bus.embedded import find_nats_server


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo, or the platform's processor."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def nats_server_version() -> str:
    """Return ``nats-server --version`` (e.g. ``v2.15.1``)."""
    try:
        out = subprocess.run(
            [find_nats_server(), "--version"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, RuntimeError, subprocess.SubprocessError):
        return "unknown"
    return out.strip().removeprefix("nats-server: ") or "unknown"


def _package(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "absent"


def describe() -> dict[str, object]:
    """Return the facts a reader needs to weigh the figures."""
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "os": platform.platform(terse=True),
        "nats_server": nats_server_version(),
        "nats_py": _package("nats-py"),
        "msgspec": _package("msgspec"),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }
