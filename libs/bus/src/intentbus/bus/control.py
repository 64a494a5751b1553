"""The control plane in KV: halt switches (``HALT``) and service heartbeats (``SERVICES``).

Halt switches are read by every executor (a KV watch, so a change arrives in
milliseconds) and by the operator's commands (``halt``, ``status``, ``replay``). Keys:
``global``, ``venue.<venue>``, ``book.<book>`` (that book on every venue) and
``venue.<venue>.book.<book>``. ``resume`` writes an ``active`` switch rather than
deleting, so the bucket's history keeps who changed what.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version

import msgspec
from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError
from nats.js.kv import KeyValue

from intentbus.bus.kvread import present_keys, snapshot
from intentbus.bus.streams import bucket_config, with_api_retries
from intentbus.bus.subjects import Topology, check_token
from intentbus.schemas import ActionType, HaltMode, HaltSwitch, Heartbeat, decode, encode

log = logging.getLogger(__name__)

HALT_BUCKET = "HALT"
SERVICES_BUCKET = "SERVICES"


async def open_bucket(
    js: JetStreamContext, name: str, *, history: int = 1, ttl_s: float | None = None
) -> KeyValue:
    """Return the KV bucket ``name``, creating it (file storage) when it does not exist."""

    async def open_or_create() -> KeyValue:
        try:
            return await js.key_value(name)
        except BucketNotFoundError:
            config = bucket_config(name, history=history, ttl_s=ttl_s)
            return await js.create_key_value(config=config)

    return await with_api_retries(open_or_create)


def switch_key(venue: str = "", book: str = "") -> str:
    """Return the KV key of the switch of a scope (both empty: the global switch)."""
    parts = []
    if venue:
        parts += ["venue", check_token("venue", venue)]
    if book:
        parts += ["book", check_token("book", book)]
    return ".".join(parts) or "global"


def covering_keys(venue: str, book: str) -> tuple[str, ...]:
    """Return the keys of every switch that covers an intent of ``venue``/``book``."""
    return ("global", switch_key(venue), switch_key(book=book), switch_key(venue, book))


class HaltView:
    """The switches as last seen; decide what an intent may do."""

    def __init__(self) -> None:
        self.switches: dict[str, HaltSwitch] = {}
        self.revision = 0

    def effective(self, venue: str, book: str) -> HaltSwitch | None:
        """Return the most restrictive non-active switch covering ``venue``/``book``."""
        if not self.switches:  # asked for every intent: none set is the common case
            return None
        worst: HaltSwitch | None = None
        for key in covering_keys(venue, book):
            switch = self.switches.get(key)
            if switch is None or switch.mode is HaltMode.ACTIVE:
                continue
            if worst is None or switch.mode.rank > worst.mode.rank:
                worst = switch
        return worst

    def stopping(self, venue: str, book: str, action: ActionType) -> HaltSwitch | None:
        """Return the switch that forbids ``action`` for ``venue``/``book``, if one does."""
        switch = self.effective(venue, book)
        if switch is None or action in switch.mode.allowed:
            return None
        return switch


class HaltStore(HaltView):
    """Read, write and watch the halt switches."""

    def __init__(self, kv: KeyValue) -> None:
        super().__init__()
        self._kv = kv
        self._task: asyncio.Task[None] | None = None
        self._listeners: list[Callable[[HaltSwitch], object]] = []

    @classmethod
    async def open(cls, js: JetStreamContext, topology: Topology) -> HaltStore:
        """Open (or create) the namespace's ``HALT`` bucket."""
        return cls(await open_bucket(js, topology.bucket(HALT_BUCKET), history=64))

    async def set(self, switch: HaltSwitch) -> int:
        """Write a switch; return its revision."""
        key = switch_key(switch.venue, switch.book)
        return int(await self._kv.put(key, encode(switch)))

    async def load(self) -> list[HaltSwitch]:
        """Read every switch now (no watch)."""
        loaded = []
        for key, entry in (await snapshot(self._kv)).items():
            if entry.value:
                switch = decode(entry.value, HaltSwitch)
                self.switches[key] = switch
                loaded.append(switch)
        return loaded

    def on_change(self, listener: Callable[[HaltSwitch], object]) -> None:
        """Call ``listener(switch)`` after each change seen by the watch."""
        self._listeners.append(listener)

    async def watch(self) -> None:
        """Start watching: return once the current switches are loaded."""
        loaded = asyncio.Event()
        self._task = asyncio.create_task(self._watch(loaded))
        waiter = asyncio.create_task(loaded.wait())
        await asyncio.wait({self._task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if self._task.done():
            await self._task  # surface why the watch could not start

    async def _watch(self, loaded: asyncio.Event) -> None:
        delay = 0.25
        while True:
            watcher = None
            try:
                # Loaded once every switch stored now has come (nats-py's "initial values
                # done" can come before them: see intentbus.bus.kvread).
                waiting = await present_keys(self._kv)
                watcher = await self._kv.watchall()
                if not waiting:
                    loaded.set()
                async for entry in watcher:
                    if entry is None:
                        continue
                    self._apply(entry.key, entry.value, entry.revision)
                    waiting.discard(entry.key)
                    if not waiting:
                        loaded.set()
                    delay = 0.25
            except Exception:
                log.exception("halt switch watch failed; watching again in %.2fs", delay)
            finally:
                if watcher is not None:
                    with contextlib.suppress(Exception):
                        await watcher.stop()  # type: ignore[no-untyped-call]
            await asyncio.sleep(delay)  # never give up: a stale switch view must not last
            delay = min(delay * 2, 5.0)

    def _apply(self, key: str, value: bytes | None, revision: int | None) -> None:
        self.revision = max(self.revision, revision or 0)
        if not value:
            self.switches.pop(key, None)
            return
        try:
            switch = decode(value, HaltSwitch)
        except msgspec.MsgspecError:
            log.error("halt switch %s is not a HaltSwitch; ignoring it", key)
            return
        self.switches[key] = switch
        for listener in self._listeners:
            try:
                listener(switch)
            except Exception:
                log.exception("halt switch listener failed")

    async def stop(self) -> None:
        """Stop watching."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task


class ServiceRegistry:
    """Heartbeats of every service instance, one key each (``<service>.<instance>``)."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    @classmethod
    async def open(cls, js: JetStreamContext, topology: Topology) -> ServiceRegistry:
        """Open (or create) the namespace's ``SERVICES`` bucket (entries live one hour)."""
        return cls(await open_bucket(js, topology.bucket(SERVICES_BUCKET), ttl_s=3600.0))

    async def beat(self, heartbeat: Heartbeat) -> None:
        """Record one heartbeat."""
        await self._kv.put(f"{heartbeat.service}.{heartbeat.instance}", encode(heartbeat))

    async def all(self) -> list[Heartbeat]:
        """Return the last heartbeat of every instance seen within the bucket's TTL."""
        entries = (await snapshot(self._kv)).values()
        beats = [decode(entry.value, Heartbeat) for entry in entries if entry.value]
        return sorted(beats, key=lambda b: (b.service, b.venue, b.book, b.instance))


def alive(beat: Heartbeat, now_s: float, *, missed: float = 3.0) -> bool:
    """Say whether an instance is alive: its last beat is within ``missed`` intervals."""
    return now_s - beat.at.timestamp() <= beat.interval_s * missed


class HeartbeatLoop:
    """Publish a service instance's heartbeat every ``interval_s`` until stopped.

    A service sets :attr:`last_error` when something goes wrong (it is shown by
    ``intentbus status``); a failed beat is logged and tried again next interval.
    """

    def __init__(
        self,
        js: JetStreamContext,
        topology: Topology,
        *,
        service: str,
        instance: str | None = None,
        venue: str = "",
        book: str = "",
        interval_s: float = 1.0,
        distribution: str = "intentbus-bus",
    ) -> None:
        self._js = js
        self._topology = topology
        self.service = check_token("service", service)
        self.instance = _safe(instance or default_instance())
        self.venue = venue
        self.book = book
        self.interval_s = interval_s
        self.last_error: str | None = None
        self._started_at = datetime.now(UTC)
        try:
            self._version = version(distribution)
        except PackageNotFoundError:
            self._version = "unknown"
        self._task: asyncio.Task[None] | None = None

    def heartbeat(self) -> Heartbeat:
        """Return the heartbeat of now."""
        return Heartbeat(
            service=self.service,
            instance=self.instance,
            version=self._version,
            started_at=self._started_at,
            at=datetime.now(UTC),
            interval_s=self.interval_s,
            venue=self.venue,
            book=self.book,
            last_error=self.last_error,
        )

    async def start(self) -> None:
        """Open the registry, publish the first beat and keep beating in the background."""
        registry = await ServiceRegistry.open(self._js, self._topology)
        try:
            await registry.beat(self.heartbeat())
        except Exception as exc:  # the loop tries again; a beat never stops a service
            log.warning("first heartbeat of %s failed: %r", self.instance, exc)
        self._task = asyncio.create_task(self._run(registry))

    async def _run(self, registry: ServiceRegistry) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await registry.beat(self.heartbeat())
            except Exception as exc:
                log.warning("heartbeat of %s failed: %r", self.instance, exc)

    async def stop(self) -> None:
        """Stop beating (the last beat ages out: the instance shows as gone)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task


def default_instance() -> str:
    """Return ``<host>-<pid>`` made subject-safe."""
    return _safe(f"{socket.gethostname()[:48] or 'host'}-{os.getpid()}")


def _safe(name: str) -> str:
    """Return ``name`` as a KV-key-safe token (never raise: a heartbeat must not stop a service)."""
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "_-=") else "-" for c in name)
    return cleaned[:64] or "instance"
