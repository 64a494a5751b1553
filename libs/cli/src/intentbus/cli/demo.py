"""Operator commands: publish, tail."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the operator commands."""
