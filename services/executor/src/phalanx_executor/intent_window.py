"""How many intents this replica works on at once: the first batches of a fan-out go first.

Every step of an intent (queue entry, claim, lease, permit, send-time check, send) is a request
that waits in the same FIFO queues (the event loop, the NATS connection, the server) as the
same step of every other intent in flight. With a whole 1,000-account fan-out in flight, the
first intent's every step waits for that step of all the others, so the first order left only
after most of the fan-out's work was done (ADR-0165). The window admits batches in the order
they arrive while at most ``limit`` intents are in flight; the first batches run their steps in
short queues and reach the venue early, the rest follow as they finish. The total work is the
same, and it was already bound by the CPU, not by how many intents wait.

No batch can hold others back for long (ADR-0040, no signal stops another): a batch gives its
room back when it ends or after ``hold_s``, whichever comes first (a batch waiting for a
permit, a reversal or a reconciliation keeps working, outside the window). A batch larger than
the whole window is admitted alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator

__all__ = ["IntentWindow"]


class IntentWindow:
    """Admits batches first come, first served while at most ``limit`` intents are in flight.

    ``limit`` 0 admits everything at once (no window).
    """

    def __init__(self, limit: int, hold_s: float) -> None:
        self._limit = limit
        self._hold_s = hold_s
        self._used = 0
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    @property
    def in_flight(self) -> int:
        """Intents admitted and still counted against the window."""
        return self._used

    @property
    def waiting(self) -> int:
        """Batches waiting to be admitted."""
        return len(self._waiting)

    @contextlib.asynccontextmanager
    async def admit(self, size: int) -> AsyncIterator[None]:
        """Hold room for ``size`` intents while the body runs (at most ``hold_s``)."""
        if self._limit <= 0:
            yield
            return
        await self._enter(size)
        loop = asyncio.get_running_loop()
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._used -= size
                self._wake()

        timer = loop.call_later(self._hold_s, release)
        try:
            yield
        finally:
            timer.cancel()
            release()

    async def _enter(self, size: int) -> None:
        if not self._waiting and self._fits(size):
            self._used += size
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (size, future)
        self._waiting.append(entry)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._used -= size  # admitted as it was cancelled: give the room back
            else:
                self._waiting.remove(entry)
            self._wake()
            raise

    def _fits(self, size: int) -> bool:
        return self._used == 0 or self._used + size <= self._limit

    def _wake(self) -> None:
        while self._waiting and self._fits(self._waiting[0][0]):
            size, future = self._waiting.popleft()
            if future.done():
                continue
            self._used += size
            future.set_result(None)
