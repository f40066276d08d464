"""A locked-out or budget-bound login never delays another login (real Redis, simulator)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from phalanx_executor.budgets import BudgetBook
from phalanx_executor.permits import Permits, Priority
from phalanx_executor.pool import ConnectionPool, LoginNotReady
from phalanx_executor.ratelimit import Budget, RateLimiter, Window
from phalanx_executor.venue_calls import VenueCalls
from phalanx_sim import Simulator
from phalanx_sim.settings import SimSettings
from phalanx_testing.sim_tokens import SimTokens
from phalanx_tradovate.errors import LockoutError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

IP = Budget("ip:shared", (Window(1000, 60),))


def _login(name: str, limit: int = 5) -> list[Budget]:
    return [Budget(f"login:{name}", (Window(limit, 60),)), IP]


async def test_waiters_of_a_locked_out_and_a_budget_bound_login_never_delay_another(
    redis_url: str,
) -> None:
    client = aioredis.from_url(redis_url)
    limiter = RateLimiter(client)
    permits = Permits(limiter)
    try:
        await permits.block(_login("locked")[0], 3600)
        for _ in range(5):  # "bound" has used its window up for a minute
            await permits.acquire(_login("bound"), Priority.ENTRY)
        stuck = [
            asyncio.create_task(permits.acquire(_login(name), priority))
            for name in ("locked", "bound")
            for priority in (Priority.PROTECT, Priority.ENTRY)
            for _ in range(10)
        ]
        await asyncio.sleep(0.2)  # their pumps are waiting now
        await asyncio.wait_for(
            asyncio.gather(*(permits.acquire(_login("free"), Priority.ENTRY) for _ in range(5))),
            timeout=5,
        )
        assert not any(t.done() for t in stuck)
        for task in stuck:
            task.cancel()
        await asyncio.gather(*stuck, return_exceptions=True)
    finally:
        await client.aclose()


async def test_a_login_waiting_for_its_budget_never_holds_the_connect_slot_of_another(
    redis_url: str,
    sim_tokens: SimTokens,
) -> None:
    client = aioredis.from_url(redis_url)
    permits = Permits(RateLimiter(client))
    book = BudgetBook(((3, 60),))
    calls = VenueCalls(permits, book)
    async with Simulator(port=0) as sim:
        tokens = await sim_tokens(sim, ["bound", "locked", "free"])

        async def nothing(*_: Any) -> None:
            return None

        pool = ConnectionPool(
            sim.ws_url,
            token_for=tokens.get,
            on_props=lambda *_: None,
            on_snapshot=nothing,
            max_sockets=10,
            connect_concurrency=1,  # one connect at a time: the slot is precious
            calls=calls,
        )
        try:
            for _ in range(3):  # "bound" spent its window: its connect must wait a minute
                await calls.permit("bound")
            await calls.honour("locked", LockoutError(429, endpoint="order/placeoso"))
            waiting = asyncio.create_task(pool.get("bound"))
            await asyncio.sleep(0.2)
            with pytest.raises(LoginNotReady, match="blocked"):
                await asyncio.wait_for(pool.get("locked"), timeout=5)
            await asyncio.wait_for(pool.get("free"), timeout=5)
            assert pool.is_connected("free")
            assert not waiting.done()
            waiting.cancel()
            await asyncio.gather(waiting, return_exceptions=True)
        finally:
            await pool.close()
            await client.aclose()


async def test_authorize_takes_a_permit_so_reconnects_stay_inside_the_logins_budget(
    redis_url: str,
    sim_tokens: SimTokens,
) -> None:
    """The venue may count ``authorize``; every connect spends two requests, both permitted."""
    settings = SimSettings(
        sim_limit_count_authorize=True, sim_limit_per_minute=3, sim_limit_minute_s=3.0
    )
    client = aioredis.from_url(redis_url)
    calls = VenueCalls(Permits(RateLimiter(client)), BudgetBook(((2, 3.5),)))
    async with Simulator(settings, port=0) as sim:
        tokens = await sim_tokens(sim, ["flaky"])

        async def nothing(*_: Any) -> None:
            return None

        pool = ConnectionPool(
            sim.ws_url,
            token_for=tokens.get,
            on_props=lambda *_: None,
            on_snapshot=nothing,
            max_sockets=10,
            calls=calls,
        )
        try:
            for _ in range(3):  # connect, drop, connect again...
                await asyncio.wait_for(pool.get("flaky"), timeout=20)
                await pool.drop("flaky")
            async with httpx.AsyncClient() as http:
                violations = (await http.get(sim.url + "/admin/violations")).json()
            authorized = [r for r in sim.state.requests if r.endpoint == "authorize"]
        finally:
            await pool.close()
            await client.aclose()
    assert len(authorized) == 3
    assert violations["count"] == 0, violations["recent"]
