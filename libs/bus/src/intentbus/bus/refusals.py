"""Permission refusals: name the subject and the user instead of timing out in silence.

A server refuses a publish or a subscription the connection's user may not make with an
asynchronous ``-ERR``; the request behind it then simply gets no answer. ``connect()``
records each refusal here, and a publish or JetStream call that got no answer raises
:class:`PermissionDenied` when its subject was refused.
"""

from __future__ import annotations

import itertools
import re
from collections import deque
from dataclasses import dataclass

# nats-py lower-cases the server's error text, subject included.
_VIOLATION = re.compile(r'permissions violation for (publish|subscription) to "([^"]*)"')
_counter = itertools.count(1)


@dataclass(frozen=True)
class Refusal:
    """One refused operation: ``publish`` or ``subscription`` to ``subject``."""

    serial: int
    operation: str
    subject: str
    user: str | None

    def describe(self) -> str:
        """Say what was refused, to whom, and where the permissions live."""
        who = f"user {self.user!r}" if self.user else "this connection's user"
        verb = "publish to" if self.operation == "publish" else "subscribe to"
        return (
            f"NATS refused: {who} has no permission to {verb} {self.subject!r} "
            "(the server's authorization config, deploy/nats/auth.conf, grants it per service)"
        )


class PermissionDenied(RuntimeError):
    """Raise when the server refused a publish or subscription of this connection."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.describe())
        self.refusal = refusal


_recent: deque[Refusal] = deque(maxlen=256)


def note(error_text: str, user: str | None) -> Refusal | None:
    """Record the refusal in a connection error's text; return it (None: not a refusal)."""
    found = _VIOLATION.search(error_text.lower())
    if found is None:
        return None
    refusal = Refusal(next(_counter), found.group(1), found.group(2), user)
    _recent.append(refusal)
    return refusal


def mark() -> int:
    """Return a mark to ask :func:`since` about refusals recorded after it."""
    return _recent[-1].serial if _recent else 0


def of_subject(subject: str) -> Refusal | None:
    """Return the latest refusal of a publish to ``subject``, if there was one."""
    wanted = subject.lower()
    for refusal in reversed(_recent):
        if refusal.operation == "publish" and refusal.subject == wanted:
            return refusal
    return None


def since(serial: int) -> Refusal | None:
    """Return the first refusal recorded after ``serial``, if any."""
    return next((r for r in _recent if r.serial > serial), None)
