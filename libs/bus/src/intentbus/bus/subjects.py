"""Subjects, stream names and bucket names, optionally under a namespace.

Production uses the empty namespace: ``intents.<venue>.<book>``, stream ``INTENTS``.
A namespace (tests, tenants) prefixes every subject (``ns.intents...``) and every stream
or bucket name (``NS_INTENTS``), so several systems share one server without overlap.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

_TOKEN = re.compile(r"^[A-Za-z0-9_=-]{1,64}$")
_POSITION = re.compile(r"^[A-Za-z0-9_=-]{1,128}$")
# Intents are stored on ``intents.<venue>.<book>.<partition>.<position>``: the INTENTS
# stream's subject transform inserts ``partition`` = a hash of the position id modulo
# this count. Changing it moves positions between partitions: drain the executors first.
INTENT_PARTITIONS = 16
_NAMESPACE = re.compile(r"^[A-Za-z0-9_-]{0,32}$")


class InvalidSubjectToken(ValueError):
    """Raise when a venue, book or other id cannot be a subject token."""


def check_token(kind: str, value: str) -> str:
    """Return ``value`` if it is a safe subject token, else raise with a clear message."""
    if not isinstance(value, str) or not _TOKEN.fullmatch(value):
        raise InvalidSubjectToken(
            f"{kind} {value!r} is not a safe subject token: use 1-64 of letters, digits, "
            "'_', '-', '=' (no '.', '*', '>' or whitespace)"
        )
    return value


@dataclass(frozen=True)
class Topology:
    """Name every subject, stream, consumer and bucket the system uses."""

    namespace: str = ""

    def __post_init__(self) -> None:
        if not _NAMESPACE.fullmatch(self.namespace):
            raise InvalidSubjectToken(
                f"namespace {self.namespace!r} must be up to 32 letters, digits, '_' or '-'"
            )

    @classmethod
    def from_env(cls, namespace: str | None = None) -> Topology:
        """Use ``namespace`` or ``INTENTBUS_NAMESPACE`` (empty for production names)."""
        return cls(
            namespace if namespace is not None else os.environ.get("INTENTBUS_NAMESPACE", "")
        )

    def _subject(self, *tokens: str) -> str:
        prefix = f"{self.namespace}." if self.namespace else ""
        return prefix + ".".join(tokens)

    def _name(self, base: str) -> str:
        return f"{self.namespace.upper().replace('-', '_')}_{base}" if self.namespace else base

    # streams -----------------------------------------------------------------
    @property
    def intents_stream(self) -> str:
        """Return the name of the stream holding every intent."""
        return self._name("INTENTS")

    @property
    def results_stream(self) -> str:
        """Return the name of the stream holding every result."""
        return self._name("RESULTS")

    @property
    def dead_letter_stream(self) -> str:
        """Return the name of the stream holding refused messages."""
        return self._name("DEADLETTER")

    @property
    def fills_stream(self) -> str:
        """Return the name of the stream holding every venue fill."""
        return self._name("FILLS")

    @property
    def marks_stream(self) -> str:
        """Return the name of the stream holding mark prices (last per symbol)."""
        return self._name("MARKS")

    @property
    def candles_stream(self) -> str:
        """Return the name of the stream holding closed candles (retained, replayable)."""
        return self._name("CANDLES")

    @property
    def drift_stream(self) -> str:
        """Return the name of the stream holding reconciliation drift (kept, with history)."""
        return self._name("DRIFT")

    def bucket(self, base: str) -> str:
        """Return the name of a KV bucket."""
        return self._name(check_token("bucket", base))

    # subjects ----------------------------------------------------------------
    def intents_subject(self, venue: str, book: str, position_id: str) -> str:
        """Return the subject an intent for this position is published on.

        The stream stores it as :meth:`stored_intents_subject`, with the position's
        partition inserted by the server.
        """
        if not isinstance(position_id, str) or not _POSITION.fullmatch(position_id):
            raise InvalidSubjectToken(
                f"position_id {position_id!r} is not subject-safe: use 1-128 of letters, "
                "digits, '_', '-', '='"
            )
        return self._subject(
            "intents", check_token("venue", venue), check_token("book", book), position_id
        )

    def intents_published_filter(self) -> str:
        """Return the subjects the INTENTS stream accepts (before the partition transform)."""
        return self._subject("intents", "*", "*", "*")

    def intents_partition_transform(self, partitions: int = INTENT_PARTITIONS) -> tuple[str, str]:
        """Return the INTENTS stream's (source, destination) subject transform."""
        dest = self._subject(
            "intents",
            "{{wildcard(1)}}",
            "{{wildcard(2)}}",
            f"{{{{partition({partitions},3)}}}}",
            "{{wildcard(3)}}",
        )
        return self.intents_published_filter(), dest

    def intents_partition_filter(self, venue: str, partition: int, book: str | None = None) -> str:
        """Return the stored subjects of one partition of a venue's (or book's) intents."""
        return self._subject(
            "intents",
            check_token("venue", venue),
            check_token("book", book) if book is not None else "*",
            str(int(partition)),
            "*",
        )

    def intent_partition_of(self, stored_subject: str) -> int:
        """Return the partition token of a stored intent subject."""
        tokens = stored_subject.split(".")
        return int(tokens[-2])

    def results_subject(self, venue: str, book: str) -> str:
        """Return the subject results for ``venue``/``book`` are published on."""
        return self._subject("results", check_token("venue", venue), check_token("book", book))

    def intents_filter(self, venue: str | None = None, book: str | None = None) -> str:
        """Return the filter for all stored intents, one venue's, or one book's."""
        if venue is None:
            return self._subject("intents", ">")
        if book is None:
            return self._subject("intents", check_token("venue", venue), ">")
        return self._subject("intents", check_token("venue", venue), check_token("book", book), ">")

    def results_filter(self, venue: str | None = None, book: str | None = None) -> str:
        """Return the filter for all results, one venue's, or one book's."""
        if venue is None:
            return self._subject("results", ">")
        if book is None:
            return self._subject("results", check_token("venue", venue), ">")
        return self.results_subject(venue, book)

    def fills_subject(self, venue: str, book: str) -> str:
        """Return the subject fills for ``venue``/``book`` are published on."""
        return self._subject("fills", check_token("venue", venue), check_token("book", book))

    def fills_filter(self, venue: str | None = None, book: str | None = None) -> str:
        """Return the filter for all fills, one venue's, or one book's."""
        if venue is None:
            return self._subject("fills", ">")
        if book is None:
            return self._subject("fills", check_token("venue", venue), ">")
        return self.fills_subject(venue, book)

    def dead_letter_subject(self, stream: str, consumer: str) -> str:
        """Return the dead-letter subject for messages ``consumer`` of ``stream`` refused."""
        return self._subject(
            "deadletter", check_token("stream", stream), check_token("consumer", consumer)
        )

    def dead_letter_filter(self) -> str:
        """Return the filter for every dead letter."""
        return self._subject("deadletter", ">")

    def marks_subject(self, venue: str, symbol: str) -> str:
        """Return the subject the mark prices of ``symbol`` on ``venue`` go to."""
        return self._subject("marks", check_token("venue", venue), check_token("symbol", symbol))

    def marks_filter(self, venue: str | None = None) -> str:
        """Return the filter for every mark, or one venue's."""
        if venue is None:
            return self._subject("marks", ">")
        return self._subject("marks", check_token("venue", venue), ">")

    def candles_subject(self, venue: str, symbol: str, timeframe: str) -> str:
        """Return the subject closed candles of ``symbol`` on ``venue`` at ``timeframe`` go to."""
        return self._subject(
            "candles",
            check_token("venue", venue),
            check_token("symbol", symbol),
            check_token("timeframe", timeframe),
        )

    def candles_filter(
        self, venue: str | None = None, symbol: str | None = None, timeframe: str | None = None
    ) -> str:
        """Return the filter for every candle, or one venue's, symbol's or timeframe's."""
        return self._subject(
            "candles",
            check_token("venue", venue) if venue is not None else "*",
            check_token("symbol", symbol) if symbol is not None else "*",
            check_token("timeframe", timeframe) if timeframe is not None else "*",
        )

    def drift_subject(self, venue: str, book: str, symbol: str) -> str:
        """Return the subject drift of ``symbol`` in ``venue``/``book`` goes to.

        The symbol's characters that cannot be in a subject token become ``_``.
        """
        token = re.sub(r"[^A-Za-z0-9_=-]", "_", symbol)[:64] or "_"
        return self._subject("drift", check_token("venue", venue), check_token("book", book), token)

    def drift_filter(self, venue: str | None = None, book: str | None = None) -> str:
        """Return the filter for every drift, or one venue's, or one book's."""
        return self._subject(
            "drift",
            check_token("venue", venue) if venue is not None else "*",
            check_token("book", book) if book is not None else "*",
            "*",
        )

    def ledger_subject(self, operation: str) -> str:
        """Return the request/reply subject of a ledger operation (``get``, ``list``, ``open``)."""
        return self._subject("ledger", "positions", check_token("operation", operation))
