"""``intentbus status`` over real processes: every service's heartbeat, a killed one gone."""

from __future__ import annotations

import asyncio

from typer.testing import CliRunner

from intentbus.command.app import build_app
from intentbus.testing import wait_for
from intentbus.testing.system import ProcessSystem

runner = CliRunner()


def _status_rows(system: ProcessSystem) -> dict[str, str]:
    """Return service name -> its row of the status table ('alive' or 'gone' in it)."""
    result = runner.invoke(build_app(), ["status", *system.common])
    assert result.exit_code == 0, result.output
    rows: dict[str, str] = {}
    for line in result.output.splitlines():
        cells = [c.strip() for c in line.strip("│┃ ").split("│")]
        if cells and cells[0] in {"executor", "ledger", "paper-venue"} and len(cells) > 2:
            rows.setdefault(cells[0], "")
            rows[cells[0]] += " " + cells[1]
    return rows


async def test_status_shows_every_service_and_a_killed_executor_as_gone_within_its_window(
    system: ProcessSystem,
) -> None:
    system.start_ledger()
    system.start_paper_venue()
    system.start_paper_executor("executor-1")

    async def rows() -> dict[str, str]:
        return await asyncio.to_thread(_status_rows, system)

    every = {"executor", "ledger", "paper-venue"}
    await wait_for(
        rows,
        until=lambda r: set(r) == every and all("alive" in v for v in r.values()),
        timeout_s=60.0,
        interval_s=0.5,
        what="every service alive in status",
    )
    system.processes.kill("executor-1")
    # heartbeats every 1 s; an instance is gone after 3 missed beats
    found = await wait_for(
        rows,
        until=lambda r: "gone" in r.get("executor", ""),
        timeout_s=6.0,
        interval_s=0.2,
        what="the killed executor shown as gone",
    )
    assert "alive" in found["ledger"]
    assert "alive" in found["paper-venue"]
