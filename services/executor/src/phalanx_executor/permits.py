"""Priority over the shared budget: when a login's budget is short, exits and cancels go first.

The Redis limiter (ADR-0004) decides *whether* a request may go now; this module decides *which*
of this replica's waiting requests of one login asks first. A login lives on one replica
(ADR-0003), so ordering its waiters here orders all of its traffic. Requests of different
logins never wait for each other.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections.abc import Sequence
from enum import IntEnum

from phalanx_executor.metrics import ExecutorMetrics
from phalanx_executor.ratelimit import Budget, RateLimiter

__all__ = ["Permits", "Priority"]

log = logging.getLogger(__name__)


class Priority(IntEnum):
    """Lower goes first."""

    PROTECT = 0  # exits, cancels, kill switch
    RECONCILE = 1  # lookups that resolve unknown outcomes
    ENTRY = 2


class Permits:
    """Per-login priority queues in front of the shared limiter.

    ``metrics`` records each permit's wait per login and priority (a private registry when
    none is given); :class:`~phalanx_executor.venue_calls.VenueCalls` records penalties and
    lockouts on the same object.
    """

    def __init__(self, limiter: RateLimiter, metrics: ExecutorMetrics | None = None) -> None:
        self._limiter = limiter
        self.metrics = metrics or ExecutorMetrics()
        self._queues: dict[str, list[tuple[int, int, Sequence[Budget], asyncio.Future[None]]]] = {}
        self._pumps: dict[str, asyncio.Task[None]] = {}
        self._seq = itertools.count()

    async def acquire(self, budgets: Sequence[Budget], priority: Priority) -> None:
        """Wait for a permit from every budget; higher priority waiters of the login go first.

        Raises:
            Exception: whatever the limiter raises (e.g. Redis unreachable: fail closed).
        """
        key = budgets[0].key
        seq = next(self._seq)  # arrival order, fixed before any await: FIFO within a priority
        started = time.monotonic()
        if key not in self._queues and await self._limiter.try_acquire(budgets) == 0.0:
            self._record(key, priority, started)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._queues.setdefault(key, []), (priority, seq, budgets, fut))
        if key not in self._pumps:
            self._pumps[key] = asyncio.create_task(self._pump(key), name=f"permits:{key}")
        await fut
        self._record(key, priority, started)

    def _record(self, key: str, priority: Priority, started: float) -> None:
        login = key.removeprefix("login:")  # BudgetBook: a login's own budget comes first
        self.metrics.permit_waited(login, priority.name.lower(), time.monotonic() - started)

    async def block(self, budget: Budget, seconds: float) -> None:
        """Block ``budget`` for ``seconds`` (only ever extends); every waiter of it is held back
        at once, including the pumps of other logins that share it (an IP budget)."""
        await self._limiter.block(budget, seconds)

    async def blocked_for(self, budget: Budget) -> float:
        """Seconds ``budget`` stays blocked (0: not blocked)."""
        return await self._limiter.blocked_for(budget)

    async def _pump(self, key: str) -> None:
        queue = self._queues[key]
        try:
            while queue:
                # Take the head out while asking Redis: waiters that arrive meanwhile (maybe of
                # higher priority) go into the heap without displacing it.
                entry = heapq.heappop(queue)
                _, _, budgets, fut = entry
                if fut.cancelled():
                    continue
                try:
                    wait = await self._limiter.try_acquire(budgets)
                except Exception as exc:
                    if not fut.done():
                        fut.set_exception(exc)
                    continue
                if wait == 0.0:
                    if not fut.done():
                        fut.set_result(None)
                else:
                    heapq.heappush(queue, entry)
                    await asyncio.sleep(wait)
        finally:
            del self._queues[key]
            del self._pumps[key]
