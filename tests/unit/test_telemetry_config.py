"""Telemetry without a server: configuration from OTEL_* variables, redaction, log format."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from intentbus import telemetry
from intentbus.telemetry import exporters
from intentbus.telemetry.logs import configure_logging

SECRET = "s3cr3t-unit-never-shown"


def test_off_by_default_and_the_standard_variables_turn_it_on() -> None:
    assert exporters("traces", {}) == ()
    assert exporters("metrics", {}) == ()
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
    assert exporters("traces", endpoint) == ("otlp",)
    assert exporters("metrics", endpoint) == ("otlp",)
    assert exporters("traces", {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c"}) == ("otlp",)
    assert exporters("traces", {"OTEL_TRACES_EXPORTER": "console"}) == ("console",)
    assert exporters("traces", {"OTEL_TRACES_EXPORTER": "otlp,console"}) == ("otlp", "console")
    assert exporters("traces", {**endpoint, "OTEL_TRACES_EXPORTER": "none"}) == ()
    assert exporters("traces", {**endpoint, "OTEL_SDK_DISABLED": "true"}) == ()


def test_trace_context_round_trips_through_headers() -> None:
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with telemetry.resumed(parent, intent_id="i-1"):
        assert telemetry.current_trace_id() == "0af7651916cd43dd8448eb211c80319c"
        assert telemetry.current_intent_id() == "i-1"
        headers = telemetry.inject({})
        assert headers["traceparent"] == parent  # no SDK: the context passes through as is
        assert telemetry.current_traceparent() == parent
    assert telemetry.current_trace_id() is None
    assert telemetry.current_intent_id() is None
    assert telemetry.trace_id_of(parent) == "0af7651916cd43dd8448eb211c80319c"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure_logging("DEBUG", stream)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def test_secrets_are_masked_in_messages_arguments_urls_and_tracebacks(
    captured: io.StringIO,
) -> None:
    telemetry.add_secret(SECRET)
    log = logging.getLogger("intentbus.test")
    log.warning("password is %s", SECRET)
    log.warning("connecting to nats://pm:other-pw@host:4222 and nats://tok@host:4223")
    try:
        raise RuntimeError(f"auth failed with {SECRET}")
    except RuntimeError:
        log.exception("failed")
    text = captured.getvalue()
    assert SECRET not in text
    assert "other-pw" not in text
    assert "tok@" not in text
    assert "nats://***@host:4222" in text
    assert text.count("***") >= 4
    assert telemetry.scrub(f"x {SECRET} y") == "x *** y"


def test_json_lines_carry_the_intent_and_trace_ids(captured: io.StringIO) -> None:
    # a StringIO is no terminal: JSON lines
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with telemetry.resumed(parent, intent_id="intent-42"):
        logging.getLogger("intentbus.test").info("placing")
    logging.getLogger("intentbus.test").info("outside")
    inside, outside = (json.loads(line) for line in captured.getvalue().splitlines())
    assert inside["intent_id"] == "intent-42"
    assert inside["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert inside["message"] == "placing"
    assert inside["level"] == "INFO"
    assert "intent_id" not in outside
    assert "trace_id" not in outside


def test_text_format_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTENTBUS_LOG_FORMAT", "text")
    stream = io.StringIO()
    handler = configure_logging("INFO", stream)
    try:
        with telemetry.intent_scope("intent-7"):
            logging.getLogger("intentbus.test").info("hello")
    finally:
        logging.getLogger().removeHandler(handler)
    assert "hello [intent_id=intent-7]" in stream.getvalue()
