"""CPU seconds and resident memory of the system's processes, read from ``/proc`` (Linux).

A :class:`ProcMeter` knows each service's pid by name; :meth:`ProcMeter.cpu` reads user + system
CPU seconds of every one, :func:`cpu_delta` turns two readings into CPU seconds per service over
a scenario, and :meth:`ProcMeter.rss_mib` reads resident memory (for the soak). A process that
has exited reads as absent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ProcMeter", "cpu_delta"]

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds(pid: int) -> float | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the command name (which may hold spaces) start after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / _TICKS


def _rss_mib(pid: int) -> float | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


@dataclass
class ProcMeter:
    """Processes by service name (``{"executor-0": pid, ...}``)."""

    pids: dict[str, int]

    def cpu(self) -> dict[str, float]:
        """CPU seconds (user + system) used so far by each process still running."""
        found = {name: _cpu_seconds(pid) for name, pid in self.pids.items()}
        return {name: value for name, value in found.items() if value is not None}

    def rss_mib(self) -> dict[str, float]:
        """Resident memory of each process still running, in MiB."""
        found = {name: _rss_mib(pid) for name, pid in self.pids.items()}
        return {name: round(value, 1) for name, value in found.items() if value is not None}


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds each process used between two readings (``bench`` is this process)."""
    return {
        name: round(after[name] - before.get(name, 0.0), 2)
        for name in sorted(after)
        if name in before
    }
