"""Connecting with credentials: user/password (also from a file) and token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import nats
import pytest

from intentbus.bus import BusSettings, connect
from intentbus.bus.embedded import EmbeddedNatsServer


@pytest.fixture
def password_server() -> Iterator[str]:
    with EmbeddedNatsServer(extra_args=("--user", "pm", "--pass", "s3cret-pw")) as server:
        yield server.url


@pytest.fixture
def token_server() -> Iterator[str]:
    with EmbeddedNatsServer(extra_args=("--auth", "tok-123")) as server:
        yield server.url


async def test_user_and_password_from_env_and_file(password_server: str, tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret-pw\n")
    for env in (
        {"NATS_USER": "pm", "NATS_PASSWORD": "s3cret-pw"},
        {"NATS_USER": "pm", "NATS_PASSWORD_FILE": str(secret)},
    ):
        nc = await connect(BusSettings.from_env(password_server, env=env))
        assert nc.is_connected
        await nc.close()


async def test_wrong_password_is_refused(password_server: str) -> None:
    with pytest.raises(Exception, match=r"[Aa]uthorization"):
        await nats.connect(
            password_server,
            user="pm",
            password="wrong",
            allow_reconnect=False,
            connect_timeout=2,
        )


async def test_token(token_server: str) -> None:
    nc = await connect(BusSettings.from_env(token_server, env={"NATS_TOKEN": "tok-123"}))
    assert nc.is_connected
    await nc.close()


def test_secrets_are_not_in_the_settings_repr() -> None:
    settings = BusSettings.from_env(
        "nats://h:4222", env={"NATS_PASSWORD": "s3cret-pw", "NATS_TOKEN": "tok-123"}
    )
    assert "s3cret-pw" not in repr(settings)
    assert "tok-123" not in repr(settings)
