"""Secrets (the NATS password, a venue key) appear in no log line, message or dead letter.

The services run against a nats-server that requires a password, given both in
``NATS_PASSWORD`` and inside ``NATS_URL``, with a venue key in
``INTENTBUS_PAPER_API_KEY``, debug logging and spans printed by the console exporter.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from nats.js import JetStreamContext

from intentbus.bus import (
    BusSettings,
    LedgerUnavailable,
    PositionClient,
    Publisher,
    Topology,
    connect,
)
from intentbus.bus.embedded import EmbeddedNatsServer
from intentbus.cli.processes import ServiceProcesses
from intentbus.schemas import (
    ActionType,
    Direction,
    ExecutionResult,
    OpenPosition,
    build_intent,
    results_stream_decoder,
)
from intentbus.testing import wait_for
from intentbus.testing.system import ProcessSystem
from intentbus.venues.paper import create_executor

pytestmark = pytest.mark.timeout(120)

PASSWORD = "pw-Zq7-never-logged"
VENUE_KEY = "vk-0xdeadbeef-never-logged"
SECRETS = (PASSWORD, VENUE_KEY)


@pytest.fixture
def password_server(tmp_path: Path) -> Iterator[EmbeddedNatsServer]:
    server = EmbeddedNatsServer(
        str(tmp_path / "nats"), extra_args=("--user", "pm", "--pass", PASSWORD)
    )
    server.start()
    yield server
    server.cleanup()


def _with_credentials(url: str) -> str:
    return url.replace("nats://", f"nats://pm:{PASSWORD}@", 1)


async def _messages(js: JetStreamContext, stream: str) -> list[tuple[bytes, str]]:
    """Return each stored message's payload and headers."""
    info = await js.stream_info(stream)
    found = []
    if info.state.messages:
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            raw = await js.get_msg(stream, seq)
            found.append((raw.data or b"", repr(raw.headers)))
    return found


def test_settings_reprs_hide_secrets() -> None:
    settings = BusSettings(password=PASSWORD, token=VENUE_KEY)
    executor = create_executor({"api_key": VENUE_KEY})
    for text in (repr(settings), repr(getattr(executor, "options", None))):
        assert all(secret not in text for secret in SECRETS), text


async def test_no_secret_in_logs_messages_or_dead_letters(
    password_server: EmbeddedNatsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _with_credentials(password_server.url)
    monkeypatch.setenv("NATS_USER", "pm")
    monkeypatch.setenv("NATS_PASSWORD", PASSWORD)
    monkeypatch.setenv("INTENTBUS_PAPER_API_KEY", VENUE_KEY)
    monkeypatch.setenv("INTENTBUS_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    topology = Topology("secrets")
    with ServiceProcesses(tmp_path) as processes:
        system = ProcessSystem(url, topology, tmp_path, processes)
        system.start_ledger()
        system.start_paper_venue()
        system.start_paper_executor()
        nc = await connect(BusSettings.from_env(url, name="secrets-test"))
        js = nc.jetstream()
        try:
            positions = PositionClient(nc, topology, timeout_s=1.0)

            async def ledger_answers() -> bool:
                try:
                    await positions.list()
                except LedgerUnavailable:
                    return False
                return True

            await wait_for(ledger_answers, timeout_s=30, what="ledger")
            await positions.open(
                OpenPosition(
                    position_id="pos-secret", venue="paper", book_id="main",
                    token_contract="BTC", direction=Direction.LONG, allocation_usd=10_000.0,
                )
            )  # fmt: skip
            publisher = Publisher(js, topology)
            intent = build_intent(
                action=ActionType.ADD, size_frac=0.5, position_id="pos-secret",
                token_contract="BTC", token_chain="paper", book_id="main",
            )  # fmt: skip
            await publisher.intent(intent)
            subject = topology.intents_subject("paper", "main", "pos-secret")
            await publisher.raw(subject, b'{"schema":"intentbus.intent.v1"}', "bad-secret")

            async def final_result_and_dead_letter() -> int:
                decode = results_stream_decoder().decode
                finals = [
                    m for m in (decode(d) for d, _ in await _messages(js, topology.results_stream))
                    if isinstance(m, ExecutionResult)
                ]  # fmt: skip
                letters = (await js.stream_info(topology.dead_letter_stream)).state.messages
                return len(finals) + letters

            await wait_for(final_result_and_dead_letter, until=lambda n: n == 2, timeout_s=60)
            for stream in (
                topology.intents_stream, topology.results_stream, topology.fills_stream,
                topology.dead_letter_stream,
            ):  # fmt: skip
                for data, headers in await _messages(js, stream):
                    for secret in SECRETS:
                        assert secret.encode() not in data, data
                        assert secret not in headers, headers
        finally:
            await nc.drain()
        codes = processes.stop_all()
    assert set(codes.values()) == {0}, codes

    # A one-shot command that cannot connect names the server, its credentials masked.
    out = _tail_unreachable()
    assert out.returncode == 1
    assert "nats://***@127.0.0.1:1" in out.stdout + out.stderr

    logs = _logs(tmp_path)
    assert len(logs) == 3
    assert all(text.strip() for text in logs)  # debug lines and spans were written
    for text in [*logs, out.stdout, out.stderr]:
        for secret in SECRETS:
            assert secret not in text


def _tail_unreachable() -> subprocess.CompletedProcess[str]:
    unreachable = f"nats://pm:{PASSWORD}@127.0.0.1:1"
    return subprocess.run(
        [sys.executable, "-m", "intentbus.command.app", "tail", "intents", "--nats-url",
         unreachable],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "INTENTBUS_CONNECT_TIMEOUT_S": "1"},
    )  # fmt: skip


def _logs(folder: Path) -> list[str]:
    return [path.read_text(errors="replace") for path in folder.glob("*.log")]
