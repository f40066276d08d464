"""Faults on demand through the admin API: dropped responses, 5xx, penalty storms, latency,
socket drops and shutdown events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import msgspec

from phalanx_sim import SimSettings, Simulator, running_simulator
from phalanx_sim.state import Session
from phalanx_sim.testing import SimSocket, login_body, oso_body
from phalanx_sim.venue import Reply
from phalanx_testing.waiting import eventually

MakeUser = Callable[..., Awaitable[dict[str, Any]]]


def _orders_with(sim: Simulator, cl_ord_id: str) -> list[int]:
    return [
        rec.order.id
        for rec in sim.state.orders.values()
        if rec.new_command.command.clOrdId == cl_ord_id and rec.order.parentId is None
    ]


async def test_dropped_socket_response_after_the_order_was_accepted(
    sim: Simulator, http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user("alice")
    fault = await http.post("/admin/faults", json={"userId": user["userId"], "dropResponses": 1})
    assert fault.json()["dropResponses"] == 1
    sock = await SimSocket.connect(sim.ws_url)
    try:
        await sock.authorize(user["token"])
        await sock.request("user/syncrequest", {"users": [user["userId"]]})
        body = oso_body(user["accounts"][0], cl_ord_id="lost-1")
        await sock.send_raw("order/placeoso\n77\n\n{}")  # invalid: answered 400
        await sock.send_raw("order/placeoso\n78\n\n" + msgspec.json.encode(body).decode())

        def entry_filled() -> list[dict[str, Any]]:
            return [
                p for p in sock.props("order") if p["entity"]["id"] in _orders_with(sim, "lost-1")
            ]

        await eventually(entry_filled, what="events of the accepted order")
        second = await sock.request("order/placeoso", oso_body(user["accounts"][0], cl_ord_id="ok"))
    finally:
        await sock.close()

    assert 77 in sock.responses  # the malformed request was answered (not an accepted order)
    assert 78 not in sock.responses  # the accepted order's response was dropped
    assert len(_orders_with(sim, "lost-1")) == 1  # but the order exists
    assert "orderId" in second["d"]  # only the next 1 was dropped
    assert (await http.get("/admin/faults")).json() == []


async def test_dropped_rest_response_hangs_then_504_and_the_order_exists() -> None:
    async with (
        running_simulator(SimSettings(sim_fault_drop_hang_s=0.1)) as sim,
        httpx.AsyncClient(base_url=sim.url) as http,
    ):
        user = sim.create_user("alice", "pw")
        token = (
            await http.post("/v1/auth/accesstokenrequest", json=login_body("alice", "pw"))
        ).json()["accessToken"]
        await http.post("/admin/faults", json={"dropResponses": 1})  # global

        answer = await http.post(
            "/v1/order/placeoso",
            json=oso_body(user.accounts[0], cl_ord_id="lost-rest"),
            headers={"Authorization": f"Bearer {token}"},
        )

        assert answer.status_code == 504
        assert len(_orders_with(sim, "lost-rest")) == 1


async def test_5xx_before_handling(
    sim: Simulator, http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user("alice")
    await http.post(
        "/admin/faults",
        json={
            "userId": user["userId"],
            "errorStatus": 502,
            "errorCount": 2,
            "endpoints": ["order/placeOSO"],
        },
    )
    body = oso_body(user["accounts"][0], cl_ord_id="x")

    me = await http.get("/v1/auth/me", headers=user["headers"])
    answers = [
        await http.post("/v1/order/placeoso", json=body, headers=user["headers"]) for _ in range(3)
    ]

    assert me.status_code == 200  # other endpoints are untouched
    assert [a.status_code for a in answers] == [502, 502, 200]
    assert len(_orders_with(sim, "x")) == 1  # the 5xx requests placed nothing


async def test_penalty_storm_is_honoured_with_the_ticket_and_is_no_violation(
    sim: Simulator, http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user("alice")
    await http.post("/admin/faults", json={"penaltyCount": 1, "penaltyTimeS": 0})
    body = oso_body(user["accounts"][0], cl_ord_id="storm")

    first = (await http.post("/v1/order/placeoso", json=body, headers=user["headers"])).json()
    resent = (
        await http.post(
            "/v1/order/placeoso",
            json={**body, "p-ticket": first["p-ticket"]},
            headers=user["headers"],
        )
    ).json()

    assert first["p-time"] == 0
    assert "orderId" in resent
    assert len(_orders_with(sim, "storm")) == 1
    assert (await http.get("/admin/violations")).json()["count"] == 0


async def test_latency_fault_still_answers_everything(
    sim: Simulator, http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user("alice")
    await http.post("/admin/faults", json={"userId": user["userId"], "latencyMs": 20})
    sock = await SimSocket.connect(sim.ws_url)
    try:
        await sock.authorize(user["token"])
        answer = await sock.request("order/placeoso", oso_body(user["accounts"][0]))
    finally:
        await sock.close()
    rest = await http.get("/v1/account/list", headers=user["headers"])

    assert "orderId" in answer["d"]
    assert rest.status_code == 200
    cleared = await http.delete("/admin/faults", params={"userId": user["userId"]})
    assert cleared.json() == {"ok": True}
    assert (await http.get("/admin/faults")).json() == []


async def test_latency_jitter_spreads_each_answer_over_the_range(
    sim: Simulator, http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user("alice")
    fault = await http.post(
        "/admin/faults",
        json={"userId": user["userId"], "latencyMs": 50, "latencyJitterMs": 20, "seed": 7},
    )
    session = Session(
        token="t", md_token="m", user_id=user["userId"], session_id=1, expires_at=1e12
    )
    delays = [
        sim.venue.settle("order/placeoso", session, b"{}", Reply(200, {}), "127.0.0.1", 0.0).delay
        for _ in range(200)
    ]

    assert fault.json()["latencyJitterMs"] == 20
    assert all(0.030 <= d <= 0.070 for d in delays)
    assert min(delays) < 0.040 < 0.060 < max(delays)  # spread, not one fixed delay


async def test_drop_sockets_without_a_close_frame(
    sim: Simulator, http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    alice = await make_user("alice")
    bob = await make_user("bob")
    socks = [await SimSocket.connect(sim.ws_url) for _ in range(2)]
    try:
        await socks[0].authorize(alice["token"])
        await socks[1].authorize(bob["token"])

        dropped = await http.post("/admin/sockets/drop", json={"userId": alice["userId"]})

        assert dropped.json() == {"dropped": 1}
        await eventually(lambda: socks[0].closed, what="alice's socket dropped")
        assert socks[0].close_frame is None
        assert not socks[1].closed
        assert (await socks[1].request("auth/me"))["s"] == 200
    finally:
        for sock in socks:
            await sock.close()


async def test_shutdown_event_then_close(
    sim: Simulator, http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user("alice")
    sock = await SimSocket.connect(sim.ws_url)
    try:
        await sock.authorize(user["token"])
        told = await http.post(
            "/admin/shutdown", json={"reasonCode": "Maintenance", "userId": user["userId"]}
        )
        assert told.json() == {"told": 1}
        await eventually(lambda: sock.closed, what="socket closed after shutdown")
    finally:
        await sock.close()

    assert sock.events[-1]["e"] == "shutdown"
    assert sock.events[-1]["d"]["reasonCode"] == "Maintenance"
    assert sock.close_frame is not None


async def test_random_5xx_on_the_socket_carries_the_status_and_places_nothing(
    sim: Simulator, http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user("alice")
    fault = await http.post(
        "/admin/faults",
        json={"errorRate": 0.5, "errorStatus": 502, "endpoints": ["order/placeOSO"], "seed": 7},
    )
    assert fault.status_code == 200
    sock = await SimSocket.connect(sim.ws_url)
    try:
        await sock.authorize(user["token"])
        answers = [
            await sock.request("order/placeoso", oso_body(user["accounts"][0], cl_ord_id=f"r-{n}"))
            for n in range(40)
        ]
    finally:
        await sock.close()

    failed = [n for n, a in enumerate(answers) if a["s"] == 502]
    placed = [n for n, a in enumerate(answers) if a["s"] == 200 and "orderId" in a["d"]]
    assert 0 < len(failed) < 40  # some, not all: drawn, not counted
    assert sorted(failed + placed) == list(range(40))
    assert all(len(_orders_with(sim, f"r-{n}")) == 0 for n in failed)  # nothing happened
    assert all(len(_orders_with(sim, f"r-{n}")) == 1 for n in placed)
    assert len((await http.get("/admin/faults")).json()) == 1  # never used up


async def test_random_drops_lose_answers_of_accepted_orders_only(
    sim: Simulator, http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user("alice")
    await http.post("/admin/faults", json={"dropRate": 0.5, "seed": 3, "latencyMs": 0})
    sock = await SimSocket.connect(sim.ws_url)
    try:
        await sock.authorize(user["token"])
        base = 500
        for n in range(40):
            body = oso_body(user["accounts"][0], cl_ord_id=f"d-{n}")
            await sock.send_raw(
                f"order/placeoso\n{base + n}\n\n" + msgspec.json.encode(body).decode()
            )
        me = await sock.request("auth/me")  # answered after all 40 were handled
    finally:
        await sock.close()

    answered = [n for n in range(40) if base + n in sock.responses]
    assert me["s"] == 200
    assert 0 < len(answered) < 40
    assert all(len(_orders_with(sim, f"d-{n}")) == 1 for n in range(40))  # every one accepted


async def test_bad_rates_are_refused(http: httpx.AsyncClient) -> None:
    assert (await http.post("/admin/faults", json={"dropRate": 1.5})).status_code == 400
    assert (
        await http.post("/admin/faults", json={"errorRate": 0.1, "errorStatus": 404})
    ).status_code == 400


async def test_connects_log_times_every_open_and_authorize(
    sim: Simulator, http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    alice = await make_user("alice")
    bob = await make_user("bob")
    socks = [await SimSocket.connect(sim.ws_url) for _ in range(3)]
    try:
        await socks[0].authorize(alice["token"])
        await socks[1].authorize(bob["token"])
        refused = await socks[2].authorize("not-a-token")
    finally:
        for sock in socks:
            await sock.close()

    log = (await http.get("/admin/connects")).json()
    authorized = (await http.get("/admin/connects", params={"kind": "authorize"})).json()
    later = await http.get("/admin/connects", params={"since": log["connects"][-1]["at"] + 1})
    assert refused["s"] == 401
    assert [c["kind"] for c in log["connects"]].count("open") == 3
    assert sorted(c["userId"] for c in authorized["connects"]) == sorted(
        [alice["userId"], bob["userId"]]
    )
    assert sum(log["perSecond"].values()) == log["count"] == 5
    assert later.json()["count"] == 0
