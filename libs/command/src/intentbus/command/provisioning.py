"""``intentbus provision``: create the streams and the shared buckets, as the operator.

In every image (this member is): under per-service NATS users only the operator may
create streams, so a deployment runs this once, as ``operator``, before its services.
"""

from __future__ import annotations

import typer

from intentbus.bus import HaltStore, ServiceRegistry, provision
from intentbus.command.common import NamespaceOption, NatsUrlOption, bus_session, console, run


def provision_command(nats_url: NatsUrlOption = None, namespace: NamespaceOption = "") -> None:
    """Create or update the streams and the halt and service buckets (as the operator user).

    Services under least-privilege users may read the streams but not create them.
    """
    run(_provision(nats_url, namespace))


async def _provision(url: str | None, ns: str) -> None:
    async with bus_session(url, ns, name="intentbus-provision", provision_streams=False) as bus:
        changed = await provision(bus.js, bus.topology)
        await HaltStore.open(bus.js, bus.topology)
        await ServiceRegistry.open(bus.js, bus.topology)
    done = f"created or updated: {', '.join(changed)}" if changed else "already as declared"
    console.print(f"streams {done}; halt and service buckets ready")


def register(app: typer.Typer) -> None:
    """Add ``provision``."""
    app.command("provision")(provision_command)
