"""Penalties answered to lookups and to the kill switch block the login like in the worker.

The simulator's penalty storm answers the next request of an endpoint with a p-ticket. The
request must be honoured (the login blocked for ``p-time``, then resent), not dropped or failed,
and not resent into the penalty.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from phalanx_common.clock import LiveClock
from phalanx_common.records import AccountRecord
from phalanx_executor.killswitch import Flattener
from phalanx_executor.lookup import find_order_by_cl_ord_id
from phalanx_sim import Simulator

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

PENALTY_S = 2


async def _storm(sim: Simulator, user_id: int, endpoint: str) -> None:
    async with httpx.AsyncClient() as http:
        resp = await http.post(
            sim.url + "/admin/faults",
            json={
                "userId": user_id,
                "penaltyCount": 1,
                "penaltyTimeS": PENALTY_S,
                "endpoints": [endpoint],
            },
        )
        resp.raise_for_status()


async def _observe_block(rig: Any, task: asyncio.Task[Any]) -> float:
    """The longest block of the login seen while ``task`` runs."""
    seen = 0.0
    while not task.done():
        seen = max(seen, await rig.calls.blocked_for(rig.login))
        await asyncio.sleep(0.05)
    return seen


async def test_a_penalty_on_a_clordid_lookup_blocks_the_login_and_the_lookup_goes_on(
    nats_url: str, redis_url: str, make_budget_rig: Any
) -> None:
    async with Simulator(port=0) as sim:
        rig = await make_budget_rig(nats_url, redis_url, sim, accounts=1, login_windows=((70, 60),))
        try:
            intent = rig.entry(0)
            assert (await rig.worker.execute(intent)).state == "accepted"
            order_id = rig.view.order_for(intent.intent_id)
            user_id = sim.state.accounts[intent.account_id].userId
            await _storm(sim, user_id, "order/deps")
            sock = await rig.pool.get(rig.login)

            def call(send: Any) -> Any:
                return rig.calls.call(rig.login, send)

            lookup = asyncio.create_task(
                find_order_by_cl_ord_id(sock, intent.account_id, intent.intent_id, call)
            )
            blocked = await _observe_block(rig, lookup)
            found = await lookup
            violations = await rig.violations()
        finally:
            await rig.close()
    assert found == order_id
    assert blocked > 0
    assert violations["count"] == 0
    registry = rig.calls.permits.metrics.registry  # the penalty is counted for its login
    assert registry.get_sample_value("phalanx_venue_penalties_total", {"login": rig.login}) == 1
    assert registry.get_sample_value("phalanx_venue_lockouts_total", {"login": rig.login}) is None
    waited = registry.get_sample_value(
        "phalanx_login_permit_wait_seconds_total", {"login": rig.login}
    )
    assert waited is not None
    assert waited >= PENALTY_S * 0.9  # the resend waited out the penalty's block for a permit


async def test_a_penalty_during_kill_switch_flattening_blocks_the_login_and_flattens(
    nats_url: str, redis_url: str, make_budget_rig: Any
) -> None:
    async with Simulator(port=0) as sim:
        rig = await make_budget_rig(nats_url, redis_url, sim, accounts=1, login_windows=((70, 60),))
        try:
            intent = rig.entry(0)
            assert (await rig.worker.execute(intent)).state == "accepted"
            user_id = sim.state.accounts[intent.account_id].userId
            account = AccountRecord(
                account_id=intent.account_id,
                account_spec=intent.account_spec,
                login_id=rig.login,
                user_id=user_id,
            )
            flattener = Flattener(
                bus=rig.bus,
                clock=LiveClock(),
                pool=rig.pool,
                view=rig.view,
                calls=rig.calls,
                owned_accounts=lambda: [account],
                owner="test",
            )
            await _storm(sim, user_id, "order/liquidateposition")
            flatten = asyncio.create_task(flattener.flatten())
            blocked = await _observe_block(rig, flatten)
            counts = await flatten
            violations = await rig.violations()
        finally:
            await rig.close()
    assert counts == (0, 1, 0)  # cancelled, liquidated, failed
    assert blocked > 0
    assert violations["count"] == 0
