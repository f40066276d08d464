"""Per-IP budgets: Tradovate keys ``user/syncrequest`` by client IP, whichever login syncs.

The simulator runs in its IP-scoped mode (every login on this machine shares one sync budget,
shortened here to 6 per 6 s). Many logins connect, then all their sockets drop and they
reconnect at once: through the egress IP's sync budget they stay inside the venue's limit.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from phalanx_executor.budgets import BudgetBook
from phalanx_executor.permits import Permits
from phalanx_executor.pool import ConnectionPool
from phalanx_executor.ratelimit import RateLimiter
from phalanx_executor.settings import ExecutorSettings
from phalanx_executor.venue_calls import VenueCalls
from phalanx_sim import Simulator
from phalanx_sim.settings import SimSettings
from phalanx_testing.sim_tokens import SimTokens

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

LOGINS = 10
VENUE_SYNCS, VENUE_WINDOW_S = 6, 6.0


def test_the_per_ip_sync_budget_is_on_by_default() -> None:
    settings = ExecutorSettings()
    assert settings.sync_ip_windows
    assert all(n <= 300 for n, _ in settings.sync_ip_windows)
    book = BudgetBook(settings.login_windows, (), settings.egress_ip, settings.sync_ip_windows)
    keys = [b.key for b in book.for_request("a", "user/syncrequest")]
    assert keys == ["login:a", "ip:default:user/syncrequest"]
    assert [b.key for b in book.for_request("b", "user/syncrequest")][1] == keys[1]  # shared
    assert [b.key for b in book.for_request("a", "order/placeoso")] == ["login:a"]


async def test_many_logins_reconnecting_through_one_ip_stay_inside_its_sync_limit(
    redis_url: str,
    sim_tokens: SimTokens,
) -> None:
    settings = SimSettings(
        sim_endpoint_limit_scope="ip",
        sim_limit_sync_per_hour=VENUE_SYNCS,
        sim_limit_hour_s=VENUE_WINDOW_S,
    )
    client = aioredis.from_url(redis_url)
    book = BudgetBook(((70, 60),), (), "this-host", ((VENUE_SYNCS - 1, VENUE_WINDOW_S + 0.5),))
    calls = VenueCalls(Permits(RateLimiter(client)), book)
    async with Simulator(settings, port=0) as sim:
        tokens = await sim_tokens(sim, [f"login{i}" for i in range(LOGINS)])

        async def nothing(*_: Any) -> None:
            return None

        pool = ConnectionPool(
            sim.ws_url,
            token_for=tokens.get,
            on_props=lambda *_: None,
            on_snapshot=nothing,
            max_sockets=100,
            calls=calls,
            reconnect_backoff_s=0.2,
            reconnect_backoff_max_s=1.0,
        )
        try:
            assert await pool.warm(list(tokens)) == LOGINS
            async with httpx.AsyncClient() as http:
                await http.post(sim.url + "/admin/sockets/drop", json={})
                await _until(lambda: not any(pool.is_connected(t) for t in tokens))
                await _until(lambda: all(pool.is_connected(t) for t in tokens), timeout_s=90)
                violations = (await http.get(sim.url + "/admin/violations")).json()
            syncs = [r for r in sim.state.requests if r.endpoint == "user/syncrequest"]
        finally:
            await pool.close()
            await client.aclose()
    assert len(syncs) == 2 * LOGINS
    assert violations["count"] == 0, violations["recent"]


async def _until(predicate: Any, timeout_s: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)
