"""A shared, exact rate limiter in Redis: a sliding-window log per key (ADR-0004).

One Lua script, run atomically on Redis's own clock, checks every window of every key an
action needs (e.g. a login's 70/min and 4,500/h plus the egress IP's budget) and records the
action in all of them only if all have room. "Never more than N in any rolling window" holds
across any number of replicas because the check-and-record is a single atomic step and time
comes from one clock. Penalties block a key for a while (``p-time``), lockouts for an hour.
Requests that arrive together go in one call of the script, which evaluates them one after
another (ADR-0180, :mod:`~phalanx_executor.permit_batches`).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from phalanx_executor.permit_batches import (
    ACQUIRE_MANY,
    PermitBatcher,
    PermitRequest,
    decode_reply,
    encode_call,
)

__all__ = ["Budget", "RateLimiter", "Window"]

_BLOCK = """
local ms = tonumber(ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -1 then return -1 end
if ttl < ms then
  redis.call('SET', KEYS[1], '1', 'PX', ms)
  return ms
end
return ttl
"""


@dataclass(frozen=True)
class Window:
    """At most ``limit`` actions in any rolling ``seconds``."""

    limit: int
    seconds: float


@dataclass(frozen=True)
class Budget:
    """A named key (a login, an egress IP) and its windows."""

    key: str
    windows: tuple[Window, ...]


class RateLimiter:
    """Permits from shared budgets in Redis; exact across replicas.

    Blocks (penalties, lockouts) only ever extend, in Redis and in this process's memory: a
    block stays known here even if Redis loses it. After Redis comes back empty, every window
    counts the requests it can no longer see as if they had been made (ADR-0056).
    """

    def __init__(self, redis: Redis, prefix: str = "phalanx:rl", batched: bool = True) -> None:
        self._redis = redis
        self._prefix = prefix
        self._script = redis.register_script(ACQUIRE_MANY)
        self._block_script = redis.register_script(_BLOCK)
        self._generation = ""
        self._blocked_until: dict[str, float] = {}  # budget key -> time.monotonic()
        self._batches = PermitBatcher(self._call)
        # ``batched=False``: one script call per request, all concurrent (the benchmark's floor
        # measures the per-intent work as one limiter call per intent; ADR-0180).
        self._batched = batched

    def _window_key(self, budget: Budget, window: Window) -> str:
        return f"{self._prefix}:{{{budget.key}}}:{int(window.seconds * 1000)}"

    def _block_key(self, budget: Budget) -> str:
        return f"{self._prefix}:{{{budget.key}}}:blocked"

    def _local_wait(self, budgets: Sequence[Budget]) -> float:
        now = time.monotonic()
        return max((self._blocked_until.get(b.key, 0.0) - now for b in budgets), default=0.0)

    async def try_acquire(self, budgets: Sequence[Budget], cost: int = 1) -> float:
        """Take ``cost`` permits from every budget at once, or none.

        Returns:
            0.0 when granted, else the seconds to wait before trying again.

        Raises:
            ValueError: if ``cost`` exceeds a window's limit (it could never be granted).
        """
        local = self._local_wait(budgets)
        if local > 0:
            return local
        windows = tuple(
            (self._window_key(budget, window), window.limit, int(window.seconds * 1000), group)
            for group, budget in enumerate(budgets)
            for window in budget.windows
        )
        blocks = tuple(self._block_key(b) for b in budgets)
        request = PermitRequest.of(cost, windows, blocks)
        if self._batched:
            granted, wait_ms = await self._batches.submit(request)
        else:
            [(granted, wait_ms)] = await self._call([request])
        if granted == -1:
            raise ValueError(f"cost {cost} exceeds a window's limit; it can never be granted")
        return 0.0 if granted == 1 else max(wait_ms, 1) / 1000.0

    async def _call(self, requests: Sequence[PermitRequest]) -> list[tuple[int, int]]:
        """One script call for ``requests``, in order; the generation check is per call."""
        shared = [f"{self._prefix}:seq", f"{self._prefix}:generation", f"{self._prefix}:lost"]
        keys, args = encode_call(shared, self._generation, secrets.token_hex(8), requests)
        reply = decode_reply(await self._script(keys=keys, args=args))
        self._generation = reply.generation
        return reply.results

    async def acquire(self, budgets: Sequence[Budget], cost: int = 1) -> float:
        """Wait until ``cost`` permits are granted from every budget; return the seconds waited."""
        waited = 0.0
        while True:
            wait = await self.try_acquire(budgets, cost)
            if wait == 0.0:
                return waited
            await asyncio.sleep(wait)
            waited += wait

    async def block(self, budget: Budget, seconds: float) -> None:
        """Stop all permits from ``budget`` for ``seconds`` (a venue penalty or lockout).

        A block only ever extends: a short penalty never shortens a running lockout. It takes
        effect in this process at once (before Redis answers), so this replica's waiters are held
        back even while the request to Redis is in flight or Redis is away.
        """
        until = time.monotonic() + seconds
        if until > self._blocked_until.get(budget.key, 0.0):
            self._blocked_until[budget.key] = until
        await self._block_script(keys=[self._block_key(budget)], args=[max(1, int(seconds * 1000))])

    async def blocked_for(self, budget: Budget) -> float:
        """Seconds the budget stays blocked (0 when it is not), here or in Redis."""
        ttl = await self._redis.pttl(self._block_key(budget))
        return max(max(0, int(ttl)) / 1000.0, self._local_wait([budget]))

    async def usage(self, budget: Budget) -> list[tuple[Window, int]]:
        """How many permits each window of ``budget`` has recorded in its last span (on
        Redis's clock; for display: it does not count requests a lost Redis forgot)."""
        seconds, micros = await self._redis.time()
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        used: list[tuple[Window, int]] = []
        for window in budget.windows:
            since = now_ms - int(window.seconds * 1000)
            count = await self._redis.zcount(self._window_key(budget, window), f"({since}", "+inf")
            used.append((window, int(count)))
        return used
