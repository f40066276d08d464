"""The trading WebSocket: framing, authorize, requests, syncrequest and props events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest_asyncio

from phalanx_sim import SimSettings, Simulator, running_simulator
from phalanx_sim.testing import SimSocket, login_body, oso_body
from phalanx_testing.waiting import eventually

MakeUser = Callable[..., Awaitable[dict[str, Any]]]


@pytest_asyncio.fixture
async def connect(sim: Simulator) -> AsyncIterator[Callable[[], Awaitable[SimSocket]]]:
    sockets: list[SimSocket] = []

    async def _connect() -> SimSocket:
        sock = await SimSocket.connect(sim.ws_url)
        sockets.append(sock)
        return sock

    yield _connect
    for sock in sockets:
        await sock.close()


async def _synced(
    connect: Callable[[], Awaitable[SimSocket]], user: dict[str, Any], **body: Any
) -> tuple[SimSocket, dict[str, Any]]:
    sock = await connect()
    assert (await sock.authorize(user["token"]))["s"] == 200
    sync = await sock.request(
        "user/syncrequest", {"users": [user["userId"]], "splitResponses": True, **body}
    )
    assert sync["s"] == 200
    return sock, sync["d"]


async def test_open_frame_and_authorize(
    connect: Callable[[], Awaitable[SimSocket]], make_user: MakeUser
) -> None:
    user = await make_user("alice")
    sock = await connect()

    bad = await sock.authorize("not-a-token")
    good = await sock.authorize(user["token"])

    assert sock.frames[0] == "o"
    assert bad == {"s": 401, "i": 1, "d": "Invalid access token"}
    assert good == {"s": 200, "i": 2}


async def test_requests_before_authorize_get_401(
    connect: Callable[[], Awaitable[SimSocket]], make_user: MakeUser
) -> None:
    user = await make_user("alice")
    sock = await connect()

    listed = await sock.request("account/list")
    placed = await sock.request("order/placeoso", oso_body(user["accounts"][0]))
    synced = await sock.request("user/syncrequest", {"users": [user["userId"]]})

    assert [r["s"] for r in (listed, placed, synced)] == [401, 401, 401]
    assert listed["d"] == "Access is denied"


async def test_rest_endpoints_work_over_the_socket(
    connect: Callable[[], Awaitable[SimSocket]], make_user: MakeUser
) -> None:
    user = await make_user("alice", accounts=2)
    sock = await connect()
    await sock.authorize(user["token"])

    accounts = await sock.request("account/list")
    contract = await sock.request("contract/find", query="name=MESH6")
    missing = await sock.request("quote/subscribe")

    assert [a["id"] for a in accounts["d"]] == [a["id"] for a in user["accounts"]]
    assert contract["d"]["name"] == "MESH6"
    assert missing["s"] == 404
    assert missing["d"] == '"Not found: quote/subscribe"'


async def test_placeoso_over_websocket_sends_props_in_order(
    connect: Callable[[], Awaitable[SimSocket]], make_user: MakeUser
) -> None:
    user = await make_user("alice")
    account = user["accounts"][0]
    sock, _ = await _synced(connect, user)

    response = await sock.request("order/placeOSO", oso_body(account, qty=2, cl_ord_id="c-1"))

    assert response["s"] == 200
    result = response["d"]
    assert set(result) == {"orderId", "oso1Id", "oso2Id"}
    entry_id = result["orderId"]

    def until_position() -> list[dict[str, Any]]:
        events = sock.props()
        return events if any(d["entityType"] == "position" for d in events) else []

    events = await eventually(until_position, what="props up to the position")
    kinds = [d["entityType"] for d in events]
    assert kinds.index("order") < kinds.index("executionReport") < kinds.index("fill")
    assert kinds.index("fill") < kinds.index("position")
    assert events[0] == {
        "entityType": "order",
        "eventType": "Created",
        "entity": events[0]["entity"],
    }
    assert events[0]["entity"]["id"] == entry_id
    assert ("order", "Updated", "Filled") in [
        (d["entityType"], d["eventType"], d["entity"].get("ordStatus")) for d in events
    ]
    fill = sock.props("fill")[0]["entity"]
    assert (fill["orderId"], fill["qty"], fill["price"], fill["action"]) == (
        entry_id,
        2,
        21000.0,
        "Buy",
    )
    position = sock.props("position")[-1]["entity"]
    assert (position["accountId"], position["netPos"], position["netPrice"]) == (
        account["id"],
        2,
        21000.0,
    )
    command = sock.props("command")[0]["entity"]
    assert (command["orderId"], command["clOrdId"], command["isAutomated"]) == (
        entry_id,
        "c-1",
        True,
    )
    trade = [
        d["entity"] for d in sock.props("executionReport") if d["entity"]["execType"] == "Trade"
    ]
    assert [(r["orderId"], r["cumQty"], r["avgPx"], r["ordStatus"]) for r in trade] == [
        (entry_id, 2, 21000.0, "Filled")
    ]
    # the response is sent before the events it caused
    text = "".join(sock.frames)
    assert text.index(f'"i":{response["i"]},"d":{{"orderId"') < text.index('"e":"props"')


async def test_syncrequest_snapshot_contains_only_own_entities(
    http: httpx.AsyncClient,
    connect: Callable[[], Awaitable[SimSocket]],
    make_user: MakeUser,
) -> None:
    alice = await make_user("alice", accounts=2)
    bob = await make_user("bob")
    for user in (alice, bob):
        for account in user["accounts"]:
            placed = await http.post(
                "/v1/order/placeoso", json=oso_body(account), headers=user["headers"]
            )
            assert "orderId" in placed.json()

    _, snapshot = await _synced(connect, alice)

    alice_ids = {a["id"] for a in alice["accounts"]}
    assert [u["id"] for u in snapshot["users"]] == [alice["userId"]]
    assert {a["id"] for a in snapshot["accounts"]} == alice_ids
    assert len(snapshot["orders"]) == 6
    assert {o["accountId"] for o in snapshot["orders"]} == alice_ids
    assert {p["accountId"] for p in snapshot["positions"]} == alice_ids
    assert {c["accountId"] for c in snapshot["cashBalances"]} == alice_ids
    own_orders = {o["id"] for o in snapshot["orders"]}
    assert {f["orderId"] for f in snapshot["fills"]} <= own_orders
    assert len(snapshot["fills"]) == 2
    assert {v["orderId"] for v in snapshot["orderVersions"]} == own_orders
    assert {c["orderId"] for c in snapshot["commands"]} == own_orders
    assert {r["accountId"] for r in snapshot["executionReports"]} == alice_ids
    assert [c["name"] for c in snapshot["contracts"]] == ["MNQZ6"]


async def test_syncrequest_entity_types_filter_snapshot_and_events(
    http: httpx.AsyncClient,
    connect: Callable[[], Awaitable[SimSocket]],
    make_user: MakeUser,
) -> None:
    user = await make_user("alice")
    sock, snapshot = await _synced(connect, user, entityTypes=["position", "fill"])

    await http.post(
        "/v1/order/placeoso", json=oso_body(user["accounts"][0]), headers=user["headers"]
    )
    await eventually(lambda: sock.props("position"), what="position event")

    assert set(snapshot) == {"positions", "fills"}
    assert {d["entityType"] for d in sock.props()} == {"position", "fill"}


async def test_other_users_events_are_not_delivered(
    http: httpx.AsyncClient,
    connect: Callable[[], Awaitable[SimSocket]],
    make_user: MakeUser,
) -> None:
    alice = await make_user("alice")
    bob = await make_user("bob")
    alice_sock, _ = await _synced(connect, alice)
    bob_sock, _ = await _synced(connect, bob)

    await http.post("/v1/order/placeoso", json=oso_body(bob["accounts"][0]), headers=bob["headers"])
    await eventually(lambda: bob_sock.props("position"), what="bob's position event")
    # alice's socket is still served: a request round-trip proves everything before it arrived
    await alice_sock.request("account/list")

    assert alice_sock.props() == []


async def test_client_heartbeat_is_accepted_and_server_heartbeats_when_quiet() -> None:
    settings = SimSettings(sim_ws_heartbeat_s=0.1, sim_ws_idle_timeout_s=0)
    async with running_simulator(settings) as sim:
        sock = await SimSocket.connect(sim.ws_url)
        try:
            await sock.heartbeat()
            await eventually(lambda: sock.heartbeats >= 2, what="two server heartbeats")
            conn = next(iter(sim.hub.connections))
            await eventually(lambda: conn.client_heartbeats == 1, what="client heartbeat seen")
            assert not sock.closed
        finally:
            await sock.close()


async def test_idle_socket_is_closed_with_a_close_frame() -> None:
    settings = SimSettings(sim_ws_idle_timeout_s=0.3)
    async with running_simulator(settings) as sim:
        sock = await SimSocket.connect(sim.ws_url)
        try:
            await eventually(lambda: sock.closed, what="socket closed")
            assert sock.close_frame is not None
            assert sock.close_frame[0] == 1000
            assert sock.frames[-1].startswith("c[")
        finally:
            await sock.close()


async def test_admin_shutdown_sends_shutdown_event(
    http: httpx.AsyncClient, connect: Callable[[], Awaitable[SimSocket]], make_user: MakeUser
) -> None:
    user = await make_user("alice")
    sock = await connect()
    await sock.authorize(user["token"])

    told = await http.post(
        "/admin/shutdown", json={"reasonCode": "Maintenance", "reason": "weekly maintenance"}
    )
    await eventually(lambda: sock.closed, what="socket closed")

    assert told.json() == {"told": 1}
    assert sock.events == [
        {"e": "shutdown", "d": {"reasonCode": "Maintenance", "reason": "weekly maintenance"}}
    ]


async def test_without_coalescing_every_message_has_its_own_frame() -> None:
    async with running_simulator(SimSettings(sim_ws_coalesce=False)) as sim:
        async with httpx.AsyncClient(base_url=sim.url) as http:
            user = (await http.post("/admin/users", json={"name": "a", "password": "pw"})).json()
            token = (
                await http.post("/v1/auth/accesstokenrequest", json=login_body("a", "pw"))
            ).json()["accessToken"]
        sock = await SimSocket.connect(sim.ws_url)
        try:
            await sock.authorize(token)
            await sock.request("user/syncrequest", {"users": [user["userId"]]})
            await sock.request("order/placeoso", oso_body(user["accounts"][0]))
            await eventually(lambda: sock.props("position"), what="position event")
            arrays = [f for f in sock.frames if f.startswith("a")]
            assert all(f.count('"e":"props"') + f.count('"s":') == 1 for f in arrays)
            assert len(arrays) == 3 + len(sock.props())
        finally:
            await sock.close()


async def test_syncrequest_by_accounts_only_subscribes_those_accounts(
    http: httpx.AsyncClient,
    connect: Callable[[], Awaitable[SimSocket]],
    make_user: MakeUser,
) -> None:
    user = await make_user("alice", accounts=2)
    first, second = user["accounts"]
    sock = await connect()
    await sock.authorize(user["token"])

    sync = await sock.request("user/syncrequest", {"accounts": [second["id"]]})
    for account in (first, second):
        await http.post("/v1/order/placeoso", json=oso_body(account), headers=user["headers"])
    await eventually(lambda: sock.props("position"), what="position event")
    await sock.request("account/list")

    assert [a["id"] for a in sync["d"]["accounts"]] == [second["id"]]
    assert {d["entity"]["accountId"] for d in sock.props("order")} == {second["id"]}
