"""A local Docker engine and a compose stack on it, for the docker tests.

``ensure_engine`` runs ``python3 dev.py docker`` (install and start the engine when
missing, build the local base, the service images and the NATS/PostgreSQL stand-ins);
every step it finds done is skipped, so a re-run takes seconds.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

LOCAL_NATS_IMAGE = "local/nats:latest"


def ensure_engine(root: Path) -> None:
    """Make the engine answer and every image exist (progress on stderr, minutes at first)."""
    subprocess.run([sys.executable, str(root / "dev.py"), "docker"], cwd=root, check=True)


def compose_command() -> list[str]:
    """Return the compose CLI: docker-compose (v1.29, Debian's) or the docker plugin."""
    found = shutil.which("docker-compose")
    return [found] if found else ["docker", "compose"]


def free_port() -> int:
    """Return a TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# the users of deploy/nats/auth.conf, whose passwords compose passes from the environment
NATS_USERS = (
    "operator",
    "pm",
    "executor-paper",
    "executor-hyperliquid",
    "paper-venue",
    "ledger",
    "feed",
)


def _password_variable(user: str) -> str:
    return f"INTENTBUS_NATS_{user.upper().replace('-', '_')}_PASSWORD"


@dataclass
class ComposeStack:
    """One compose project of the repository's docker-compose.yml, on free host ports."""

    root: Path
    env_file: Path
    overrides: dict[str, str] = field(default_factory=dict)
    profiles: tuple[str, ...] = ()
    project: str = field(default_factory=lambda: "ib" + uuid.uuid4().hex[:10])
    nats_port: int = field(default_factory=free_port)

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            NATS_PORT=str(self.nats_port),
            NATS_MONITOR_PORT=str(free_port()),
            POSTGRES_PASSWORD=env.get("POSTGRES_PASSWORD") or secrets.token_hex(16),
        )
        for user in NATS_USERS:  # a fresh password per stack, starting with a letter
            env[_password_variable(user)] = "p" + secrets.token_hex(16)
        env.update(self.overrides)
        return env

    def __post_init__(self) -> None:
        self._environment = self._env()  # one password for up, restarts and down

    @property
    def nats_url(self) -> str:
        """Return the URL of the stack's NATS from the host."""
        return f"nats://127.0.0.1:{self.nats_port}"

    def credentials(self, user: str) -> dict[str, str]:
        """Return ``NATS_USER``/``NATS_PASSWORD`` of one of the stack's NATS users."""
        return {"NATS_USER": user, "NATS_PASSWORD": self._environment[_password_variable(user)]}

    def compose(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run one compose command on this project; raise with its output on failure."""
        command = [*compose_command(), "-p", self.project, "--env-file", str(self.env_file)]
        for profile in self.profiles:
            command += ["--profile", profile]
        done = subprocess.run(
            [*command, *args],
            cwd=self.root,
            env=self._environment,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode:
            raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
        return done

    def up(self) -> None:
        """Start every default service (compose waits on the health checks in between)."""
        self.compose("up", "-d", "--no-build")

    def down(self) -> None:
        """Remove the containers, the network and the volumes."""
        self.compose("down", "-v", "--remove-orphans", "--timeout", "5")

    @contextlib.contextmanager
    def running(self) -> Iterator[ComposeStack]:
        """Bring the stack up; always print its logs (shown when a test fails) and take it down."""
        try:
            self.up()
            yield self
        finally:
            try:
                print(self.logs())
            finally:
                self.down()

    def containers(self, service: str) -> list[str]:
        """Return the ids of a service's containers (one per replica)."""
        return self.compose("ps", "-q", service).stdout.split()

    def logs(self) -> str:
        """Return every container's log (for a failing test's report)."""
        return self.compose("logs", "--no-color", "--tail", "200").stdout


def docker(*args: str) -> str:
    """Run a docker CLI command; return its output, raise with it on failure."""
    done = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"docker {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout
