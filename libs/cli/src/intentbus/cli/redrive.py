"""Publishing recorded messages again, on purpose: redriven intents and dead letters.

A redriven intent is a new intent: a new id derived from the run and the original
(``derived_id("rd", run, original)``, so repeating a run within the stream's duplicate
window publishes nothing twice), a fresh ``created_at`` and deadline, the link kept in
its reason codes (``redrive_of=<original id>``) and in the ``Intentbus-Redrive-Of``
header. Nothing is published while a halt switch forbids any of the selected intents.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import msgspec
from nats.js import JetStreamContext

from intentbus.bus import HaltStore, Publisher, Topology
from intentbus.cli.reader import Selected, Selection, selected_intents
from intentbus.schemas import ExecutionIntent, derived_id, validated

REDRIVE_HEADER = "Intentbus-Redrive-Of"


class RedriveRefused(Exception):
    """A halt switch forbids some of the selected intents: nothing was published."""


def redriven(
    intent: ExecutionIntent, run_id: str, ttl: timedelta | None = None, now: datetime | None = None
) -> ExecutionIntent:
    """Return the new intent that redrives ``intent`` (see the module docstring)."""
    at = now or datetime.now(UTC)
    lifetime = ttl or (intent.valid_until - intent.created_at)
    return validated(
        msgspec.structs.replace(
            intent,
            intent_id=derived_id("rd", run_id, intent.intent_id),
            created_at=at,
            valid_until=at + lifetime,
            reason_codes=(*intent.reason_codes, f"redrive_of={intent.intent_id}"),
        )
    )


async def survey(
    js: JetStreamContext, topology: Topology, selection: Selection
) -> tuple[int, int, Counter[str]]:
    """Return (count, last seq, switches that stop some) for the selection, reading it once."""
    halt = await HaltStore.open(js, topology)
    await halt.load()
    count, last, stopped = 0, 0, Counter[str]()
    async for selected in selected_intents(js, topology, selection):
        count += 1
        last = selected.seq
        intent = selected.intent
        switch = halt.stopping(intent.token_chain, intent.book_id, intent.action)
        if switch is not None:
            stopped[f"{switch.scope} is {switch.mode.value} ({switch.reason})"] += 1
    return count, last, stopped


async def publish_redrive(
    js: JetStreamContext,
    topology: Topology,
    selection: Selection,
    *,
    run_id: str,
    ttl: timedelta | None = None,
) -> AsyncIterator[tuple[Selected, ExecutionIntent, bool]]:
    """Publish the selection again; yield (original, new, duplicate) per intent.

    The halt switches are read again right before: :class:`RedriveRefused` if one stops
    any selected intent (then nothing at all is published).
    """
    _, _, stopped = await survey(js, topology, selection)
    if stopped:
        raise RedriveRefused(
            "halt switch(es) forbid the selection: "
            + "; ".join(f"{why}: {n} intent(s)" for why, n in stopped.items())
        )
    publisher = Publisher(js, topology)
    async for selected in selected_intents(js, topology, selection):
        new = redriven(selected.intent, run_id, ttl)
        ack = await publisher.intent(new, headers={REDRIVE_HEADER: selected.intent.intent_id})
        yield selected, new, bool(ack.duplicate)
