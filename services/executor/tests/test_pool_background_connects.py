"""Warm-up and reconnects hold at most ``connect_concurrency`` Redis connections, not one a login.

Connecting a login takes its permits from Redis (``blocked_for``, then ``user/syncrequest`` and
``authorize``) before the connect slot. With 2,000 logins under 2 replicas, each replica warmed
1,000 logins at once, every one of them waiting for a connection of the 64-connection Redis pool,
and 602 warm-ups failed with "No connection available" (ADR-0171). Real simulator and
redis-server; the Redis pool is a real blocking pool that only records how many of its
connections were in use at once.
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
from phalanx_executor.venue_calls import VenueCalls
from phalanx_sim import Simulator
from phalanx_testing.sim_tokens import SimTokens
from phalanx_testing.waiting import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

LOGINS = 40
AT_ONCE = 4


class PeakPool(aioredis.BlockingConnectionPool):
    """A blocking pool that remembers the most connections it had handed out at once."""

    peak = 0

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        connection = await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
        self.peak = max(self.peak, len(self._in_use_connections))
        return connection


async def test_warm_up_and_reconnects_of_many_logins_hold_a_bounded_number_of_connections(
    redis_url: str,
    sim_tokens: SimTokens,
) -> None:
    redis_pool = PeakPool.from_url(redis_url, max_connections=10 * LOGINS, timeout=60)
    client = aioredis.Redis(connection_pool=redis_pool)
    calls = VenueCalls(Permits(RateLimiter(client)), BudgetBook(((1000, 60.0),)))
    async with Simulator(port=0) as sim:
        tokens = await sim_tokens(sim, [f"login{i:02d}" for i in range(LOGINS)])

        async def nothing(*_: Any) -> None:
            return None

        def new_pool() -> ConnectionPool:
            return ConnectionPool(
                sim.ws_url,
                token_for=tokens.get,
                on_props=lambda *_: None,
                on_snapshot=nothing,
                max_sockets=10 * LOGINS,
                connect_concurrency=AT_ONCE,
                calls=calls,
                reconnect_backoff_s=0.05,
                reconnect_backoff_max_s=0.2,
            )

        pool = new_pool()
        try:
            # one warm-up of every login, as when a replica takes its shards
            assert await pool.warm(list(tokens)) == LOGINS
            at_start = redis_pool.peak
        finally:
            await pool.close()
        redis_pool.peak = 0
        pool = new_pool()
        try:
            # a warm-up per login, as when auth links logins one by one (a task per token)
            warmed = await asyncio.gather(*(pool.warm([login]) for login in tokens))
            assert sum(warmed) == LOGINS
            one_by_one = redis_pool.peak
            # every socket dropped by the venue at once: the pool reconnects them all
            redis_pool.peak = 0
            async with httpx.AsyncClient() as http:
                (await http.post(sim.url + "/admin/sockets/drop", json={})).raise_for_status()

            def reconnected() -> bool:
                syncs = sum(1 for r in sim.state.requests if r.endpoint == "user/syncrequest")
                # a sync per login at each warm-up above, and one per reconnect
                return syncs == 3 * LOGINS and pool.connected_count() == LOGINS

            await eventually(reconnected, 60.0, what="every login reconnected")
            reconnecting = redis_pool.peak
        finally:
            await pool.close()
            await client.aclose()
    assert at_start <= AT_ONCE
    assert one_by_one <= AT_ONCE
    assert reconnecting <= AT_ONCE
