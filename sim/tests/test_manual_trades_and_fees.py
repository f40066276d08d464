"""Manual trades (``POST /admin/trades``) and fill fees (``fillFee``, ``PUT /admin/fees``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

MakeUser = Callable[..., Awaitable[dict[str, Any]]]


async def _trade(http: httpx.AsyncClient, account_id: int, action: str, qty: int) -> Any:
    answer = await http.post(
        "/admin/trades",
        json={"accountId": account_id, "symbol": "MNQZ6", "action": action, "qty": qty},
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_a_manual_trade_is_an_unautomated_order_that_fills_and_moves_the_position(
    http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user("hand")
    account = user["accounts"][0]["id"]

    first = await _trade(http, account, "Buy", 2)
    second = await _trade(http, account, "Sell", 3)

    assert (first["netPos"], second["netPos"]) == (2, -1)
    orders = (await http.get("/admin/orders", params={"accountId": account})).json()
    manual = {o["id"]: o for o in orders}
    assert manual[first["orderId"]]["isAutomated"] is False
    assert manual[first["orderId"]]["ordStatus"] == "Filled"
    fills = (
        await http.get(
            "/v1/fill/deps", params={"masterid": second["orderId"]}, headers=user["headers"]
        )
    ).json()
    assert [f["id"] for f in fills] == second["fillIds"]
    positions = (
        await http.get("/v1/position/deps", params={"masterid": account}, headers=user["headers"])
    ).json()
    assert [p["netPos"] for p in positions] == [-1]


@pytest.mark.parametrize("bad", [{"accountId": 1}, {"symbol": "NOPEZ9"}])
async def test_a_manual_trade_on_an_unknown_account_or_symbol_is_404(
    http: httpx.AsyncClient, make_user: MakeUser, bad: dict[str, Any]
) -> None:
    user = await make_user("nobody")
    body = {"accountId": user["accounts"][0]["id"], "symbol": "MNQZ6", "action": "Buy", "qty": 1}
    answer = await http.post("/admin/trades", json={**body, **bad})
    assert answer.status_code == 404


async def test_each_fill_has_a_fill_fee_at_the_products_rates_taken_from_cash(
    http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user("payer")
    other = await make_user("stranger")
    account = user["accounts"][0]["id"]
    rates = {"product": "MNQ", "commission": 0.39, "exchangeFee": 0.35, "nfaFee": 0.02}
    assert (await http.put("/admin/fees", json=rates)).status_code == 200
    cash_before = (await http.get("/admin/cashbalances", params={"accountId": account})).json()

    trade = await _trade(http, account, "Buy", 3)
    (fill_id,) = trade["fillIds"]

    (fee,) = (
        await http.get("/v1/fillFee/deps", params={"masterid": fill_id}, headers=user["headers"])
    ).json()
    assert fee["id"] == fill_id
    assert (fee["commission"], fee["exchangeFee"], fee["nfaFee"], fee["clearingFee"]) == (
        1.17,
        1.05,
        0.06,
        0.0,
    )
    assert fee["commissionCurrencyId"] == 1
    listed = (
        await http.get(
            "/v1/fillFee/ldeps", params={"masterids": str(fill_id)}, headers=user["headers"]
        )
    ).json()
    assert listed == [fee]
    foreign = await http.get(
        "/v1/fillFee/deps", params={"masterid": fill_id}, headers=other["headers"]
    )
    assert foreign.json() == []
    cash_after = (await http.get("/admin/cashbalances", params={"accountId": account})).json()
    assert round(cash_before[0]["amount"] - cash_after[0]["amount"], 2) == 2.28
    assert cash_after[0]["realizedPnL"] == cash_before[0]["realizedPnL"]


async def test_without_rates_a_fill_fee_is_reported_with_zeros(
    http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user("free")
    trade = await _trade(http, user["accounts"][0]["id"], "Sell", 1)
    answer = await http.get(
        "/v1/fillFee/item", params={"id": trade["fillIds"][0]}, headers=user["headers"]
    )
    fee = answer.json()
    assert fee["id"] == trade["fillIds"][0]
    assert (fee["commission"], fee["exchangeFee"], fee["clearingFee"]) == (0.0, 0.0, 0.0)
    assert (await http.put("/admin/fees", json={"product": "NOPE"})).status_code == 404
