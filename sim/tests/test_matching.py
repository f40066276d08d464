"""Brackets, OCO, liquidation and cancels, driven through REST and the admin price API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from phalanx_sim.testing import oso_body

MakeUser = Callable[..., Awaitable[dict[str, Any]]]


async def _get(http: httpx.AsyncClient, user: dict[str, Any], path: str, **params: Any) -> Any:
    response = await http.get(f"/v1/{path}", params=params, headers=user["headers"])
    assert response.status_code == 200, response.text
    return response.json()


async def _post(http: httpx.AsyncClient, user: dict[str, Any], path: str, body: Any) -> Any:
    response = await http.post(f"/v1/{path}", json=body, headers=user["headers"])
    assert response.status_code == 200, response.text
    return response.json()


async def _price(http: httpx.AsyncClient, symbol: str, price: float) -> list[int]:
    response = await http.post("/admin/prices", json={"symbol": symbol, "price": price})
    assert response.status_code == 200, response.text
    filled: list[int] = response.json()["filledOrderIds"]
    return filled


async def _statuses(http: httpx.AsyncClient, user: dict[str, Any], *ids: int) -> list[str]:
    return [(await _get(http, user, "order/item", id=i))["ordStatus"] for i in ids]


async def test_take_profit_fills_on_price_move_and_cancels_the_stop(
    http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user("alice")
    account = user["accounts"][0]
    placed = await _post(http, user, "order/placeoso", oso_body(account, qty=2))

    assert await _price(http, "MNQZ6", 21009.75) == []  # not there yet
    assert await _price(http, "MNQZ6", 21012.0) == [placed["oso1Id"]]

    assert await _statuses(http, user, placed["orderId"], placed["oso1Id"], placed["oso2Id"]) == [
        "Filled",
        "Filled",
        "Canceled",
    ]
    tp_fills = await _get(http, user, "fill/deps", masterid=placed["oso1Id"])
    assert [(f["action"], f["qty"], f["price"]) for f in tp_fills] == [("Sell", 2, 21010.0)]
    position = (await _get(http, user, "position/deps", masterid=account["id"]))[0]
    assert (position["netPos"], position["bought"], position["sold"]) == (0, 2, 2)
    cash = (await _get(http, user, "cashBalance/deps", masterid=account["id"]))[0]
    assert cash["realizedPnL"] == 40.0  # 10 points x 2 contracts x $2
    assert cash["amount"] == 50_040.0
    assert await _price(http, "MNQZ6", 20980.0) == []  # the canceled stop never fires


async def test_stop_loss_fills_at_the_new_price_and_cancels_the_target(
    http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user("alice")
    account = user["accounts"][0]
    body = oso_body(account, action="Sell", symbol="ESH6", take_profit=5990.0, stop_loss=6005.0)
    placed = await _post(http, user, "order/placeoso", body)

    assert await _price(http, "ESH6", 6006.0) == [placed["oso2Id"]]

    assert await _statuses(http, user, placed["oso1Id"], placed["oso2Id"]) == ["Canceled", "Filled"]
    stop_fills = await _get(http, user, "fill/deps", masterid=placed["oso2Id"])
    assert [(f["action"], f["price"]) for f in stop_fills] == [("Buy", 6006.0)]
    cash = (await _get(http, user, "cashBalance/deps", masterid=account["id"]))[0]
    assert cash["realizedPnL"] == -300.0  # short 6000 -> 6006: 6 points x $50


async def test_brackets_wait_for_a_resting_entry(
    http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user("alice")
    account = user["accounts"][0]
    body = {**oso_body(account), "orderType": "Limit", "price": 20990.0}
    body["bracket1"] = {"action": "Sell", "orderType": "Limit", "price": 21000.0}
    body["bracket2"] = {"action": "Sell", "orderType": "Stop", "stopPrice": 20980.0}
    placed = await _post(http, user, "order/placeoso", body)

    suspended = await _statuses(http, user, placed["orderId"], placed["oso1Id"], placed["oso2Id"])
    # the take-profit at 21000 is already crossed, but it must not fire before the entry fills
    filled_on_entry = await _price(http, "MNQZ6", 20990.0)
    after_entry = await _statuses(http, user, placed["oso1Id"], placed["oso2Id"])
    assert await _price(http, "MNQZ6", 21000.0) == [placed["oso1Id"]]

    assert suspended == ["Working", "Suspended", "Suspended"]
    assert filled_on_entry == [placed["orderId"]]
    assert after_entry == ["Working", "Working"]
    assert await _statuses(http, user, placed["oso2Id"]) == ["Canceled"]


async def test_cancel_entry_cancels_suspended_brackets(
    http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user("alice")
    account = user["accounts"][0]
    body = {**oso_body(account), "orderType": "Limit", "price": 20900.0}
    placed = await _post(http, user, "order/placeoso", body)

    canceled = await _post(
        http, user, "order/cancelorder", {"orderId": placed["orderId"], "clOrdId": "cxl-1"}
    )
    again = await _post(http, user, "order/cancelorder", {"orderId": placed["orderId"]})

    assert set(canceled) == {"commandId"}
    assert again["failureReason"] == "TooLate"
    assert await _statuses(http, user, placed["orderId"], placed["oso1Id"], placed["oso2Id"]) == [
        "Canceled",
        "Canceled",
        "Canceled",
    ]
    commands = await _get(http, user, "command/deps", masterid=placed["orderId"])
    assert [(c["commandType"], c.get("clOrdId")) for c in commands] == [
        ("New", "sig-1"),
        ("Cancel", "cxl-1"),
    ]
    assert await _price(http, "MNQZ6", 20800.0) == []


async def test_liquidateposition_flattens_and_cancels_brackets(
    http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user("alice", accounts=2)
    account, other = user["accounts"]
    placed = await _post(http, user, "order/placeoso", oso_body(account, qty=3))
    kept = await _post(http, user, "order/placeoso", oso_body(other, qty=1))
    await _price(http, "MNQZ6", 21004.0)
    contract = await _get(http, user, "contract/find", name="MNQZ6")

    result = await _post(
        http,
        user,
        "order/liquidateposition",
        {"accountId": account["id"], "contractId": contract["id"], "admin": False},
    )
    flat_again = await _post(
        http,
        user,
        "order/liquidateposition",
        {"accountId": account["id"], "contractId": contract["id"], "admin": False},
    )

    assert set(result) == {"orderId"}
    closing = await _get(http, user, "fill/deps", masterid=result["orderId"])
    assert [(f["action"], f["qty"], f["price"]) for f in closing] == [("Sell", 3, 21004.0)]
    assert await _statuses(http, user, placed["oso1Id"], placed["oso2Id"]) == [
        "Canceled",
        "Canceled",
    ]
    position = (await _get(http, user, "position/deps", masterid=account["id"]))[0]
    assert position["netPos"] == 0
    assert flat_again["failureReason"] == "UnknownReason"
    # the other account is untouched
    assert await _statuses(http, user, kept["oso1Id"], kept["oso2Id"]) == ["Working", "Working"]
    other_position = (await _get(http, user, "position/deps", masterid=other["id"]))[0]
    assert other_position["netPos"] == 1


async def test_modify_moves_a_resting_stop(http: httpx.AsyncClient, make_user: MakeUser) -> None:
    user = await make_user("alice")
    placed = await _post(http, user, "order/placeoso", oso_body(user["accounts"][0]))

    modified = await _post(
        http,
        user,
        "order/modifyorder",
        {"orderId": placed["oso2Id"], "orderQty": 1, "orderType": "Stop", "stopPrice": 20995.0},
    )

    assert set(modified) == {"commandId"}
    assert await _price(http, "MNQZ6", 20996.0) == []
    assert await _price(http, "MNQZ6", 20995.0) == [placed["oso2Id"]]
    versions = await _get(http, user, "orderVersion/deps", masterid=placed["oso2Id"])
    assert [v["stopPrice"] for v in versions] == [20990.0, 20995.0]
