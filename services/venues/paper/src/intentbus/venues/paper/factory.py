"""The ``intentbus.venues`` entry point of the paper venue."""

from __future__ import annotations

from intentbus.venues.paper.config import PaperConfig
from intentbus.venues.paper.executor import PaperExecutor


def create_executor(options: dict[str, str]) -> PaperExecutor:
    """Build a PaperExecutor from venue options (no I/O); bad options raise a clear ValueError."""
    return PaperExecutor(PaperConfig.from_options(options))
