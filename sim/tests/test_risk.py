"""Failure reasons a real account produces, and partial fills on demand."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from phalanx_sim import SimSettings, Simulator, running_simulator
from phalanx_sim.testing import login_body, oso_body

MakeUser = Callable[..., Awaitable[dict[str, Any]]]


def _market(account: dict[str, Any], action: str, qty: int) -> dict[str, Any]:
    return {
        "accountSpec": account["name"],
        "accountId": account["id"],
        "action": action,
        "symbol": "MNQZ6",
        "orderQty": qty,
        "orderType": "Market",
        "isAutomated": True,
    }


async def test_session_closed(http: httpx.AsyncClient, make_user: MakeUser) -> None:
    user = await make_user("alice")
    account = user["accounts"][0]
    assert (await http.post("/admin/market", json={"open": False})).json() == {"open": False}

    closed = await http.post("/v1/order/placeoso", json=oso_body(account), headers=user["headers"])
    await http.post("/admin/market", json={"open": True})
    reopened = await http.post(
        "/v1/order/placeoso", json=oso_body(account), headers=user["headers"]
    )

    assert closed.status_code == 200
    assert closed.json()["failureReason"] == "SessionClosed"
    assert "orderId" in reopened.json()


async def test_session_closed_by_setting() -> None:
    async with (
        running_simulator(SimSettings(sim_session_closed=True)) as sim,
        httpx.AsyncClient(base_url=sim.url) as http,
    ):
        user = sim.create_user("alice", "pw")
        token = (
            await http.post("/v1/auth/accesstokenrequest", json=login_body("alice", "pw"))
        ).json()["accessToken"]
        answer = await http.post(
            "/v1/order/placeorder",
            json=_market(user.accounts[0], "Buy", 1),
            headers={"Authorization": f"Bearer {token}"},
        )

    assert answer.json()["failureReason"] == "SessionClosed"


async def test_max_position(http: httpx.AsyncClient, make_user: MakeUser) -> None:
    user = await make_user("alice", accounts=2)
    first, second = user["accounts"]
    risk = await http.post("/admin/risk", json={"accountId": first["id"], "maxPosition": 2})
    assert risk.json() == {"accountId": first["id"], "maxPosition": 2}

    async def place(account: dict[str, Any], action: str, qty: int) -> dict[str, Any]:
        answer = await http.post(
            "/v1/order/placeorder", json=_market(account, action, qty), headers=user["headers"]
        )
        result: dict[str, Any] = answer.json()
        return result

    assert "orderId" in await place(first, "Buy", 2)
    refused = await place(first, "Buy", 1)
    other_account = await place(second, "Buy", 3)
    reducing = await place(first, "Sell", 1)

    assert refused["failureReason"] == "MaxPosLimitReached"
    assert refused["failureText"]
    assert "orderId" in other_account
    assert "orderId" in reducing


async def test_partial_fills_on_demand(
    sim: Simulator, http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user("alice")
    account = user["accounts"][0]
    await http.post("/admin/partialfills", json={"accountId": account["id"], "qty": 1})
    await http.post("/admin/prices", json={"symbol": "MNQZ6", "price": 21000})

    placed = (
        await http.post(
            "/v1/order/placeoso", json=oso_body(account, qty=3), headers=user["headers"]
        )
    ).json()

    async def entry() -> dict[str, Any]:
        orders = (await http.get("/admin/orders", params={"accountId": account["id"]})).json()
        return {o["id"]: o for o in orders}

    first = (await entry())[placed["orderId"]]
    assert (first["ordStatus"], first["cumQty"]) == ("Working", 1)
    assert (await entry())[placed["oso1Id"]]["ordStatus"] == "Suspended"
    positions = (await http.get("/admin/positions", params={"accountId": account["id"]})).json()
    assert positions[0]["netPos"] == 1

    await http.post("/admin/prices", json={"symbol": "MNQZ6", "price": 21000.25})
    second = (await entry())[placed["orderId"]]
    await http.post("/admin/prices", json={"symbol": "MNQZ6", "price": 21000.5})
    done = await entry()

    assert (second["ordStatus"], second["cumQty"]) == ("Working", 2)
    assert (done[placed["orderId"]]["ordStatus"], done[placed["orderId"]]["cumQty"]) == (
        "Filled",
        3,
    )
    assert done[placed["orderId"]]["avgPx"] == 21000.25
    assert done[placed["oso1Id"]]["ordStatus"] == "Working"
    fills = (await http.get("/admin/fills", params={"accountId": account["id"]})).json()
    assert [f["qty"] for f in fills] == [1, 1, 1]
    reports = [
        r
        for crec in sim.state.orders[placed["orderId"]].commands
        for r in crec.executions
        if r.execType == "Trade"
    ]
    assert [(r.ordStatus, r.cumQty) for r in reports] == [
        ("Working", 1),
        ("Working", 2),
        ("Filled", 3),
    ]


async def test_held_fills_come_at_the_next_price_move(
    sim: Simulator, http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user("alice")
    account = user["accounts"][0]
    await http.post("/admin/prices", json={"symbol": "MNQZ6", "price": 21000})
    held = await http.post("/admin/heldfills", json={"accountId": account["id"], "held": True})
    assert held.status_code == 200

    placed = (
        await http.post(
            "/v1/order/placeoso", json=oso_body(account, qty=2), headers=user["headers"]
        )
    ).json()

    async def orders() -> dict[int, dict[str, Any]]:
        rows = (await http.get("/admin/orders", params={"accountId": account["id"]})).json()
        return {o["id"]: o for o in rows}

    entry = (await orders())[placed["orderId"]]
    assert (entry["ordStatus"], entry["cumQty"]) == ("Working", 0)  # answered, not filled
    assert (await http.get("/admin/fills", params={"accountId": account["id"]})).json() == []

    await http.post("/admin/prices", json={"symbol": "MNQZ6", "price": 21000})  # same price
    now = await orders()
    assert (now[placed["orderId"]]["ordStatus"], now[placed["orderId"]]["cumQty"]) == ("Filled", 2)
    assert now[placed["oso1Id"]]["ordStatus"] == "Working"  # the bracket started after the fill
    positions = (await http.get("/admin/positions", params={"accountId": account["id"]})).json()
    assert positions[0]["netPos"] == 2
