"""The ``intentbus.venues`` entry point of the paper venue."""

from __future__ import annotations

from intentbus.venues.paper.executor import PaperExecutor, PaperExecutorOptions


def create_executor(options: dict[str, str]) -> PaperExecutor:
    """Build a PaperExecutor from venue options (no I/O); bad options raise a clear ValueError."""
    return PaperExecutor(PaperExecutorOptions.from_options(options))
