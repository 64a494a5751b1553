"""Find venue executors installed under the ``intentbus.venues`` entry-point group.

A venue factory takes a ``dict[str, str]`` of options and returns a
:class:`~intentbus.executor.base.BaseExecutor` without doing any I/O. Options come from
``INTENTBUS_<VENUE>_<KEY>`` environment variables, overridden by ``--option KEY=VALUE``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import EntryPoint, entry_points

from intentbus import telemetry
from intentbus.executor.base import BaseExecutor

VENUE_GROUP = "intentbus.venues"

VenueFactory = Callable[[dict[str, str]], BaseExecutor]


class UnknownVenue(LookupError):
    """Raise when no installed package registers the venue asked for."""


class InvalidOption(ValueError):
    """Raise when a ``--option`` is not ``KEY=VALUE``."""


def _entries() -> dict[str, EntryPoint]:
    return {entry.name: entry for entry in entry_points(group=VENUE_GROUP)}


def installed_venues() -> list[str]:
    """Return the names of every installed venue, sorted."""
    return sorted(_entries())


def load_factory(venue: str) -> VenueFactory:
    """Return the factory of ``venue``; raise :class:`UnknownVenue` listing the installed ones."""
    entry = _entries().get(venue)
    if entry is None:
        installed = ", ".join(installed_venues()) or "none"
        raise UnknownVenue(
            f"unknown venue {venue!r}: installed venues are {installed} "
            f"(a venue package registers itself under the {VENUE_GROUP!r} entry points)"
        )
    factory: VenueFactory = entry.load()
    return factory


def parse_options(pairs: Iterable[str]) -> dict[str, str]:
    """Parse ``KEY=VALUE`` strings; keys are lower-cased, the last one wins."""
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidOption(f"option {pair!r} is not KEY=VALUE")
        options[key.strip().lower()] = value.strip()
    return options


def env_options(venue: str, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return the options set as ``INTENTBUS_<VENUE>_<KEY>`` (key lower-cased)."""
    source = os.environ if env is None else env
    prefix = f"INTENTBUS_{venue.upper().replace('-', '_')}_"
    return {
        name[len(prefix) :].lower(): value
        for name, value in source.items()
        if name.startswith(prefix) and len(name) > len(prefix)
    }


def create_executor(
    venue: str, options: Iterable[str] = (), env: Mapping[str, str] | None = None
) -> BaseExecutor:
    """Build the executor of ``venue`` from env options overridden by ``KEY=VALUE`` flags.

    Options whose names say they are secret (``*_key``, ``*secret``, ``*password``,
    ``*token``) are masked in every log line from now on.
    """
    factory = load_factory(venue)
    merged = {**env_options(venue, env), **parse_options(options)}
    for key, value in merged.items():
        if telemetry.is_secret_name(key):
            telemetry.add_secret(value)
    return factory(merged)
