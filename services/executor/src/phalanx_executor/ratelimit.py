"""A shared, exact rate limiter in Redis: a sliding-window log per key (ADR-0004).

One Lua script, run atomically on Redis's own clock, checks every window of every key an
action needs (e.g. a login's 70/min and 4,500/h plus the egress IP's budget) and records the
action in all of them only if all have room. "Never more than N in any rolling window" holds
across any number of replicas because the check-and-record is a single atomic step and time
comes from one clock. Penalties block a key for a while (``p-time``), lockouts for an hour.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

__all__ = ["Budget", "RateLimiter", "Window"]

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cost = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local wait = 0
for i = n + 2, #KEYS do
  local ttl = redis.call('PTTL', KEYS[i])
  if ttl > wait then wait = ttl end
end
if wait > 0 then return {0, wait} end
for i = 1, n do
  local limit = tonumber(ARGV[1 + 2 * i])
  local window = tonumber(ARGV[2 + 2 * i])
  local key = KEYS[i + 1]
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  if count + cost > limit then
    if cost > limit then return {-1, 0} end
    local idx = count + cost - limit - 1
    local oldest = redis.call('ZRANGE', key, idx, idx, 'WITHSCORES')
    local w = tonumber(oldest[2]) + window - now + 1
    if w > wait then wait = w end
  end
end
if wait > 0 then return {0, wait} end
local seq = redis.call('INCRBY', KEYS[1], cost)
for i = 1, n do
  local key = KEYS[i + 1]
  for c = 1, cost do
    redis.call('ZADD', key, now, now .. ':' .. (seq - c))
  end
  redis.call('PEXPIRE', key, tonumber(ARGV[2 + 2 * i]))
end
return {1, 0}
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
    """Permits from shared budgets in Redis; exact across replicas."""

    def __init__(self, redis: Redis, prefix: str = "phalanx:rl") -> None:
        self._redis = redis
        self._prefix = prefix
        self._script = redis.register_script(_ACQUIRE)

    def _window_key(self, budget: Budget, window: Window) -> str:
        return f"{self._prefix}:{{{budget.key}}}:{int(window.seconds * 1000)}"

    def _block_key(self, budget: Budget) -> str:
        return f"{self._prefix}:{{{budget.key}}}:blocked"

    async def try_acquire(self, budgets: Sequence[Budget], cost: int = 1) -> float:
        """Take ``cost`` permits from every budget at once, or none.

        Returns:
            0.0 when granted, else the seconds to wait before trying again.

        Raises:
            ValueError: if ``cost`` exceeds a window's limit (it could never be granted).
        """
        keys = [f"{self._prefix}:seq"]
        args: list[int] = [cost, 0]
        for budget in budgets:
            for window in budget.windows:
                keys.append(self._window_key(budget, window))
                args += [window.limit, int(window.seconds * 1000)]
        args[1] = len(keys) - 1
        keys += [self._block_key(b) for b in budgets]
        granted, wait_ms = await self._script(keys=keys, args=args)
        if int(granted) == -1:
            raise ValueError(f"cost {cost} exceeds a window's limit; it can never be granted")
        return 0.0 if int(granted) == 1 else max(int(wait_ms), 1) / 1000.0

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
        """Stop all permits from ``budget`` for ``seconds`` (a venue penalty or lockout)."""
        await self._redis.set(self._block_key(budget), "1", px=max(1, int(seconds * 1000)))

    async def blocked_for(self, budget: Budget) -> float:
        """Seconds the budget stays blocked (0 when it is not)."""
        ttl = await self._redis.pttl(self._block_key(budget))
        return max(0, int(ttl)) / 1000.0
