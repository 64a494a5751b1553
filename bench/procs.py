"""Child processes of a stage: start, wait until ready, stop by pid, keep their logs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Return the environment of a child: ours plus ``extra``, with the repository importable."""
    paths = [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, **(extra or {}), "PYTHONPATH": os.pathsep.join(paths)}


class ChildFailed(RuntimeError):
    """Raise when a child exits early or never becomes ready."""


class Child:
    """One child process running ``python -m MODULE ARGS``; stderr goes to a log file."""

    def __init__(self, name: str, log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.env = dict(env or {})  # set on top of this process's environment
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        """Return the child's process id."""
        if self._proc is None:
            raise ChildFailed(f"{self.name} was not started")
        return self._proc.pid

    @property
    def running(self) -> bool:
        """Say whether the child is still running."""
        return self._proc is not None and self._proc.returncode is None

    async def start(self, module: str, *args: str, stdout_pipe: bool = False) -> None:
        """Start the child; with ``stdout_pipe`` its stdout can be read line by line."""
        with self.log_path.open("ab") as log:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                module,
                *args,
                stdout=asyncio.subprocess.PIPE if stdout_pipe else log,
                stderr=log,
                env=child_env(self.env),
            )

    async def read_line(self, timeout_s: float) -> str:
        """Return the next stdout line; raise :class:`ChildFailed` on timeout or exit."""
        if self._proc is None or self._proc.stdout is None:
            raise ChildFailed(f"{self.name} has no stdout pipe")
        try:
            line = await asyncio.wait_for(self._proc.stdout.readline(), timeout_s)
        except TimeoutError:
            raise ChildFailed(f"{self.name} said nothing in {timeout_s}s{self.tail()}") from None
        if not line:
            await self._proc.wait()
            raise ChildFailed(f"{self.name} exited ({self._proc.returncode}){self.tail()}")
        return line.decode().strip()

    async def wait(self, timeout_s: float) -> int:
        """Wait for the child to exit and return its code."""
        if self._proc is None:
            return 0
        return await asyncio.wait_for(self._proc.wait(), timeout_s)

    async def stop(self, timeout_s: float = 10.0) -> int | None:
        """Stop the child (SIGTERM, then SIGKILL) and return its exit code."""
        proc = self._proc
        if proc is None:
            return None
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout_s)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        return proc.returncode

    def tail(self, lines: int = 15) -> str:
        """Return the end of the child's log, for error messages."""
        if not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return ("\n--- " + self.name + " log ---\n" + "\n".join(text)) if text else ""


async def stop_all(children: list[Child]) -> None:
    """Stop every child, most recently started first."""
    for child in reversed(children):
        await child.stop()
