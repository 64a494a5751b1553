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

    def start_ledger(self, name: str = "ledger") -> None:
        """Start a ledger process with its own SQLite file."""
        db = self.workdir / f"{name}.sqlite3"
        self.processes.start(name, "ledger", "--db", str(db), *self.common)

    def start_paper_executor(self, name: str = "executor", prices: str = "BTC:65000") -> None:
        """Start a paper executor process (replicas share the venue's durable consumer)."""
        self.processes.start(
            name, "executor", "--venue", "paper", "--option", f"prices={prices}", *self.common
        )
