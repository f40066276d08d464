"""The kill switch halts new orders and flattens every account, bracket legs included."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from phalanx_bench.inprocess import RunningSystem
from phalanx_bench.seed import front_month, seed
from phalanx_testing.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(120)]

ENTRY = {
    "ticker": "MNQ1!",
    "action": "buy",
    "quantity": 1,
    "price": 21000,
    "takeProfit": {"limitPrice": 21100},
    "stopLoss": {"type": "stop", "stopPrice": 20900},
}


async def _venue(http: httpx.AsyncClient, system: RunningSystem, what: str, account: int) -> Any:
    resp = await http.get(f"{system.endpoints.sim}/admin/{what}?accountId={account}")
    resp.raise_for_status()
    return resp.json()


async def test_kill_switch_flattens_every_account_and_halts_new_signals(
    system: RunningSystem,
) -> None:
    seeded = await seed(system.endpoints, logins=3, accounts_per_login=2)
    pool = system.executor.pool
    assert pool is not None
    await eventually(lambda: len(pool) == 3, what="3 logins connected")
    admin = {"Authorization": f"Bearer {system.endpoints.admin_token}"}
    async with httpx.AsyncClient(timeout=10) as http:
        (
            await http.post(
                system.endpoints.sim + "/admin/prices",
                json={"symbol": front_month(), "price": 21000},
            )
        ).raise_for_status()
        assert (await http.post(seeded.webhook_url, json=ENTRY)).status_code == 200

        async def all_open() -> bool:
            for account in seeded.account_ids:
                positions = await _venue(http, system, "positions", account)
                if sum(int(p["netPos"]) for p in positions) != 1:
                    return False
            return True

        await eventually(all_open, timeout=30, what="every account long 1 with legs resting")

        resp = await http.post(
            system.executor.url + "/admin/kill-switch", json={"reason": "test"}, headers=admin
        )
        assert resp.status_code == 202

        async def all_flat_without_orders() -> bool:
            for account in seeded.account_ids:
                positions = await _venue(http, system, "positions", account)
                orders = await _venue(http, system, "orders", account)
                if sum(int(p["netPos"]) for p in positions) != 0:
                    return False
                if any(o.get("ordStatus") in ("Working", "Suspended") for o in orders):
                    return False
            return True

        await eventually(all_flat_without_orders, timeout=30, what="flat, nothing working")

        # new signals are refused while HALTED, and nothing reaches the venue
        before = (await http.get(system.endpoints.sim + "/admin/stats")).json()["placeOso"]
        again = dict(ENTRY, time="after-kill")
        assert (await http.post(seeded.webhook_url, json=again)).status_code == 200
        state = await http.get(system.executor.url + "/admin/trading-state", headers=admin)
        assert {"scope": "global", "state": "HALTED"}.items() <= state.json()["states"][0].items()

        async def refused() -> bool:
            ledger = await http.get(f"{system.endpoints.ledger}/positions/{seeded.account_ids[0]}")
            return int(ledger.json()["orders"]["rejected"]) >= 1

        await eventually(refused, timeout=30, what="the new signal refused")
        after = (await http.get(system.endpoints.sim + "/admin/stats")).json()["placeOso"]
        assert after == before
