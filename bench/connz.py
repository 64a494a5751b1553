"""Count the NATS messages each process sends and receives, from nats-server's ``/connz``.

The bench's nats-server runs with its HTTP monitoring port; a snapshot before and after
a window, divided by the intents of the window, gives messages per intent per process.
A message *sent* that expects a reply (a request, a JetStream publish) is one round
trip; acks are sent without one.
"""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.request

# connection name prefix -> the process it belongs to (the bench's own connections
# are named bench-*)
ROLES = {
    "intentbus-executor": "executor",
    "intentbus-ledger": "ledger",
    "intentbus-paper-venue": "paper-venue",
    "bench": "bench",
}

Counts = dict[str, tuple[int, int]]  # process -> (messages sent, messages received)


def free_port() -> int:
    """Return a TCP port free on loopback now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _fetch(monitor_url: str) -> Counts:
    with urllib.request.urlopen(f"{monitor_url}/connz?limit=4096", timeout=5) as reply:
        doc = json.load(reply)
    counts: Counts = {}
    for conn in doc.get("connections") or []:
        name = str(conn.get("name") or "")
        role = next((r for prefix, r in ROLES.items() if name.startswith(prefix)), None)
        if role is None:
            continue
        sent, received = counts.get(role, (0, 0))
        # the server's in_msgs are what the client published, out_msgs what it delivered
        counts[role] = (sent + int(conn["in_msgs"]), received + int(conn["out_msgs"]))
    return counts


async def snapshot(monitor_url: str | None) -> Counts:
    """Return the message counts of every process now ({} without a monitoring port)."""
    if monitor_url is None:
        return {}
    return await asyncio.to_thread(_fetch, monitor_url)


def per_intent(before: Counts, after: Counts, intents: int) -> dict[str, dict[str, float]]:
    """Return messages sent and received per intent by each process between two snapshots."""
    if intents <= 0:
        return {}
    out: dict[str, dict[str, float]] = {}
    for role, (sent, received) in after.items():
        sent0, received0 = before.get(role, (0, 0))
        out[role] = {"sent": (sent - sent0) / intents, "received": (received - received0) / intents}
    return out
