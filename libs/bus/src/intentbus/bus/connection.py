"""Connection settings and ``connect()``: URL plus user/password, token, creds file or TLS."""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field

import nats
from nats.aio.client import Client

from intentbus import telemetry
from intentbus.bus import refusals
from intentbus.telemetry import instruments

DEFAULT_URL = "nats://127.0.0.1:4222"
log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class BusSettings:
    """Say how to reach NATS. Secrets come from env or files, never from messages."""

    servers: tuple[str, ...] = (DEFAULT_URL,)
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    creds_file: str | None = None
    tls_ca_file: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    name: str = "intentbus"

    @classmethod
    def from_env(
        cls,
        url: str | None = None,
        *,
        name: str = "intentbus",
        env: Mapping[str, str] | None = None,
    ) -> BusSettings:
        """Read settings from ``NATS_*`` variables; ``url`` overrides ``NATS_URL``."""
        source = os.environ if env is None else env
        raw_url = url or source.get("NATS_URL") or DEFAULT_URL
        servers = tuple(part.strip() for part in raw_url.split(",") if part.strip())
        password = source.get("NATS_PASSWORD")
        password_file = source.get("NATS_PASSWORD_FILE")
        if password_file:
            with open(password_file, encoding="utf-8") as handle:
                password = handle.read().strip()
        token = source.get("NATS_TOKEN")
        token_file = source.get("NATS_TOKEN_FILE")
        if token_file:
            with open(token_file, encoding="utf-8") as handle:
                token = handle.read().strip()
        telemetry.add_secret(password)  # never in a log line, whatever logs it
        telemetry.add_secret(token)
        return cls(
            servers=servers,
            user=source.get("NATS_USER"),
            password=password,
            token=token,
            creds_file=source.get("NATS_CREDS"),
            tls_ca_file=source.get("NATS_TLS_CA"),
            tls_cert_file=source.get("NATS_TLS_CERT"),
            tls_key_file=source.get("NATS_TLS_KEY"),
            name=name,
        )

    def tls_context(self) -> ssl.SSLContext | None:
        """Build the TLS context when a CA or client certificate is configured."""
        if not (self.tls_ca_file or self.tls_cert_file):
            return None
        context = ssl.create_default_context(cafile=self.tls_ca_file)
        if self.tls_cert_file:
            context.load_cert_chain(self.tls_cert_file, self.tls_key_file)
        return context


async def connect(settings: BusSettings) -> Client:
    """Connect with unlimited reconnects so a server restart does not end a service.

    Connection trouble is logged as one line per event, without a traceback.
    """
    servers = telemetry.scrub(", ".join(settings.servers))

    async def on_error(exc: Exception) -> None:
        refusal = refusals.note(str(exc), settings.user)
        if refusal is not None:
            log.error("%s", refusal.describe())
            return
        log.warning("NATS %s: %s", servers, exc or type(exc).__name__)

    opened: list[Client] = []

    async def on_disconnected() -> None:
        if opened and (opened[0].is_closed or opened[0].is_draining):
            return  # our own drain/close, not trouble
        instruments.disconnects().add(1)
        log.warning("disconnected from NATS %s; reconnecting", servers)

    async def on_reconnected() -> None:
        instruments.reconnects().add(1)
        log.warning("reconnected to NATS %s", servers)

    client = await nats.connect(
        servers=list(settings.servers),
        name=settings.name,
        user=settings.user,
        password=settings.password,
        token=settings.token,
        user_credentials=settings.creds_file,
        tls=settings.tls_context(),
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        connect_timeout=5,
        error_cb=on_error,
        disconnected_cb=on_disconnected,
        reconnected_cb=on_reconnected,
    )
    opened.append(client)
    instruments.reconnects().add(0)  # the series exists (at 0) before the first one
    instruments.disconnects().add(0)
    return client
