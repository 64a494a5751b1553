"""A real nats-server with the deployment's users and permissions, passwords made per test."""

from __future__ import annotations

import re
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from intentbus.bus.embedded import EmbeddedNatsServer

# ``password: $INTENTBUS_NATS_EXECUTOR_PAPER_PASSWORD`` is user ``executor-paper``.
_PASSWORD_VAR = re.compile(r"\$(INTENTBUS_NATS_([A-Z_]+)_PASSWORD)\b")


@dataclass
class SecuredServer:
    """The server, and each user's password (fresh random ones, never committed)."""

    server: EmbeddedNatsServer
    passwords: dict[str, str] = field(repr=False)

    @property
    def url(self) -> str:
        """Return the server's URL."""
        return self.server.url

    def env_of(self, user: str) -> dict[str, str]:
        """Return the ``NATS_USER``/``NATS_PASSWORD`` a process of ``user`` runs with."""
        return {"NATS_USER": user, "NATS_PASSWORD": self.passwords[user]}


def start_secured(auth_conf: Path, workdir: Path) -> SecuredServer:
    """Start JetStream with ``auth_conf`` included as it is; give every user a password."""
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copy(auth_conf, workdir / "auth.conf")
    (workdir / "nats.conf").write_text("include auth.conf\n")
    env: dict[str, str] = {}
    passwords: dict[str, str] = {}
    for variable, name in _PASSWORD_VAR.findall(auth_conf.read_text()):
        password = "pw" + secrets.token_hex(16)  # nats-server reads a leading digit as a number
        env[variable] = password
        passwords[name.lower().replace("_", "-")] = password
    server = EmbeddedNatsServer(
        str(workdir / "server"), extra_args=("-c", str(workdir / "nats.conf")), env=env
    )
    server.start()
    return SecuredServer(server=server, passwords=passwords)
