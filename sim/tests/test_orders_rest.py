"""Order entry over REST: placeoso, placeorder, validation failures, deps endpoints."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from phalanx_sim import SimSettings, running_simulator
from phalanx_sim.testing import login_body, oso_body

MakeUser = Callable[..., Awaitable[dict[str, Any]]]


async def _get(http: httpx.AsyncClient, user: dict[str, Any], path: str, **params: Any) -> Any:
    response = await http.get(f"/v1/{path}", params=params, headers=user["headers"])
    assert response.status_code == 200, response.text
    return response.json()


async def test_placeoso_market_entry_fills_and_arms_brackets(
    http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user("alice")
    account = user["accounts"][0]

    response = await http.post(
        "/v1/order/placeoso", json=oso_body(account, qty=3), headers=user["headers"]
    )

    assert response.status_code == 200
    result = response.json()
    assert set(result) == {"orderId", "oso1Id", "oso2Id"}
    orders = {o["id"]: o for o in await _get(http, user, "order/deps", masterid=account["id"])}
    entry, take_profit, stop_loss = (
        orders[result["orderId"]],
        orders[result["oso1Id"]],
        orders[result["oso2Id"]],
    )
    assert entry["ordStatus"] == "Filled"
    assert take_profit["ordStatus"] == stop_loss["ordStatus"] == "Working"
    assert take_profit["parentId"] == stop_loss["parentId"] == entry["id"]
    assert take_profit["linkedId"] == stop_loss["id"]
    assert stop_loss["linkedId"] == take_profit["id"]

    fills = await _get(http, user, "fill/deps", masterid=result["orderId"])
    assert [(f["action"], f["qty"], f["price"]) for f in fills] == [("Buy", 3, 21000.0)]
    assert fills[0]["tradeDate"].keys() == {"year", "month", "day"}
    positions = await _get(http, user, "position/deps", masterid=account["id"])
    assert [(p["netPos"], p["netPrice"], p["bought"]) for p in positions] == [(3, 21000.0, 3)]
    versions = await _get(http, user, "orderVersion/deps", masterid=result["oso1Id"])
    assert [(v["orderQty"], v["orderType"], v["price"]) for v in versions] == [
        (3, "Limit", 21010.0)
    ]


async def test_clordid_is_stored_on_the_command_and_never_deduplicated(
    http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user("alice")
    account = user["accounts"][0]
    body = oso_body(account, cl_ord_id="intent-42")

    first = (await http.post("/v1/order/placeoso", json=body, headers=user["headers"])).json()
    second = (await http.post("/v1/order/placeoso", json=body, headers=user["headers"])).json()

    assert first["orderId"] != second["orderId"]
    commands = await _get(http, user, "command/deps", masterid=second["orderId"])
    assert [(c["commandType"], c["clOrdId"], c["isAutomated"]) for c in commands] == [
        ("New", "intent-42", True)
    ]
    positions = await _get(http, user, "position/deps", masterid=account["id"])
    assert positions[0]["netPos"] == 2


async def test_endpoint_names_are_case_insensitive(
    http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user("alice")
    account = user["accounts"][0]

    upper = await http.post("/v1/order/placeOSO", json=oso_body(account), headers=user["headers"])
    mixed = await http.get(
        "/v1/Order/Deps", params={"masterid": account["id"]}, headers=user["headers"]
    )

    assert "orderId" in upper.json()
    assert len(mixed.json()) == 3


async def test_placeorder_limit_rests_until_the_price_crosses(
    http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user("alice")
    account = user["accounts"][0]
    body = {
        "accountSpec": account["name"],
        "accountId": account["id"],
        "action": "Buy",
        "symbol": "MNQZ6",
        "orderQty": 1,
        "orderType": "Limit",
        "price": 20995.25,
        "isAutomated": True,
    }

    placed = (await http.post("/v1/order/placeorder", json=body, headers=user["headers"])).json()
    resting = await _get(http, user, "order/item", id=placed["orderId"])
    moved = await http.post("/admin/prices", json={"symbol": "MNQZ6", "price": 20995.0})
    filled = await _get(http, user, "order/item", id=placed["orderId"])

    assert set(placed) == {"orderId"}
    assert resting["ordStatus"] == "Working"
    assert moved.json()["filledOrderIds"] == [placed["orderId"]]
    assert filled["ordStatus"] == "Filled"
    fills = await _get(http, user, "fill/deps", masterid=placed["orderId"])
    assert [f["price"] for f in fills] == [20995.25]  # a Limit fills at its limit


async def test_off_tick_prices_are_rejected(http: httpx.AsyncClient, make_user: MakeUser) -> None:
    user = await make_user("alice")
    account = user["accounts"][0]

    off_tick_bracket = oso_body(account, take_profit=21010.1)
    rejected = await http.post("/v1/order/placeoso", json=off_tick_bracket, headers=user["headers"])
    off_tick_entry = {**oso_body(account), "orderType": "Limit", "price": 20999.3}
    rejected_entry = await http.post(
        "/v1/order/placeoso", json=off_tick_entry, headers=user["headers"]
    )

    assert rejected.status_code == 200
    assert rejected.json()["failureReason"] == "InvalidPrice"
    assert "orderId" not in rejected.json()
    assert rejected_entry.json()["failureReason"] == "InvalidPrice"
    assert await _get(http, user, "order/deps", masterid=account["id"]) == []


async def test_unknown_symbol_is_invalid_contract(
    http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user("alice")
    account = user["accounts"][0]

    for symbol in ("MNQ1!", "XYZZ6", "ESF6"):  # continuous, unknown root, unlisted month
        body = oso_body(account, symbol=symbol)
        result = (await http.post("/v1/order/placeoso", json=body, headers=user["headers"])).json()
        assert result["failureReason"] == "InvalidContract", symbol


async def test_foreign_account_is_rejected(http: httpx.AsyncClient, make_user: MakeUser) -> None:
    alice = await make_user("alice")
    bob = await make_user("bob")
    bobs = bob["accounts"][0]

    foreign = await http.post("/v1/order/placeoso", json=oso_body(bobs), headers=alice["headers"])
    spoofed_spec = {**oso_body(alice["accounts"][0]), "accountSpec": bobs["name"]}
    mismatched = await http.post("/v1/order/placeoso", json=spoofed_spec, headers=alice["headers"])
    no_account = {k: v for k, v in oso_body(alice["accounts"][0]).items() if k != "accountId"}
    missing = await http.post("/v1/order/placeoso", json=no_account, headers=alice["headers"])

    assert foreign.status_code == 200
    assert foreign.json() == {"failureReason": "Unauthorized", "failureText": "Access is denied"}
    assert mismatched.json()["failureReason"] == "Unauthorized"
    assert missing.json()["failureText"].startswith("Violation")
    assert await _get(http, bob, "order/deps", masterid=bobs["id"]) == []
    assert await _get(http, alice, "order/deps", masterid=bobs["id"]) == []


async def test_malformed_body_is_400(http: httpx.AsyncClient, make_user: MakeUser) -> None:
    user = await make_user("alice")
    body = {**oso_body(user["accounts"][0]), "orderQty": "two"}

    response = await http.post("/v1/order/placeoso", json=body, headers=user["headers"])

    assert response.status_code == 400
    assert "orderQty" in response.json()["errorText"]


async def test_contract_find_and_item(http: httpx.AsyncClient, make_user: MakeUser) -> None:
    user = await make_user("alice")

    short = await _get(http, user, "contract/find", name="MNQZ6")
    long = await _get(http, user, "contract/find", name="MNQZ26")
    item = await _get(http, user, "contract/item", id=short["id"])
    es = await _get(http, user, "contract/find", name="ESH27")
    missing = await http.get("/v1/contract/find", params={"name": "NOPE"}, headers=user["headers"])

    assert short == long == item
    assert short["name"] == "MNQZ6"
    assert es["name"] == "ESH7"
    assert es["id"] != short["id"]
    assert missing.status_code == 404


async def test_unknown_endpoint_is_404(http: httpx.AsyncClient, make_user: MakeUser) -> None:
    user = await make_user("alice")
    response = await http.get("/v1/quote/subscribe", headers=user["headers"])
    assert response.status_code == 404


async def test_foreign_account_denied_mode_answers_401() -> None:
    settings = SimSettings(sim_foreign_account_mode="denied")
    async with running_simulator(settings) as sim, httpx.AsyncClient(base_url=sim.url) as http:
        await http.post("/admin/users", json={"name": "alice", "password": "pw"})
        bob = (await http.post("/admin/users", json={"name": "bob", "password": "pw"})).json()
        token = (
            await http.post("/v1/auth/accesstokenrequest", json=login_body("alice", "pw"))
        ).json()["accessToken"]

        response = await http.post(
            "/v1/order/placeoso",
            json=oso_body(bob["accounts"][0]),
            headers={"Authorization": f"Bearer {token}"},
        )

    assert response.status_code == 401
    assert response.json() == "Access is denied"
