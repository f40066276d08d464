"""The limiter's window arithmetic against a real redis-server, over a table of budgets.

A burst of requests, all inside every window (the shortest window here is a minute, far longer
than the burst), must be granted exactly as a counting model says: a request is granted when
every window of every budget it draws on still has room for its cost, and a denied request
records nothing. A denied request is told to wait, never longer than its longest full window.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from phalanx_executor.ratelimit import Budget, RateLimiter, Window

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture
async def limiter(redis_url: str) -> AsyncIterator[RateLimiter]:
    client = aioredis.from_url(redis_url)
    try:
        yield RateLimiter(client)
    finally:
        await client.aclose()


def _model(
    requests: list[tuple[tuple[Budget, ...], int]],
) -> list[bool]:
    """Granted or not, request by request, counting every window of every budget."""
    used: dict[tuple[str, float], int] = {}
    out: list[bool] = []
    for budgets, cost in requests:
        room = all(
            used.get((b.key, w.seconds), 0) + cost <= w.limit for b in budgets for w in b.windows
        )
        if room:
            for b in budgets:
                for w in b.windows:
                    used[(b.key, w.seconds)] = used.get((b.key, w.seconds), 0) + cost
        out.append(room)
    return out


LOGIN_A = Budget("login:a", (Window(7, 60), Window(10, 3600)))
LOGIN_B = Budget("login:b", (Window(4, 60),))
IP = Budget("ip:1", (Window(9, 120),))


@pytest.mark.parametrize(
    ("windows", "cost", "n"),
    [
        ((Window(5, 60),), 1, 8),
        ((Window(5, 60),), 2, 5),  # 2 + 2 granted, then 4 + 2 > 5
        ((Window(6, 60),), 3, 4),
        ((Window(70, 60), Window(4500, 3600)), 1, 75),  # Tradovate's budget: the minute binds
        ((Window(70, 60), Window(5, 3600)), 1, 9),  # a tighter hour binds first
        ((Window(3, 60), Window(3, 120)), 1, 5),  # equal limits: both full at once
    ],
)
async def test_one_budget_grants_what_its_tightest_window_allows(
    limiter: RateLimiter, windows: tuple[Window, ...], cost: int, n: int
) -> None:
    budget = Budget("login:x", windows)
    waits = [await limiter.try_acquire([budget], cost) for _ in range(n)]
    expected = _model([((budget,), cost)] * n)
    assert [w == 0.0 for w in waits] == expected
    full_for = max(w.seconds for w in windows)
    assert all(0 < w <= full_for + 0.001 for w in waits if w != 0.0)


@pytest.mark.parametrize(
    "order",
    [
        [(LOGIN_A, IP)] * 6 + [(LOGIN_B, IP)] * 5,
        [(LOGIN_B, IP)] * 5 + [(LOGIN_A, IP)] * 6,
        [(LOGIN_A, IP), (LOGIN_B, IP)] * 6,
        [(LOGIN_A,)] * 8 + [(LOGIN_A, IP)] * 2 + [(IP,)] * 10,
    ],
    ids=["a-then-b", "b-then-a", "interleaved", "login-alone-then-shared"],
)
async def test_budgets_shared_through_the_ip_grant_all_or_nothing(
    limiter: RateLimiter, order: list[tuple[Budget, ...]]
) -> None:
    granted = [await limiter.try_acquire(list(budgets)) == 0.0 for budgets in order]
    assert granted == _model([(budgets, 1) for budgets in order])


@pytest.mark.parametrize(
    ("windows", "cost"),
    list(itertools.product([(Window(2, 60),), (Window(10, 60), Window(3, 3600))], [4, 11])),
)
async def test_a_cost_above_any_windows_limit_is_impossible_and_takes_nothing(
    limiter: RateLimiter, windows: tuple[Window, ...], cost: int
) -> None:
    budget = Budget("login:y", windows)
    with pytest.raises(ValueError, match="can never be granted"):
        await limiter.try_acquire([budget], cost)
    smallest = min(w.limit for w in windows)
    granted = [await limiter.try_acquire([budget]) == 0.0 for _ in range(smallest + 1)]
    assert granted == [True] * smallest + [False]  # the refusal used none of the budget
