"""TrailingStop (alone and as an OSO leg) and timeInForce IOC/FOK/Day/GTC, through REST and the
admin price API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from phalanx_sim.testing import oso_body

MakeUser = Callable[..., Awaitable[dict[str, Any]]]


async def _post(http: httpx.AsyncClient, user: dict[str, Any], path: str, body: Any) -> Any:
    response = await http.post(f"/v1/{path}", json=body, headers=user["headers"])
    assert response.status_code == 200, response.text
    return response.json()


async def _price(http: httpx.AsyncClient, symbol: str, price: float) -> list[int]:
    response = await http.post("/admin/prices", json={"symbol": symbol, "price": price})
    assert response.status_code == 200, response.text
    filled: list[int] = response.json()["filledOrderIds"]
    return filled


async def _order(http: httpx.AsyncClient, user: dict[str, Any], order_id: int) -> dict[str, Any]:
    """The order merged with its current version (the admin view)."""
    response = await http.get("/admin/orders", params={"accountId": user["accounts"][0]["id"]})
    assert response.status_code == 200, response.text
    [found] = [o for o in response.json() if o["id"] == order_id]
    return dict(found)


def _order_body(account: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "accountSpec": account["name"],
        "accountId": account["id"],
        "action": "Sell",
        "symbol": "MNQZ6",
        "orderQty": 1,
        "isAutomated": True,
        **fields,
    }


async def test_a_sell_trailing_stop_rises_with_the_high_never_falls_and_triggers(
    http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user("alice")
    account = user["accounts"][0]
    await _price(http, "MNQZ6", 21000.0)
    body = _order_body(account, orderType="TrailingStop", stopPrice=20990.0, pegDifference=10.0)
    placed = await _post(http, user, "order/placeorder", body)
    order_id = placed["orderId"]
    assert (await _order(http, user, order_id))["stopPrice"] == 20990.0

    assert await _price(http, "MNQZ6", 21020.0) == []
    assert (await _order(http, user, order_id))["stopPrice"] == 21010.0  # trailed the high
    assert await _price(http, "MNQZ6", 21015.0) == []
    assert (await _order(http, user, order_id))["stopPrice"] == 21010.0  # never falls
    assert await _price(http, "MNQZ6", 21009.0) == [order_id]  # a plain Stop at 20990 would not
    done = await _order(http, user, order_id)
    assert (done["ordStatus"], done["avgPx"]) == ("Filled", 21009.0)


async def test_a_buy_trailing_stop_follows_the_low(
    http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user("alice")
    account = user["accounts"][0]
    await _price(http, "MNQZ6", 21000.0)
    body = _order_body(
        account, action="Buy", orderType="TrailingStop", stopPrice=21010.0, pegDifference=10.0
    )
    order_id = (await _post(http, user, "order/placeorder", body))["orderId"]
    assert await _price(http, "MNQZ6", 20980.0) == []
    assert (await _order(http, user, order_id))["stopPrice"] == 20990.0
    assert await _price(http, "MNQZ6", 20991.0) == [order_id]


async def test_a_trailing_stop_leg_trails_only_once_the_entry_filled(
    http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user("alice")
    account = user["accounts"][0]
    await _price(http, "MNQZ6", 21000.0)
    body = {**oso_body(account), "orderType": "Limit", "price": 20990.0}
    body["bracket1"] = {"action": "Sell", "orderType": "Limit", "price": 21100.0}
    body["bracket2"] = {
        "action": "Sell",
        "orderType": "TrailingStop",
        "stopPrice": 20980.0,
        "pegDifference": 10.0,
    }
    placed = await _post(http, user, "order/placeoso", body)
    leg = placed["oso2Id"]
    await _price(http, "MNQZ6", 20995.0)  # entry not filled: the suspended leg does not trail
    assert (await _order(http, user, leg))["stopPrice"] == 20980.0
    assert await _price(http, "MNQZ6", 20990.0) == [placed["orderId"]]
    await _price(http, "MNQZ6", 21030.0)
    assert (await _order(http, user, leg))["stopPrice"] == 21020.0
    assert await _price(http, "MNQZ6", 21019.0) == [leg]
    assert (await _order(http, user, placed["oso1Id"]))["ordStatus"] == "Canceled"  # OCO


async def test_a_trailing_stop_needs_a_peg_on_tick(
    http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user("alice")
    account = user["accounts"][0]
    missing = _order_body(account, orderType="TrailingStop", stopPrice=20990.0)
    off_tick = {**missing, "pegDifference": 10.1}
    assert (await _post(http, user, "order/placeorder", missing))["failureReason"] == (
        "InvalidPrice"
    )
    assert (await _post(http, user, "order/placeorder", off_tick))["failureReason"] == (
        "InvalidPrice"
    )


async def test_ioc_fills_at_once_or_is_canceled_and_never_rests(
    http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user("alice")
    account = user["accounts"][0]
    await _price(http, "MNQZ6", 21000.0)
    away = _order_body(account, action="Buy", orderType="Limit", price=20990.0, timeInForce="IOC")
    marketable = {**away, "price": 21000.0}
    not_filled = (await _post(http, user, "order/placeorder", away))["orderId"]
    filled = (await _post(http, user, "order/placeorder", marketable))["orderId"]

    gone = await _order(http, user, not_filled)
    assert (gone["ordStatus"], gone["timeInForce"]) == ("Canceled", "IOC")
    assert await _price(http, "MNQZ6", 20990.0) == []  # it does not rest
    assert (await _order(http, user, filled))["ordStatus"] == "Filled"


async def test_ioc_cancels_the_unfilled_rest_and_fok_fills_whole_or_nothing(
    http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user("alice")
    account = user["accounts"][0]
    await http.post("/admin/partialfills", json={"accountId": account["id"], "qty": 1})
    ioc = _order_body(account, action="Buy", orderType="Market", orderQty=3, timeInForce="IOC")
    fok = {**ioc, "timeInForce": "FOK"}
    ioc_id = (await _post(http, user, "order/placeorder", ioc))["orderId"]
    fok_id = (await _post(http, user, "order/placeorder", fok))["orderId"]

    partly = await _order(http, user, ioc_id)
    assert (partly["ordStatus"], partly["cumQty"]) == ("Canceled", 1)
    nothing = await _order(http, user, fok_id)
    assert (nothing["ordStatus"], nothing.get("cumQty", 0)) == ("Canceled", 0)
    await http.post("/admin/partialfills", json={"accountId": account["id"], "qty": 0})
    whole = (await _post(http, user, "order/placeorder", fok))["orderId"]
    assert (await _order(http, user, whole))["ordStatus"] == "Filled"


async def test_day_and_gtc_rest_and_an_unknown_time_in_force_is_refused(
    http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user("alice")
    account = user["accounts"][0]
    await _price(http, "MNQZ6", 21000.0)
    for tif in ("Day", "GTC"):
        body = _order_body(account, action="Buy", orderType="Limit", price=20990.0, timeInForce=tif)
        order = await _order(
            http, user, (await _post(http, user, "order/placeorder", body))["orderId"]
        )
        assert (order["ordStatus"], order["timeInForce"]) == ("Working", tif)
    bad = _order_body(account, orderType="Market", timeInForce="Forever")
    assert (await _post(http, user, "order/placeorder", bad))["failureReason"] == "UnknownReason"
