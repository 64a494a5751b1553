"""The ``intentbus`` command; each installed member adds its subcommands.

A member registers ``register(app: typer.Typer) -> None`` under the
``intentbus.commands`` entry-point group, so an image holding only one service offers
only the commands it can run. The operators' commands and the demo come from
``intentbus-cli`` when it is installed.
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points

import typer

from intentbus import telemetry

COMMAND_GROUP = "intentbus.commands"


def build_app() -> typer.Typer:
    """Build the root command with every installed member's subcommands."""
    app = typer.Typer(
        name="intentbus",
        help="Turn portfolio-manager intents into trades over NATS JetStream.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_show_locals=False,
    )
    for entry in sorted(entry_points(group=COMMAND_GROUP), key=lambda e: e.name):
        try:
            register = entry.load()
        except ImportError as exc:
            # One broken member must not take every other command down with it.
            print(f"intentbus: commands of {entry.value!r} unavailable: {exc}", file=sys.stderr)
            continue
        register(app)
    return app


def configure_logging() -> None:
    """Log to stderr at ``INTENTBUS_LOG_LEVEL`` (default WARNING): JSON unless a terminal
    (``INTENTBUS_LOG_FORMAT=text|json`` decides), each line with its intent and trace ids,
    secrets masked."""
    telemetry.configure_logging()


def service_name(argv: list[str]) -> str:
    """Return the default service name of a command line: ``intentbus-<subcommand>``."""
    command = next((arg for arg in argv[1:] if not arg.startswith("-")), "")
    return f"intentbus-{command}" if command else "intentbus"


def main() -> None:
    """Run the command line; traces are exported when ``OTEL_*`` asks for them."""
    configure_logging()
    telemetry.configure_tracing(service_name(sys.argv))
    build_app()()


if __name__ == "__main__":
    main()
