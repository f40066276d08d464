"""Hole 6, reproduced: Redis restarts empty in the middle of a paced fan-out (ADR-0056).

The test starts its own redis-server (no persistence), stops it while one login's entries are
being paced out, and starts it again empty. The limiter has forgotten its windows; it must
count what it can no longer see as spent, so the venue (the simulator, counting every request
of the login in its rolling window) sees no request over its limit: zero violations.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from phalanx_executor.worker import IntentOutcome
from phalanx_sim import Simulator
from phalanx_sim.settings import SimSettings
from phalanx_testing.servers import start_redis

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

VENUE_LIMIT, VENUE_WINDOW_S = 10, 4.0  # the venue's "per minute", shortened
OUR_WINDOWS = ((8, 4.5),)  # ours: below the venue's limit, half a second longer


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
            try:
                outcomes: dict[int, IntentOutcome] = {}

                async def run(account: int) -> None:
                    # as redelivery would: an intent that failed (Redis away) is tried again
                    while account not in outcomes or outcomes[account].state != "accepted":
                        with contextlib.suppress(Exception):
                            outcomes[account] = await rig.worker.execute(rig.entry(account))
                        if outcomes.get(account, IntentOutcome("", "")).state != "accepted":
                            await asyncio.sleep(0.2)

                fan_out = asyncio.gather(*(run(a) for a in range(len(rig.accounts))))
                # the first window's worth is out; Redis goes away and comes back empty
                await _until(lambda: rig.worker.placed >= 6)
                redis_server.proc.terminate()
                redis_server.proc.wait(timeout=5)
                await asyncio.sleep(1.5)
                redis_server.restart()
                await asyncio.wait_for(fan_out, timeout=120)

                assert {o.state for o in outcomes.values()} == {"accepted"}
                assert sum(1 for r in sim.state.orders.values() if r.order.parentId is None) == 24
                violations = await rig.violations()
                assert violations["count"] == 0, violations["recent"]
            finally:
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
