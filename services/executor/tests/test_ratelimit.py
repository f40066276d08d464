"""The shared Redis limiter against a real redis-server."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from phalanx_executor.ratelimit import Budget, RateLimiter, Window

pytestmark = pytest.mark.integration


async def test_concurrent_replicas_never_get_more_than_the_limit_in_a_window(
    redis_url: str,
) -> None:
    clients = [aioredis.from_url(redis_url) for _ in range(4)]
    limiters = [RateLimiter(c) for c in clients]
    budget = Budget("login:a", (Window(7, 60),))
    try:
        waits = await asyncio.gather(*(limiters[i % 4].try_acquire([budget]) for i in range(40)))
        granted = [w for w in waits if w == 0.0]
        assert len(granted) == 7
        assert all(0 < w <= 60.001 for w in waits if w != 0.0)
    finally:
        for c in clients:
            await c.aclose()


async def test_every_window_must_have_room_and_a_denied_request_records_nothing(
    redis_url: str,
) -> None:
    client = aioredis.from_url(redis_url)
    limiter = RateLimiter(client)
    minute_hour = Budget("login:b", (Window(5, 60), Window(3, 3600)))
    other = Budget("login:c", (Window(5, 60),))
    try:
        results = [await limiter.try_acquire([minute_hour]) for _ in range(5)]
        assert results[:3] == [0.0, 0.0, 0.0]
        assert all(r > 0 for r in results[3:])
        # the denied requests did not use up another key's budget
        assert [await limiter.try_acquire([other]) for _ in range(5)] == [0.0] * 5
        assert await limiter.try_acquire([other, minute_hour]) > 0
        assert await limiter.try_acquire([other]) > 0  # other was full anyway
    finally:
        await client.aclose()


async def test_a_denied_multi_budget_request_takes_nothing_from_the_budget_with_room(
    redis_url: str,
) -> None:
    client = aioredis.from_url(redis_url)
    limiter = RateLimiter(client)
    full = Budget("login:full", (Window(1, 60),))
    roomy = Budget("ip:x", (Window(2, 60),))
    try:
        assert await limiter.try_acquire([full]) == 0.0
        assert await limiter.try_acquire([roomy, full]) > 0
        assert [await limiter.try_acquire([roomy]) for _ in range(3)][:2] == [0.0, 0.0]
    finally:
        await client.aclose()


async def test_a_blocked_budget_grants_nothing_until_the_block_ends(redis_url: str) -> None:
    client = aioredis.from_url(redis_url)
    limiter = RateLimiter(client)
    budget = Budget("login:d", (Window(100, 60),))
    try:
        await limiter.block(budget, 30)
        wait = await limiter.try_acquire([budget])
        assert 25 < wait <= 30
        assert 25 < await limiter.blocked_for(budget) <= 30
    finally:
        await client.aclose()


async def test_a_cost_above_the_limit_is_refused_as_impossible(redis_url: str) -> None:
    client = aioredis.from_url(redis_url)
    try:
        with pytest.raises(ValueError, match="can never be granted"):
            await RateLimiter(client).try_acquire([Budget("k", (Window(2, 60),))], cost=3)
    finally:
        await client.aclose()
