"""``phalanx-bench --profile``: where each executor replica's CPU goes during a fan-out.

The README's account of what limits the fan-outs rests on a profile; this makes that profile
something anyone can take on their own machine. While a fan-out runs, ``py-spy record`` samples
every executor replica (200 Hz, ``--nonblocking``: the process is never paused), writing py-spy's
raw format (one line per distinct stack, ``frame;frame;... count``). Each sample is then put in
the first category of :data:`CATEGORIES` one of whose markers appears in its stack: the step of
an intent it belongs to (claim, account queue, permit, send, ...) or the shared machinery (the
NATS client's reader and flusher, the venue sockets' frames). What matches nothing is counted
by the function it was in.

py-spy reads another process's memory: it needs ptrace permission (root, ``CAP_SYS_PTRACE`` or
``kernel.yama.ptrace_scope`` 0). Without it the report says why and the fan-out's numbers are
unaffected.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["CATEGORIES", "Profiler", "categorize"]

# (category, markers): a sample goes to the first category with a marker in its stack, so the
# steps of an intent come before the machinery they use.
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("planner", ("planning.py", "planner.py", "signal_consumer.py")),
    ("account queue: enter", ("AccountOrder.enter (",)),
    ("account queue: turn read", ("AccountOrder.enter_and_ahead",)),
    ("account queue: leave", ("AccountOrder.leave", "AccountOrder.drop")),
    ("claim create", ("IntentStore.claim",)),
    ("send-time claim check", ("IntentStore.verify", "BatchWorker._still_owner")),
    ("claim move", ("IntentStore.move",)),
    ("outcome publish", ("OutcomeEvents.",)),
    ("permit", ("_IntentSend.permit", "SendChecks.permit_before_deadline", "PermitBatcher")),
    ("venue send", ("VenueSteps._send",)),
    ("claim lease", ("ClaimLeases.",)),
    ("venue events in: frames and view", ("TradovateSocket._read", "phalanx_tradovate/frames.py")),
    ("position and decision", ("VenueView.", "decisions.py", "Gates.")),
    ("fill outbox", ("FillOutbox.",)),
    ("NATS client: reading", ("Client._read_loop", "Parser.parse")),
    ("NATS client: writing, and uvloop after it", ("Client._flusher",)),
    ("consumer loop", ("consumer_loop.py", "pull_fetch.py")),
    ("worker, other", ("BatchWorker.",)),
    ("Redis client", ("redis/",)),
)
_EVENT_LOOP = "event loop (I/O wait and callbacks)"


def categorize(lines: Iterable[str]) -> tuple[int, dict[str, float]]:
    """The samples in py-spy raw ``lines`` and each category's share of them, largest first.

    A sample in no category is counted as ``other: <function>`` of its innermost frame; one whose
    innermost frame is the event loop's run call (py-spy sees no Python frame inside uvloop's
    C code) as the event loop.
    """
    counts: Counter[str] = Counter()
    for line in lines:
        stack, _, number = line.rstrip("\n").rpartition(" ")
        if not stack or not number.isdigit():
            continue
        samples = int(number)
        counts[_category(stack)] += samples
    total = sum(counts.values())
    if total == 0:
        return 0, {}
    shares = {name: round(n / total, 4) for name, n in counts.most_common()}
    return total, shares


def _category(stack: str) -> str:
    for name, markers in CATEGORIES:
        if any(marker in stack for marker in markers):
            return name
    innermost = stack.rsplit(";", 1)[-1]
    function = innermost.split(" (", 1)[0]
    if function == "Runner.run" or not function:
        return _EVENT_LOOP
    return f"other: {function}"


class Profiler:
    """py-spy on some processes, from :meth:`start` to :meth:`stop`."""

    def __init__(self, pids: Mapping[str, int], directory: Path, label: str) -> None:
        self._pids = dict(pids)
        self._directory = directory
        self._label = label
        self._running: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}

    @staticmethod
    def executable() -> str | None:
        """py-spy beside this interpreter (the bench's venv), else on the PATH."""
        beside = Path(sys.executable).with_name("py-spy")
        return str(beside) if beside.exists() else shutil.which("py-spy")

    def start(self) -> None:
        """Start sampling every process (nothing when py-spy is not installed)."""
        spy = self.executable()
        if spy is None:
            return
        self._directory.mkdir(parents=True, exist_ok=True)
        for name, pid in self._pids.items():
            raw = self._directory / f"{self._label}-{name}.raw"
            command = [spy, "record", "-p", str(pid), "-r", "200", "--format", "raw"]
            command += ["--nonblocking", "-o", str(raw)]
            proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            self._running[name] = (proc, raw)

    def stop(self) -> dict[str, Any]:
        """Stop sampling; per process, its samples and category shares (or why there are none)."""
        if self.executable() is None:
            return {"error": "py-spy is not installed (make install puts it in the venv)"}
        report: dict[str, Any] = {}
        for name, (proc, raw) in self._running.items():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # py-spy writes what it sampled, then exits
            try:
                _, err = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
            if not raw.exists():
                reason = err.decode(errors="replace").strip().splitlines()
                report[name] = {
                    "error": reason[-1] if reason else f"py-spy exited {proc.returncode}"
                }
                continue
            with raw.open() as lines:
                samples, shares = categorize(lines)
            report[name] = {"samples": samples, "raw": str(raw), "shares": shares}
        self._running.clear()
        return report
