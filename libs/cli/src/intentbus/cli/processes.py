"""Start intentbus services as child processes and stop every one of them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import TracebackType


class ServiceProcesses:
    """Run ``intentbus <command>`` children; logs go to files in ``log_dir``."""

    def __init__(self, log_dir: Path) -> None:
        self._log_dir = log_dir
        self._children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> None:
        """Start ``intentbus ARGS`` as a child process named ``name``."""
        log = (self._log_dir / f"{name}.log").open("wb")
        command = [sys.executable, "-m", "intentbus.command.app", *args]
        child = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        log.close()
        self._children.append((name, child))

    def failed(self) -> list[str]:
        """Return the names of children that already exited."""
        return [name for name, child in self._children if child.poll() is not None]

    def log_tail(self, name: str, lines: int = 20) -> str:
        """Return the last lines of a child's log."""
        path = self._log_dir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self, name: str) -> int:
        """SIGKILL one child (as a crash would) and return its exit code."""
        for entry in list(self._children):
            if entry[0] == name:
                entry[1].kill()
                self._children.remove(entry)
                return entry[1].wait()
        raise KeyError(f"no child named {name!r}")

    def stop(self, name: str, timeout_s: float = 10.0) -> int:
        """Stop one child (SIGTERM, then SIGKILL) and return its exit code."""
        for entry in list(self._children):
            if entry[0] == name:
                self._children.remove(entry)
                entry[1].send_signal(signal.SIGTERM)
                try:
                    return entry[1].wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    entry[1].kill()
                    return entry[1].wait()
        raise KeyError(f"no child named {name!r}")

    def stop_all(self, timeout_s: float = 10.0) -> dict[str, int]:
        """Stop every child (SIGTERM, then SIGKILL) and return their exit codes."""
        for _, child in self._children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        codes = {}
        for name, child in self._children:
            try:
                codes[name] = child.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                child.kill()
                codes[name] = child.wait()
        self._children.clear()
        return codes

    def __enter__(self) -> ServiceProcesses:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()
