#!/usr/bin/env python3
"""Set up and run intentbus on a fresh machine with nothing but Python 3.11+.

    python3 dev.py demo     # the demo: embedded NATS, ledger and paper executor
    python3 dev.py test     # the test suite against a real nats-server
    python3 dev.py check    # ruff, import-linter's layers and mypy --strict
    python3 dev.py bench    # benchmarks
    python3 dev.py docker   # a local Docker engine, the service images, local stand-ins
    python3 dev.py uv ...   # any uv command with the project's uv

It finds uv on PATH, or installs it with pip into ./.tools (a private venv), then lets
uv install the locked workspace into ./.venv. Extra arguments go to the command.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
TOOLS = ROOT / ".tools"
COMMANDS = {
    "demo": ["run", "--locked", "intentbus", "demo"],
    "test": ["run", "--locked", "pytest"],
    "bench": ["run", "--locked", "python", "-m", "bench"],
}


def find_uv() -> str:
    """Return a uv executable, installing one into ./.tools when none is on PATH."""
    found = shutil.which("uv")
    if found:
        return found
    bin_dir = TOOLS / ("Scripts" if os.name == "nt" else "bin")
    uv = bin_dir / "uv"
    if not uv.exists():
        print("dev.py: installing uv into .tools/ (one time)", file=sys.stderr, flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(TOOLS)
        subprocess.run(
            [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "uv"], check=True
        )
    return str(uv)


def docker(uv: str) -> int:
    """Start a local engine, build the base, service images and stand-ins (skip what exists).

    On a machine with no image registry (see deploy/local/); steps print their progress.
    """
    code = subprocess.call(["bash", str(ROOT / "deploy/local/engine.sh")])
    if code:
        return code
    env = {**os.environ, "UV": uv}
    return subprocess.call(["bash", str(ROOT / "deploy/local/images.sh")], env=env)


def main(argv: list[str]) -> int:
    """Run the named command."""
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may run on an older python3
        print("intentbus needs Python 3.11 or newer", file=sys.stderr)
        return 2
    if not argv or argv[0] not in {*COMMANDS, "check", "docker", "uv"}:
        print(__doc__)
        return 2
    uv = find_uv()
    name, extra = argv[0], argv[1:]
    os.chdir(ROOT)
    if name == "uv":
        return subprocess.call([uv, *extra])
    if name == "docker":
        return docker(uv)
    if name == "check":
        steps = (
            ["ruff", "check", "."],
            ["ruff", "format", "--check", "."],
            ["lint-imports", "--no-logo"],  # the layers in pyproject's [tool.importlinter]
            ["mypy"],
        )
        for step in steps:
            code = subprocess.call([uv, "run", "--locked", *step])
            if code:
                return code
        return 0
    return subprocess.call([uv, *COMMANDS[name], *extra])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
