"""Open (or create) the KV buckets the executor keeps its state in."""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError
from nats.js.kv import KeyValue

from intentbus.bus.streams import bucket_config, with_api_retries


async def ensure_bucket(js: JetStreamContext, name: str, *, history: int = 1) -> KeyValue:
    """Return the bucket ``name``, creating it (file storage) when it does not exist."""

    async def open_or_create() -> KeyValue:
        try:
            return await js.key_value(name)
        except BucketNotFoundError:
            config = bucket_config(name, history=history)
            return await js.create_key_value(config=config)

    return await with_api_retries(open_or_create)
