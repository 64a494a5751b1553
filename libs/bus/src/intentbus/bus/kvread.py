"""Read what a KV bucket holds now: the latest entry of every key, none missed.

nats-py's ``KeyValue.watch`` signals "the initial values are done" (a ``None``
update; ``keys()`` relies on it too) when the watch consumer's info says nothing is
pending and no message has arrived yet. Under load the server answers that info
before the messages it has already pushed reach the client: the ``None`` then comes
first, and a reader that stops there sees an empty bucket. Seen here: an executor
replica that took its own partition leases for lost (and moved them, stalling their
intents), which would as well miss the working orders of a partition it takes over.

So a read first asks the stream which keys hold a message now
(:func:`present_keys`), then watches until each of them has come and the marker too
(the server names at most 100,000 subjects at once: past that the marker still ends
the read, as before, unless it also came early).
"""

from __future__ import annotations

from typing import Any

from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from intentbus.bus.streams import with_api_retries

__all__ = ["present_keys", "snapshot", "stream_of"]


def stream_of(bucket: KeyValue) -> tuple[JetStreamContext, str, str]:
    """Return the bucket's JetStream context, stream name and key subject prefix."""
    kv: Any = bucket  # nats-py keeps them in private attributes
    return kv._js, kv._stream, kv._pre


async def present_keys(bucket: KeyValue, keys: str = ">") -> set[str]:
    """Return the keys matching ``keys`` whose last message is stored (values and deletes)."""
    js, stream, pre = stream_of(bucket)
    info = await js.stream_info(stream, subjects_filter=f"{pre}{keys}")
    return {subject[len(pre) :] for subject in (info.state.subjects or {})}


async def snapshot(
    bucket: KeyValue, keys: str = ">", *, timeout_s: float = 2.0
) -> dict[str, KeyValue.Entry]:
    """Return the latest entry of every key matching ``keys`` that is not deleted.

    Raise nats-py's ``TimeoutError`` when a key the stream named does not come within
    ``timeout_s`` (after a few tries: it expired meanwhile, or the server is slow).
    """

    async def once() -> dict[str, KeyValue.Entry]:
        expected = await present_keys(bucket, keys)
        if not expected:
            return {}
        watcher: Any = await bucket.watch(keys, inactive_threshold=timeout_s)
        entries: dict[str, KeyValue.Entry] = {}
        seen: set[str] = set()
        marker = False
        try:
            while not (marker and expected <= seen):
                entry = await watcher.updates(timeout=timeout_s)
                if entry is None:  # "done", possibly before the entries: read on
                    marker = True
                    continue
                seen.add(entry.key)
                if entry.operation is None:
                    entries[entry.key] = entry
                else:  # deleted or purged
                    entries.pop(entry.key, None)
        finally:
            await watcher.stop()
        return entries

    return await with_api_retries(once, attempts=4, first_delay_s=0.1)
