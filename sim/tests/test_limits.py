"""Rate limits: p-ticket penalties, 423/429 lockouts, endpoint limits and violation counting.

Time is a :class:`ManualClock`: windows, penalties and lockouts move only when the test says so.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest_asyncio

from phalanx_sim import SimSettings, Simulator, running_simulator
from phalanx_sim.testing import ManualClock, SimSocket, login_body, oso_body

SMALL = SimSettings(
    sim_limit_per_minute=3,
    sim_limit_per_hour=10,
    sim_penalty_strikes=2,
    sim_lockout_s=600.0,
    sim_limit_renew_per_hour=2,
    sim_limit_sync_per_hour=1,
    sim_limit_login_failures_per_hour=2,
)


@dataclass
class Env:
    sim: Simulator
    http: httpx.AsyncClient
    clock: ManualClock


@pytest_asyncio.fixture
async def env() -> AsyncIterator[Env]:
    clock = ManualClock()
    async with (
        running_simulator(SMALL, clock=clock) as sim,
        httpx.AsyncClient(base_url=sim.url, timeout=10) as http,
    ):
        yield Env(sim, http, clock)


async def _user(env: Env, name: str = "alice") -> dict[str, Any]:
    created = (
        await env.http.post("/admin/users", json={"name": name, "password": "pw", "accounts": 1})
    ).json()
    login = (await env.http.post("/v1/auth/accesstokenrequest", json=login_body(name, "pw"))).json()
    return {
        **created,
        "token": login["accessToken"],
        "headers": {"Authorization": f"Bearer {login['accessToken']}"},
    }


async def _place(env: Env, user: dict[str, Any], ticket: str | None = None) -> httpx.Response:
    body = oso_body(user["accounts"][0])
    if ticket is not None:
        body["p-ticket"] = ticket
    return await env.http.post("/v1/order/placeoso", json=body, headers=user["headers"])


async def _violations(env: Env) -> dict[str, Any]:
    result: dict[str, Any] = (await env.http.get("/admin/violations")).json()
    return result


async def test_over_the_minute_limit_is_a_penalty_then_the_ticket_is_honoured(env: Env) -> None:
    user = await _user(env)
    placed = [(await _place(env, user)).json() for _ in range(3)]
    over = await _place(env, user)

    assert all("orderId" in p for p in placed)
    assert over.status_code == 200
    penalty = over.json()
    assert set(penalty) == {"p-ticket", "p-time"}
    assert penalty["p-time"] == 60
    assert len(env.sim.state.orders) == 9  # the penalized request was not handled

    early = await _place(env, user, penalty["p-ticket"])  # before p-time: ignored the penalty
    assert "p-ticket" in early.json()
    env.clock.advance(penalty["p-time"])
    resent = await _place(env, user, penalty["p-ticket"])

    assert "orderId" in resent.json()
    violations = await _violations(env)
    assert violations["count"] == 2
    assert violations["byLogin"] == {str(user["userId"]): 2}
    assert [v["kind"] for v in violations["recent"]] == ["rate", "penalty"]
    stats = (await env.http.get("/admin/stats")).json()
    assert stats["violationCount"] == 2
    assert len(stats["violations"]) == 2


async def test_clients_that_keep_pushing_get_423_then_a_429_lockout_that_requests_extend(
    env: Env,
) -> None:
    user = await _user(env)
    for _ in range(3):
        await _place(env, user)
    statuses = []
    for _ in range(5):
        answer = await _place(env, user)
        statuses.append("p-ticket" if "p-ticket" in answer.text else answer.status_code)

    # first over the limit, then 2 strikes that get tickets, then the warning, then the lockout
    assert statuses == ["p-ticket", "p-ticket", "p-ticket", 423, 429]
    env.clock.advance(599)
    assert (await _place(env, user)).status_code == 429  # restarts the 600 s lockout
    env.clock.advance(599)
    assert (await env.http.get("/v1/account/list", headers=user["headers"])).status_code == 429
    env.clock.advance(601)
    assert (await env.http.get("/v1/account/list", headers=user["headers"])).status_code == 200
    assert (await _violations(env))["count"] == 7
    view = (await env.http.get("/admin/limits", params={"userId": user["userId"]})).json()
    assert view["logins"][str(user["userId"])]["violations"] == 7


async def test_limits_are_per_login(env: Env) -> None:
    alice = await _user(env, "alice")
    bob = await _user(env, "bob")
    for _ in range(4):
        await _place(env, alice)

    answer = await _place(env, bob)

    assert "orderId" in answer.json()
    assert (await _violations(env))["byLogin"] == {str(alice["userId"]): 1}


async def test_the_hour_window(env: Env) -> None:
    user = await _user(env)
    for _ in range(3):
        for _ in range(3):
            assert "orderId" in (await _place(env, user)).json()
        env.clock.advance(61)
    assert "orderId" in (await _place(env, user)).json()  # 10th in the hour

    over = (await _place(env, user)).json()

    assert over["p-time"] == 3600 - 3 * 61


async def test_429_over_the_socket(env: Env) -> None:
    user = await _user(env)
    sock = await SimSocket.connect(env.sim.ws_url)
    try:
        assert (await sock.authorize(user["token"]))["s"] == 200  # authorize is not counted
        answers = [await sock.request("account/list") for _ in range(8)]
    finally:
        await sock.close()

    assert [a["s"] for a in answers[:3]] == [200, 200, 200]
    assert "p-ticket" in answers[3]["d"]
    assert answers[-2]["s"] == 423
    assert answers[-1] == {"s": 429, "i": 9, "d": "Too Many Requests: locked out"}


async def test_renewal_and_sync_endpoint_limits(env: Env) -> None:
    user = await _user(env)
    renewals = [
        (await env.http.get("/v1/auth/renewaccesstoken", headers=user["headers"])).json()
        for _ in range(3)
    ]
    env.clock.advance(61)  # out of the login's minute window (renewals count there too)
    sock = await SimSocket.connect(env.sim.ws_url)
    try:
        await sock.authorize(user["token"])
        first = await sock.request("user/syncrequest", {"users": [user["userId"]]})
        second = await sock.request("user/syncrequest", {"users": [user["userId"]]})
    finally:
        await sock.close()

    assert "accessToken" in renewals[0]
    assert "accessToken" in renewals[1]
    assert renewals[2]["p-time"] == 3600  # window, longer than the 15 s back-off
    assert first["s"] == 200
    assert "accounts" in first["d"]
    assert "p-ticket" in second["d"]
    kinds = [(v["endpoint"], v["kind"]) for v in (await _violations(env))["recent"]]
    assert kinds == [("auth/renewaccesstoken", "endpoint"), ("user/syncrequest", "endpoint")]


async def test_failed_logins_lead_to_a_captcha_penalty(env: Env) -> None:
    await _user(env)
    url = "/v1/auth/accesstokenrequest"
    wrong = [(await env.http.post(url, json=login_body("alice", "nope"))).json() for _ in range(2)]
    good_password = (await env.http.post(url, json=login_body("alice", "pw"))).json()

    assert all("errorText" in w for w in wrong)
    assert good_password["p-captcha"] is True
    assert good_password["p-ticket"]
    assert good_password["p-time"] >= 15


async def test_successful_logins_do_not_count(env: Env) -> None:
    await _user(env)
    url = "/v1/auth/accesstokenrequest"
    answers = [(await env.http.post(url, json=login_body("alice", "pw"))).json() for _ in range(5)]

    assert all("accessToken" in a for a in answers)
    assert (await _violations(env))["count"] == 0


async def test_limits_can_be_changed_and_switched_off_at_run_time(env: Env) -> None:
    user = await _user(env)
    changed = await env.http.put("/admin/limits", json={"perMinute": 5})
    assert changed.json()["config"]["perMinute"] == 5
    answers = [await _place(env, user) for _ in range(6)]
    assert ["p-ticket" in a.text for a in answers] == [False] * 5 + [True]

    await env.http.put("/admin/limits", json={"enabled": False})
    env.clock.advance(3600)
    answers = [await _place(env, user) for _ in range(12)]

    assert all("orderId" in a.json() for a in answers)


async def test_limits_off_by_setting() -> None:
    async with (
        running_simulator(SimSettings(sim_rate_limits=False, sim_limit_per_minute=1)) as sim,
        httpx.AsyncClient(base_url=sim.url) as http,
    ):
        sim.create_user("alice", "pw")
        token = (
            await http.post("/v1/auth/accesstokenrequest", json=login_body("alice", "pw"))
        ).json()["accessToken"]
        headers = {"Authorization": f"Bearer {token}"}
        statuses = [(await http.get("/v1/auth/me", headers=headers)).status_code for _ in range(5)]

    assert statuses == [200] * 5


async def test_default_limits_are_the_documented_figures(sim: Simulator) -> None:
    config = sim.venue.limits
    assert (config.per_minute, config.per_hour) == (80, 5000)
    assert (config.renew_per_hour, config.sync_per_hour) == (15, 300)
    assert config.login_failures_per_hour == 5
    assert config.enabled
    assert sim.settings.sim_max_sockets_per_user == 50
    assert sim.settings.sim_max_sessions_per_user == 2
