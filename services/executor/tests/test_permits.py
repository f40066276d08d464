"""Priority permits in front of the shared limiter (real Redis)."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from phalanx_executor.permits import Permits, Priority
from phalanx_executor.ratelimit import Budget, RateLimiter, Window

pytestmark = pytest.mark.integration


async def test_waiters_arriving_while_the_budget_is_short_are_all_served_exits_first(
    redis_url: str,
) -> None:
    client = aioredis.from_url(redis_url)
    permits = Permits(RateLimiter(client))
    budget = [Budget("login:p", (Window(1, 0.2),))]
    order: list[str] = []

    async def take(name: str, priority: Priority, delay: float) -> None:
        await asyncio.sleep(delay)
        await permits.acquire(budget, priority)
        order.append(name)

    try:
        await permits.acquire(budget, Priority.ENTRY)  # uses up the window
        # entries queue first; an exit arrives while the pump is waiting on Redis
        await asyncio.wait_for(
            asyncio.gather(
                take("entry-1", Priority.ENTRY, 0.0),
                take("entry-2", Priority.ENTRY, 0.0),
                take("entry-3", Priority.ENTRY, 0.0),
                take("exit", Priority.PROTECT, 0.05),
            ),
            timeout=10,
        )
    finally:
        await client.aclose()
    assert sorted(order) == ["entry-1", "entry-2", "entry-3", "exit"]  # nobody was lost
    assert order.index("exit") < order.index("entry-3")
    assert order.index("entry-1") < order.index("entry-2") < order.index("entry-3")
