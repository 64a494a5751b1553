"""Connecting with credentials: user/password (also from a file) and token."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
import trustme

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


@pytest.fixture
def tls_files(tmp_path: Path) -> dict[str, str]:
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("intentbus-client")
    paths = {
        "ca": tmp_path / "ca.pem",
        "server_cert": tmp_path / "server.pem",
        "server_key": tmp_path / "server.key",
        "client_cert": tmp_path / "client.pem",
        "client_key": tmp_path / "client.key",
    }
    ca.cert_pem.write_to_path(str(paths["ca"]))
    server.private_key_pem.write_to_path(str(paths["server_key"]))
    server.cert_chain_pems[0].write_to_path(str(paths["server_cert"]))
    client.private_key_pem.write_to_path(str(paths["client_key"]))
    client.cert_chain_pems[0].write_to_path(str(paths["client_cert"]))
    return {name: str(path) for name, path in paths.items()}


async def test_mutual_tls(tls_files: dict[str, str]) -> None:
    args = (
        "--tlsverify",
        "--tlscert",
        tls_files["server_cert"],
        "--tlskey",
        tls_files["server_key"],
        "--tlscacert",
        tls_files["ca"],
    )
    with EmbeddedNatsServer(extra_args=args) as server:
        url = server.url.replace("nats://", "tls://")
        env = {
            "NATS_TLS_CA": tls_files["ca"],
            "NATS_TLS_CERT": tls_files["client_cert"],
            "NATS_TLS_KEY": tls_files["client_key"],
        }
        nc = await connect(BusSettings.from_env(url, env=env))
        assert nc.is_connected
        await nc.jetstream().account_info()
        await nc.close()
        with pytest.raises((ConnectionError, ssl.SSLError)):  # no client cert: dropped
            await nats.connect(
                url,
                tls=BusSettings.from_env(url, env={"NATS_TLS_CA": tls_files["ca"]}).tls_context(),
                allow_reconnect=False,
                connect_timeout=2,
            )
