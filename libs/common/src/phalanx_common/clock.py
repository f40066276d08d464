"""An injected clock so that time can be faked in tests."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

__all__ = ["Clock", "LiveClock"]


class Clock(Protocol):
    """What services ask of time."""

    def time_ns(self) -> int:
        """Wall-clock nanoseconds since the epoch."""
        ...

    def monotonic(self) -> float:
        """Monotonic seconds, for durations."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait for ``seconds``."""
        ...


class LiveClock:
    """The real clock."""

    def time_ns(self) -> int:
        """Wall-clock nanoseconds since the epoch."""
        return time.time_ns()

    def monotonic(self) -> float:
        """Monotonic seconds."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Wait for ``seconds`` on the event loop."""
        await asyncio.sleep(seconds)
