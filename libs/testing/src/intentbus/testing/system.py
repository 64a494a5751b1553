"""A whole intentbus system as separate processes, for end-to-end tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from intentbus.bus import Topology
from intentbus.cli.processes import ServiceProcesses


@dataclass
class ProcessSystem:
    """The processes of one test's system and how to reach them."""

    nats_url: str
    topology: Topology
    workdir: Path
    processes: ServiceProcesses

    @property
    def common(self) -> list[str]:
        """Return the connection flags every command takes."""
        return ["--nats-url", self.nats_url, "--namespace", self.topology.namespace]

    def start_ledger(self, name: str = "ledger", *, env: dict[str, str] | None = None) -> None:
        """Start a ledger process with its own SQLite file (``env``: e.g. its NATS user)."""
        db = self.workdir / f"{name}.sqlite3"
        self.processes.start(name, "ledger", "--db", str(db), *self.common, env=env)

    def start_paper_venue(
        self,
        name: str = "paper-venue",
        prices: str = "BTC:65000",
        *options: str,
        env: dict[str, str] | None = None,
    ) -> None:
        """Start the paper venue server process (``intentbus paper-venue``)."""
        flags = [flag for option in options for flag in ("--option", option)]
        self.processes.start(
            name, "paper-venue", "--option", f"prices={prices}", *flags, *self.common, env=env
        )

    def start_paper_executor(
        self, name: str = "executor", *, env: dict[str, str] | None = None
    ) -> None:
        """Start a paper executor process (replicas split the venue's intent partitions)."""
        self.processes.start(name, "executor", "--venue", "paper", *self.common, env=env)
