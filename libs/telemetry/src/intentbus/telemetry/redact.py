"""Secrets never reach a log line: known secret values and URL credentials are masked.

Secrets are registered where they are read (:class:`~intentbus.bus.BusSettings`, venue
options whose names say they are secret) and, at start, from the environment: every
variable whose name ends in ``PASSWORD``, ``TOKEN``, ``SECRET``, ``_KEY`` or
``PRIVATE_KEY`` (file paths such as ``NATS_TLS_KEY`` are masked too, harmlessly).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping

MASK = "***"
MIN_SECRET_LEN = 4
SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|TOKEN|SECRET|_KEY|PRIVATE_KEY|APIKEY)$", re.I)
# scheme://user:password@host or scheme://token@host: the whole user part is masked
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None


def add_secret(value: str | None) -> None:
    """Remember a secret value; every later :func:`scrub` masks it."""
    global _pattern
    if not value or len(value) < MIN_SECRET_LEN:
        return
    with _lock:
        if value in _secrets:
            return
        _secrets.add(value)
        ordered = sorted(_secrets, key=len, reverse=True)  # longest first
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def is_secret_name(name: str) -> bool:
    """Say whether a variable or option name holds a secret."""
    return bool(SECRET_NAME.search(name))


def add_secrets_from_env(env: Mapping[str, str] | None = None) -> None:
    """Register the value of every variable whose name says it is a secret."""
    source = os.environ if env is None else env
    for name, value in source.items():
        if is_secret_name(name):
            add_secret(value)


def scrub(text: str) -> str:
    """Return ``text`` with every known secret and every URL's credentials masked."""
    if "@" in text:
        text = _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    return text
