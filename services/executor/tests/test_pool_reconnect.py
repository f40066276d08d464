"""A dropped login keeps being reconnected in the background until it is back.

Found while staging faults (issue 12): a reconnect attempt that failed took the login out of
the pool (the old socket is removed before connecting), so the next scheduled attempt saw it
"dropped on purpose" and gave up. The login then stayed without a socket until the next intent
needed one — a cold connect in the hot path. Real simulator, whose fault knob answers the first
reconnect attempts' requests with 503.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from phalanx_executor.pool import ConnectionPool
from phalanx_sim import Simulator
from phalanx_testing.sim_tokens import log_in
from phalanx_testing.waiting import eventually

pytestmark = pytest.mark.integration


async def test_a_failed_reconnect_attempt_is_followed_by_another_until_connected() -> None:
    async with Simulator(port=0) as sim:
        user = sim.create_user("trader", "pw", accounts=1)
        token = await log_in(sim, "trader", user.userId)
        available = {"trader": token}  # what auth has

        async def nothing(*_: Any) -> None:
            return None

        pool = ConnectionPool(
            sim.ws_url,
            token_for=available.get,
            on_props=lambda *_: None,
            on_snapshot=nothing,
            max_sockets=10,
            reconnect_backoff_s=0.05,
            reconnect_backoff_max_s=0.2,
        )
        try:
            await pool.get("trader")
            async with httpx.AsyncClient() as http:
                faults = {"errorCount": 2, "endpoints": ["authorize", "user/syncrequest"]}
                (await http.post(sim.url + "/admin/faults", json=faults)).raise_for_status()
                (await http.post(sim.url + "/admin/sockets/drop", json={})).raise_for_status()
            await eventually(
                lambda: pool.reconnect_failures("trader") > 0, 10.0, what="an attempt failed"
            )
            await eventually(
                lambda: pool.is_connected("trader"), 10.0, what="reconnected in the background"
            )
        finally:
            await pool.close()
