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


async def test_a_short_penalty_never_shortens_a_running_lockout(redis_url: str) -> None:
    clients = [aioredis.from_url(redis_url) for _ in range(2)]
    locked_out, penalised = (RateLimiter(c) for c in clients)  # two replicas
    budget = Budget("login:e", (Window(100, 60),))
    try:
        await locked_out.block(budget, 3600)
        await penalised.block(budget, 2)  # a p-time seen by another replica afterwards
        assert await penalised.try_acquire([budget]) > 0
        # in Redis (what every replica sees) the lockout still runs
        assert await RateLimiter(clients[1]).try_acquire([budget]) > 3000
        assert await RateLimiter(clients[0]).blocked_for(budget) > 3000
    finally:
        for c in clients:
            await c.aclose()


async def test_a_block_holds_back_this_replica_even_when_redis_lost_it(redis_url: str) -> None:
    client = aioredis.from_url(redis_url)
    limiter = RateLimiter(client)
    budget = Budget("login:f", (Window(100, 60),))
    try:
        await limiter.block(budget, 30)
        await client.flushall()  # Redis came back empty
        assert 25 < await limiter.try_acquire([budget]) <= 30
    finally:
        await client.aclose()


async def test_after_redis_lost_its_windows_each_is_full_but_a_long_one_only_as_shorter_allow(
    redis_url: str,
) -> None:
    client = aioredis.from_url(redis_url)
    limiter = RateLimiter(client)
    minute_hour = Budget("login:g", (Window(5, 2.0), Window(60, 20.0)))
    other = Budget("login:h", (Window(5, 2.0),))
    try:
        assert await limiter.try_acquire([minute_hour]) == 0.0  # the limiter knows this Redis
        await client.flushall()  # ...which restarts empty
        first = await limiter.try_acquire([minute_hour])
        assert 1.5 < first <= 2.01  # the short window counts as full until it has passed
        assert 1.5 < await limiter.try_acquire([other]) <= 2.01  # every budget, seen or not
        await asyncio.sleep(first)
        # the long window's unseen part held at most 5 per 2 s (45 < 60): it does not stop
        granted = [await limiter.try_acquire([minute_hour]) for _ in range(6)]
        assert granted[:5] == [0.0] * 5
        assert granted[5] > 0
    finally:
        await client.aclose()


async def test_a_new_limiter_on_an_empty_redis_starts_at_once(redis_url: str) -> None:
    client = aioredis.from_url(redis_url)
    try:
        assert await RateLimiter(client).try_acquire([Budget("login:i", (Window(5, 60),))]) == 0
    finally:
        await client.aclose()


async def test_usage_counts_each_windows_permits_and_blocked_for_shows_a_penalty(
    redis_url: str,
) -> None:
    client = aioredis.from_url(redis_url)
    limiter = RateLimiter(client)
    budget = Budget("login:usage", (Window(5, 60), Window(100, 3600)))
    idle = Budget("login:idle", (Window(5, 60),))
    try:
        assert [used for _, used in await limiter.usage(budget)] == [0, 0]
        for _ in range(3):
            assert await limiter.try_acquire([budget]) == 0.0
        assert await limiter.try_acquire([budget], cost=2) == 0.0
        assert await limiter.try_acquire([budget]) > 0  # the minute is full: not recorded
        usage = await limiter.usage(budget)
        assert [(w.limit, used) for w, used in usage] == [(5, 5), (100, 5)]
        assert [used for _, used in await limiter.usage(idle)] == [0]
        assert await limiter.blocked_for(idle) == 0
        await limiter.block(idle, 30)
        assert 0 < await limiter.blocked_for(idle) <= 30
    finally:
        await client.aclose()
