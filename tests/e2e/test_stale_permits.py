"""A permit is spent within moments, or not at all: a request delayed after its permit takes
another (the limiter counts the old one too), so stalls cannot bunch requests at the venue.

The limiter counts a request when it grants the permit; the venue when the request arrives.
The executor's windows are longer than the venue's by a margin (61 s against 60 s in
production) that absorbs the time between the two. A stall longer than that margin — a slow
KV read of the send-time claim check, an event loop starved of CPU — used to let requests
permitted in one window reach the venue together with the next window's: a violation. The
stall is staged by slowing the send-time claim check (the step between permit and request).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from phalanx_bench.inprocess import running_system
from phalanx_bench.seed import front_month, seed
from phalanx_testing.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(120)]

ACCOUNTS = 30
STALL_S = 1.5  # three times the margin below


async def _stats(http: httpx.AsyncClient, sim: str) -> dict[str, Any]:
    resp = await http.get(sim + "/admin/stats")
    resp.raise_for_status()
    body: dict[str, Any] = resp.json()
    return body


async def test_requests_stalled_after_their_permit_never_bunch_into_a_violation(
    nats_url: str, redis_url: str
) -> None:
    # the venue: 12 requests per login in any 2 s; the executor: 10 per 2.5 s (0.5 s margin)
    async with running_system(
        nats_url,
        redis_url,
        sim_settings={"sim_limit_per_minute": 12, "sim_limit_minute_s": 2.0},
        executor_settings={"login_windows": ((10, 2.5),)},
    ) as system:
        seeded = await seed(system.endpoints, logins=1, accounts_per_login=ACCOUNTS)
        pool = system.executor.pool
        worker = system.executor.worker
        assert pool is not None
        assert worker is not None
        await eventually(lambda: len(pool) == 1, what="the login connected")

        stalled: list[str] = []
        still_owner = worker._still_owner

        async def slow_after_the_permit(intent: Any) -> None:
            if len(stalled) < 10 and intent.intent_id not in stalled:
                stalled.append(intent.intent_id)  # the first window's requests are held up
                await asyncio.sleep(STALL_S)
            await still_owner(intent)

        worker._still_owner = slow_after_the_permit  # type: ignore[method-assign]

        async with httpx.AsyncClient(timeout=30) as http:
            sim = system.endpoints.sim
            prices = {"symbol": front_month(), "price": 21000}
            (await http.post(sim + "/admin/prices", json=prices)).raise_for_status()
            body = {"ticker": "MNQ1!", "action": "buy", "quantity": 1}
            assert (await http.post(seeded.webhook_url, json=body)).status_code == 200

            async def all_placed() -> dict[str, Any] | None:
                stats = await _stats(http, sim)
                return stats if stats["placeOso"] + stats["placeOrder"] >= ACCOUNTS else None

            stats = await eventually(all_placed, timeout=60, what=f"{ACCOUNTS} orders placed")
        assert len(stalled) == 10
        assert stats["violationCount"] == 0, stats["violations"]
        assert stats["placeOso"] + stats["placeOrder"] == ACCOUNTS
