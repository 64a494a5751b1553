"""Peak RSS of service processes: psutil samples plus the kernel's high-water mark.

A sampler task reads each process's RSS (children included) every ``interval_s`` and
keeps the peak of the current window; on Linux the kernel's ``VmHWM`` (peak RSS since
the process started, never missed between samples) is read at the end of a window too.
The figure reported is the larger of the two. Each window also records the CPU time
(user + system, children included) each process used in it, as a share of one core.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

MB = 1024.0 * 1024.0


def rss_bytes(pid: int, children: bool = True) -> int:
    """Return the RSS of ``pid`` and (unless told not to) its children (0 when it is gone)."""
    try:
        proc = psutil.Process(pid)
        total = int(proc.memory_info().rss)
        for child in proc.children(recursive=True) if children else []:
            with contextlib.suppress(psutil.Error):
                total += int(child.memory_info().rss)
        return total
    except psutil.Error:
        return 0


def cpu_seconds(pid: int, children: bool = True) -> float:
    """Return the CPU time (user + system) of ``pid`` and its children so far (0 when gone)."""
    try:
        proc = psutil.Process(pid)
        total = sum(proc.cpu_times()[:2])
        for child in proc.children(recursive=True) if children else []:
            with contextlib.suppress(psutil.Error):
                total += sum(child.cpu_times()[:2])
        return float(total)
    except psutil.Error:
        return 0.0


def high_water_bytes(pid: int) -> int:
    """Return the kernel's peak RSS (``VmHWM``) of ``pid``, or 0 where unavailable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return 0
    return 0


@dataclass
class RssSampler:
    """Sample the RSS of named processes into named windows."""

    pids: dict[str, int]
    interval_s: float = 0.1
    alone: frozenset[str] = frozenset()  # measured without their children (the bench itself)
    window: str = ""
    peaks: dict[str, dict[str, int]] = field(default_factory=dict)
    cpu: dict[str, dict[str, float]] = field(default_factory=dict)
    wall: dict[str, float] = field(default_factory=dict)  # window -> its length, seconds
    _cpu_start: dict[str, float] = field(default_factory=dict)
    _wall_start: float = 0.0

    def start_window(self, name: str) -> None:
        """Start collecting peaks under ``name``."""
        self.window = name
        self.peaks.setdefault(name, dict.fromkeys(self.pids, 0))
        self._cpu_start = {name: self._cpu(name, pid) for name, pid in self.pids.items()}
        self._wall_start = time.monotonic()
        self.sample()

    def end_window(self) -> None:
        """Close the window, folding in the kernel's high-water mark."""
        if not self.window:
            return
        self.sample()
        peaks = self.peaks[self.window]
        for name, pid in self.pids.items():
            peaks[name] = max(peaks[name], high_water_bytes(pid))
        wall = time.monotonic() - self._wall_start
        self.wall[self.window] = wall
        if wall > 0:
            self.cpu[self.window] = {
                name: 100.0 * (self._cpu(name, pid) - self._cpu_start.get(name, 0.0)) / wall
                for name, pid in self.pids.items()
            }
        self.window = ""

    def sample(self) -> None:
        """Take one sample of every process into the open window."""
        if not self.window:
            return
        peaks = self.peaks[self.window]
        for name, pid in self.pids.items():
            peaks[name] = max(peaks[name], rss_bytes(pid, children=name not in self.alone))

    def _cpu(self, name: str, pid: int) -> float:
        return cpu_seconds(pid, children=name not in self.alone)

    async def run(self, stop: asyncio.Event) -> None:
        """Sample until ``stop`` is set."""
        while not stop.is_set():
            self.sample()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval_s)

    def peak_mb(self, window: str) -> dict[str, float]:
        """Return the peak RSS in MB of every process in ``window``."""
        return {name: value / MB for name, value in self.peaks.get(window, {}).items()}
