"""Hole 6, reproduced: Redis restarts empty in the middle of a paced fan-out (ADR-0056).

The test starts its own redis-server (no persistence), stops it while one login's entries are
being paced out by two replicas (two workers, each with its own limiter and Redis connection,
sharing the login's budget as during a handover), and starts it again empty. The limiters have
forgotten their windows; they must count what they can no longer see as spent, so the venue
(the simulator, counting every request of the login in its rolling window) sees no request
over its limit: zero violations.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import msgspec
import pytest
import redis.asyncio as aioredis

from phalanx_common import subjects
from phalanx_common.clock import LiveClock
from phalanx_executor.gates import Gates
from phalanx_executor.intents import IntentStore
from phalanx_executor.ratelimit import RateLimiter
from phalanx_executor.worker import BatchWorker, IntentOutcome, WorkerSettings
from phalanx_sim import Simulator
from phalanx_sim.settings import SimSettings
from phalanx_testing.servers import start_redis

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

VENUE_LIMIT, VENUE_WINDOW_S = 10, 4.0  # the venue's "per minute", shortened
OUR_WINDOWS = ((8, 4.5),)
_FINAL = frozenset(
    {"accepted", "rejected", "expired", "duplicate"}
)  # ours: below the venue's limit, half a second longer


async def test_after_redis_restarts_empty_the_venue_sees_no_request_over_its_limit(
    nats_url: str, make_budget_rig: Any
) -> None:
    redis_server = start_redis()
    settings = SimSettings(sim_limit_per_minute=VENUE_LIMIT, sim_limit_minute_s=VENUE_WINDOW_S)
    try:
        async with Simulator(settings, port=0) as sim:
            rig = await make_budget_rig(
                nats_url, redis_server.url + "/0", sim, accounts=24, login_windows=OUR_WINDOWS
            )
            other = aioredis.from_url(redis_server.url + "/0", socket_connect_timeout=0.5)
            replica = BatchWorker(
                bus=rig.bus,
                store=IntentStore(await rig.bus.key_value(subjects.Buckets.INTENTS), "other"),
                pool=rig.pool,
                limiter=RateLimiter(other),
                view=rig.view,
                gates=Gates(rig.mirrors[0], rig.mirrors[1], rig.view),
                clock=LiveClock(),
                settings=WorkerSettings(login_windows=OUR_WINDOWS),
            )
            workers = [rig.worker, replica]
            try:
                outcomes: dict[int, IntentOutcome] = {}
                deadline = time.time_ns() + 60 * 1_000_000_000  # a lockout ends the test early

                async def run(account: int) -> None:
                    # as redelivery would: an intent that failed (Redis away) is tried again
                    while outcomes.get(account, IntentOutcome("", "")).state not in _FINAL:
                        with contextlib.suppress(Exception):
                            worker = workers[account % 2]
                            outcomes[account] = await worker.execute(
                                msgspec.structs.replace(rig.entry(account), not_after_ns=deadline)
                            )
                        if outcomes.get(account, IntentOutcome("", "")).state not in _FINAL:
                            await asyncio.sleep(0.2)

                # The first window's worth goes out through both replicas: the connect
                # (authorize, sync), the contract lookup and 3 orders on one, 2 on the other.
                await asyncio.gather(*(run(a) for a in (0, 2, 4, 1, 3)))
                # Redis goes away and comes back empty while the venue's window is still full;
                # then the rest of the fan-out arrives at both replicas.
                redis_server.proc.terminate()
                redis_server.proc.wait(timeout=5)
                await asyncio.sleep(1.0)
                redis_server.restart()
                rest = range(5, len(rig.accounts))
                await asyncio.wait_for(asyncio.gather(*(run(a) for a in rest)), timeout=120)

                violations = await rig.violations()
                assert violations["count"] == 0, violations["recent"]
                assert {o.state for o in outcomes.values()} == {"accepted"}
                assert sum(1 for r in sim.state.orders.values() if r.order.parentId is None) == 24
            finally:
                await other.aclose()
                await rig.close()
    finally:
        redis_server.stop()


async def _until(predicate: object, timeout_s: float = 30.0) -> None:
    assert callable(predicate)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)
