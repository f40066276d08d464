"""A signal's fills on 25 accounts become the ledger's positions and dollar P&L.

Entry at one price, the market moves, exit: each account's realized P&L in the ledger must
equal what the venue's own fill records say (sold minus bought, times the product's point
value), per account and summed under the strategy; fees are the venue's ``fillFee`` once
reconciliation fetched them, and net P&L is realized minus those fees.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

from phalanx_bench.inprocess import RunningSystem
from phalanx_bench.seed import front_month, seed
from phalanx_common.contracts import ContractBook
from phalanx_testing.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(120)]

ENTRY = {"ticker": "MNQ1!", "action": "buy", "quantity": 2, "price": 21000}
EXIT = {"ticker": "MNQ1!", "action": "exit"}


async def _get(http: httpx.AsyncClient, url: str, **params: Any) -> Any:
    resp = await http.get(url, params=params)
    resp.raise_for_status()
    return resp.json()


async def _set_price(http: httpx.AsyncClient, system: RunningSystem, price: float) -> None:
    resp = await http.post(
        system.endpoints.sim + "/admin/prices", json={"symbol": front_month(), "price": price}
    )
    resp.raise_for_status()


def _venue_cash_flow(fills: list[dict[str, Any]]) -> Decimal:
    """Sold minus bought, in price points times contracts, from the venue's fill records."""
    flow = Decimal(0)
    for fill in fills:
        value = Decimal(str(fill["price"])) * int(fill["qty"])
        flow += value if fill["action"] == "Sell" else -value
    return flow


async def test_a_round_trip_on_25_accounts_is_the_venues_cash_flow_in_dollars(
    system: RunningSystem,
) -> None:
    seeded = await seed(system.endpoints, logins=5, accounts_per_login=5)
    pool = system.executor.pool
    assert pool is not None
    await eventually(lambda: len(pool) == 5, what="executor connected all 5 logins")
    admin = {"Authorization": f"Bearer {system.endpoints.admin_token}"}
    ledger = system.endpoints.ledger
    spec = ContractBook.load().product_of(front_month())
    assert spec is not None

    async with httpx.AsyncClient(timeout=10, headers=admin) as http:
        rates = {"product": spec.root, "commission": 0.25, "exchangeFee": 0.35, "nfaFee": 0.02}
        (await http.put(system.endpoints.sim + "/admin/fees", json=rates)).raise_for_status()
        await _set_price(http, system, 21000)
        resp = await http.post(seeded.webhook_url, json=ENTRY)
        assert resp.status_code == 200, resp.text

        async def net_positions() -> dict[int, int]:
            body = await _get(http, ledger + "/positions")
            rows = body["positions"] if isinstance(body, dict) else body
            return {
                int(r["account_id"]): int(r["net_pos"])
                for r in rows
                if r["symbol"] == front_month()
            }

        async def all_at(net: int) -> dict[int, int] | None:
            found = await net_positions()
            ok = set(found) == set(seeded.account_ids) and set(found.values()) == {net}
            return found if ok else None

        await eventually(lambda: all_at(2), timeout=30, what="25 accounts long 2")
        await _set_price(http, system, 21012.75)
        resp = await http.post(seeded.webhook_url, json=EXIT)
        assert resp.status_code == 200, resp.text
        await eventually(lambda: all_at(0), timeout=30, what="25 accounts flat")

        expected: dict[int, Decimal] = {}
        for account_id in seeded.account_ids:
            fills = await _get(http, f"{system.endpoints.sim}/admin/fills", accountId=account_id)
            assert sum(int(f["qty"]) for f in fills) == 4  # bought 2, sold 2
            expected[account_id] = _venue_cash_flow(fills) * spec.point_value
        assert any(value != 0 for value in expected.values())  # the market moved in between

        async def by_account() -> dict[int, Decimal] | None:
            rows = (await _get(http, ledger + "/admin/pnl", by="account"))["rows"]
            found = {int(r["key"]): Decimal(str(r["realized_pnl_money"])) for r in rows}
            return found if found == expected else None

        assert await eventually(by_account, timeout=30, what="P&L per account") == expected
        rows = (await _get(http, ledger + "/admin/pnl", by="strategy"))["rows"]
        strategy = {r["key"]: r for r in rows}[seeded.strategy_id]
        assert Decimal(str(strategy["realized_pnl_money"])) == sum(expected.values())
        assert strategy["currency"] == spec.currency
        assert strategy["fills"] == 2 * len(expected)  # one entry and one exit fill each

        # the venue's fees, fetched by reconciliation, make the net
        answer = await http.post(ledger + "/admin/reconcile", params={"fetch_fills": "true"})
        answer.raise_for_status()
        assert {r["status"] for r in answer.json()["reconciliations"]} == {"ok"}

        async def netted() -> dict[str, Any] | None:
            rows = (await _get(http, ledger + "/admin/pnl", by="strategy"))["rows"]
            row = {r["key"]: r for r in rows}[seeded.strategy_id]
            return row if row["fills_without_fees"] == 0 else None

        row = await eventually(netted, timeout=30, what="fees of every fill reported")
        fees = Decimal(str(row["fees_money"]))
        assert fees == Decimal("0.62") * 4 * len(expected)  # the rates above, per contract
        assert Decimal(str(row["net_pnl_money"])) == sum(expected.values()) - fees
