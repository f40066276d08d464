"""Login, bearer auth and account listing through the REST interface."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any, cast

import httpx

from phalanx_sim import SimSettings, running_simulator
from phalanx_sim.testing import SimSocket, login_body
from phalanx_testing.waiting import eventually

MakeUser = Callable[..., Awaitable[dict[str, Any]]]
Login = Callable[[str, str], Awaitable[dict[str, Any]]]


async def test_login_returns_access_token_response(make_user: MakeUser, login: Login) -> None:
    user = await make_user("alice", accounts=2)
    before = dt.datetime.now(dt.UTC)
    token = await login("alice", "pw")

    assert token["userId"] == user["userId"]
    assert token["name"] == "alice"
    assert token["userStatus"] == "Active"
    assert token["hasLive"] is False
    assert token["accessToken"]
    assert token["mdAccessToken"]
    assert token["accessToken"] != user["token"]  # every login is a new session
    assert token["expirationTime"].endswith("Z")
    expires = dt.datetime.fromisoformat(token["expirationTime"].replace("Z", "+00:00"))
    lifetime = (expires - before).total_seconds()
    assert 79 * 60 < lifetime <= 81 * 60
    assert "passwordExpirationTime" in token
    assert "errorText" not in token


async def test_wrong_password_is_http_200_with_error_text(
    make_user: MakeUser, login: Login
) -> None:
    await make_user("alice")
    wrong = await login("alice", "nope")
    unknown = await login("nobody", "pw")

    assert set(wrong) == {"errorText"}
    assert wrong["errorText"]
    assert set(unknown) == {"errorText"}


async def test_endpoints_need_a_valid_bearer_token(
    http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user("alice")

    missing = await http.get("/v1/account/list")
    wrong = await http.get("/v1/account/list", headers={"Authorization": "Bearer forged"})
    good = await http.get("/v1/account/list", headers=user["headers"])

    assert missing.status_code == 401
    assert wrong.status_code == 401
    assert wrong.json() == "Access is denied"
    assert good.status_code == 200


async def test_account_list_shows_only_the_users_accounts(
    http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    alice = await make_user("alice", accounts=3)
    bob = await make_user("bob", accounts=["APEX1234501", "PAAPEX1234501"])

    alice_accounts = (await http.get("/v1/account/list", headers=alice["headers"])).json()
    bob_accounts = (await http.get("/v1/account/list", headers=bob["headers"])).json()

    assert [a["id"] for a in alice_accounts] == [a["id"] for a in alice["accounts"]]
    assert [a["name"] for a in bob_accounts] == ["APEX1234501", "PAAPEX1234501"]
    for account in alice_accounts:
        assert account["userId"] == alice["userId"]
        assert account["accountType"] == "Customer"
        assert account["active"] is True
        assert account["name"].startswith("DEMO")
        assert len(account["name"]) == 11


async def test_renew_access_token_gives_a_new_token(
    http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user("alice")
    renewed = (await http.get("/v1/auth/renewaccesstoken", headers=user["headers"])).json()

    assert renewed["accessToken"] != user["token"]
    headers = {"Authorization": f"Bearer {renewed['accessToken']}"}
    assert (await http.get("/v1/account/list", headers=headers)).status_code == 200


async def test_expired_token_is_refused() -> None:
    settings = SimSettings(sim_token_lifetime_s=0.2)
    async with running_simulator(settings) as sim, httpx.AsyncClient(base_url=sim.url) as http:
        await http.post("/admin/users", json={"name": "alice", "password": "pw"})
        token = (
            await http.post("/v1/auth/accesstokenrequest", json=login_body("alice", "pw"))
        ).json()["accessToken"]
        headers = {"Authorization": f"Bearer {token}"}

        async def refused() -> bool:
            return (await http.get("/v1/account/list", headers=headers)).status_code == 401

        probe = cast("Callable[[], bool | Awaitable[bool]]", refused)
        await eventually(probe, what="token expired")
        sock = await SimSocket.connect(sim.ws_url)
        try:
            assert (await sock.authorize(token))["s"] == 401
        finally:
            await sock.close()
