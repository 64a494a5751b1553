"""The engine's set-up can run again at once: what it leaves running holds none of its locks."""

from __future__ import annotations

import fcntl
import subprocess
from pathlib import Path

ENGINE_LOCK = Path("/tmp/intentbus-engine.lock")


def test_the_set_up_leaves_its_lock_free_for_the_next_run(docker_engine: Path) -> None:
    # dockerd, started by the set-up, once inherited the lock's descriptor and kept it:
    # the next run (CI's, then the test fixture's) waited on it for ever
    with ENGINE_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError while held
        fcntl.flock(lock, fcntl.LOCK_UN)


def test_a_second_set_up_finds_everything_done(docker_engine: Path) -> None:
    done = subprocess.run(
        ["bash", str(docker_engine / "deploy" / "local" / "engine.sh")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
