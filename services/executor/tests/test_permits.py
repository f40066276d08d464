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


async def test_waiters_of_a_blocked_login_are_served_exits_first_when_the_block_ends(
    redis_url: str,
) -> None:
    """A penalty or lockout blocks a login; when it ends, its exits go before its entries."""
    client = aioredis.from_url(redis_url)
    permits = Permits(RateLimiter(client))
    budget = [Budget("login:locked", (Window(2, 1.0),))]
    order: list[str] = []

    async def take(name: str, priority: Priority, delay: float) -> None:
        await asyncio.sleep(delay)
        await permits.acquire(budget, priority)
        order.append(name)

    try:
        await permits.block(budget[0], 0.5)
        # entries queue first; exits arrive later, while the login is still blocked
        await asyncio.wait_for(
            asyncio.gather(
                take("entry-1", Priority.ENTRY, 0.0),
                take("entry-2", Priority.ENTRY, 0.0),
                take("exit-1", Priority.PROTECT, 0.1),
                take("exit-2", Priority.PROTECT, 0.1),
            ),
            timeout=20,
        )
    finally:
        await client.aclose()
    # the budget has room for two once the block ends: both exits get it
    assert order[:2] == ["exit-1", "exit-2"], order
    assert sorted(order[2:]) == ["entry-1", "entry-2"], order
