"""Structured logs: JSON when stderr is not a terminal, each line with its intent and trace.

The intent being handled is a context variable (:func:`intent_scope`), the trace the
current OpenTelemetry span's; :class:`ContextFilter` puts both on every record and
:class:`RedactionFilter` masks secrets (:mod:`intentbus.telemetry.redact`) in the message
and the traceback before any handler formats them.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TextIO

from opentelemetry import trace

from intentbus.telemetry.redact import add_secrets_from_env, scrub

_intent_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "intentbus_intent_id", default=None
)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s%(context)s"


def current_intent_id() -> str | None:
    """Return the id of the intent being handled in this context, if any."""
    return _intent_id.get()


@contextmanager
def intent_scope(intent_id: str | None) -> Iterator[None]:
    """Mark every log line inside (and every task started inside) with the intent's id."""
    if intent_id is None:
        yield
        return
    token = _intent_id.set(intent_id)
    try:
        yield
    finally:
        _intent_id.reset(token)


def current_trace_id() -> str | None:
    """Return the current span's trace id (32 hex digits), or None outside a trace."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return trace.format_trace_id(context.trace_id)


class ContextFilter(logging.Filter):
    """Add ``intent_id``, ``trace_id`` and ``span_id`` to every record (None outside)."""

    def filter(self, record: logging.LogRecord) -> bool:
        intent_id = _intent_id.get()
        trace_id = span_id = None
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            trace_id = trace.format_trace_id(context.trace_id)
            span_id = trace.format_span_id(context.span_id)
        record.__dict__.update(intent_id=intent_id, trace_id=trace_id, span_id=span_id)
        parts = [f"{k}={v}" for k, v in (("intent_id", intent_id), ("trace_id", trace_id)) if v]
        record.__dict__["context"] = f" [{' '.join(parts)}]" if parts else ""
        return True


class RedactionFilter(logging.Filter):
    """Mask secrets in the message, its arguments and its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep the raw message
            message = str(record.msg)
        record.msg, record.args = scrub(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, intent and trace ids."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("intent_id", "trace_id", "span_id"):
            value = getattr(record, key, None)
            if value:
                entry[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str)


def wants_json(stream: object = None) -> bool:
    """JSON unless ``INTENTBUS_LOG_FORMAT=text`` or the stream is a terminal."""
    chosen = os.environ.get("INTENTBUS_LOG_FORMAT", "").strip().lower()
    if chosen in ("json", "text"):
        return chosen == "json"
    target = stream if stream is not None else sys.stderr
    isatty = getattr(target, "isatty", None)
    return not (callable(isatty) and isatty())


def configure_logging(level: str | None = None, stream: TextIO | None = None) -> logging.Handler:
    """Log to ``stream`` (stderr) at ``level`` (default ``INTENTBUS_LOG_LEVEL`` or WARNING).

    Replaces the handler an earlier call installed; secrets are masked.
    """
    add_secrets_from_env()
    stream = stream if stream is not None else sys.stderr
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactionFilter())
    handler.setFormatter(JsonFormatter() if wants_json(stream) else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_intentbus", False)]:
        root.removeHandler(old)
    handler._intentbus = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel((level or os.environ.get("INTENTBUS_LOG_LEVEL") or "WARNING").upper())
    return handler
