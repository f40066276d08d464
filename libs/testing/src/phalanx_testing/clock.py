"""A fake clock that tests move by hand."""

from __future__ import annotations

import asyncio

__all__ = ["FakeClock"]


class FakeClock:
    """Time that passes only when :meth:`advance` is called; sleepers wake as it passes."""

    def __init__(self, start_ns: int = 1_767_225_600_000_000_000) -> None:
        self._now_ns = start_ns
        self._mono = 0.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def time_ns(self) -> int:
        """Fake wall clock."""
        return self._now_ns

    def monotonic(self) -> float:
        """Fake monotonic seconds."""
        return self._mono

    async def sleep(self, seconds: float) -> None:
        """Wait until the clock is advanced past ``seconds`` from now."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._mono + max(0.0, seconds), fut))
        await fut

    async def advance(self, seconds: float) -> None:
        """Move time forward and wake every sleeper whose deadline passed."""
        self._mono += seconds
        self._now_ns += int(seconds * 1_000_000_000)
        due = [f for t, f in self._sleepers if t <= self._mono]
        self._sleepers = [(t, f) for t, f in self._sleepers if t > self._mono]
        for fut in due:
            if not fut.done():
                fut.set_result(None)
        await asyncio.sleep(0)
