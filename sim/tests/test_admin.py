"""Admin API: users, request log, stats, reset and the seed file; settings from the environment."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from phalanx_sim import SimSettings, load_sim_settings, running_simulator
from phalanx_sim.testing import SimSocket, login_body, oso_body

MakeUser = Callable[..., Awaitable[dict[str, Any]]]


async def test_create_user_with_named_accounts_and_duplicates(http: httpx.AsyncClient) -> None:
    created = await http.post(
        "/admin/users", json={"name": "apex", "password": "pw", "accounts": ["APEX1", "APEX2"]}
    )
    duplicate = await http.post("/admin/users", json={"name": "apex", "password": "x"})
    listed = await http.get("/admin/users")

    assert created.status_code == 200
    body = created.json()
    assert [a["name"] for a in body["accounts"]] == ["APEX1", "APEX2"]
    assert duplicate.status_code == 409
    assert listed.json() == [body]


async def test_requests_and_stats_count_rest_and_websocket(
    http: httpx.AsyncClient, make_user: MakeUser, sim: Any
) -> None:
    alice = await make_user("alice")
    bob = await make_user("bob")
    await http.post(
        "/v1/order/placeoso", json=oso_body(alice["accounts"][0]), headers=alice["headers"]
    )
    sock = await SimSocket.connect(sim.ws_url)
    try:
        await sock.authorize(alice["token"])
        await sock.request("order/placeoso", oso_body(alice["accounts"][0]))
    finally:
        await sock.close()
    await http.get("/v1/account/list", headers=bob["headers"])

    requests = (await http.get("/admin/requests", params={"userId": alice["userId"]})).json()
    stats = (await http.get("/admin/stats")).json()

    assert [(r["endpoint"], r["transport"]) for r in requests] == [
        ("auth/accesstokenrequest", "rest"),
        ("order/placeoso", "rest"),
        ("authorize", "ws"),
        ("order/placeoso", "ws"),
    ]
    assert all(r["userId"] == alice["userId"] and r["time"].endswith("Z") for r in requests)
    assert stats["placeOso"] == 2
    assert stats["byEndpoint"]["order/placeoso"] == 2
    assert stats["byUser"][str(alice["userId"])] == 4
    assert stats["byUser"][str(bob["userId"])] == 2
    assert stats["violations"] == []
    assert stats["fills"] == 2


async def test_reset_forgets_everything(http: httpx.AsyncClient, make_user: MakeUser) -> None:
    alice = await make_user("alice")

    reset = await http.post("/admin/reset")
    after = await http.get("/v1/account/list", headers=alice["headers"])
    users = await http.get("/admin/users")

    assert reset.json() == {"ok": True}
    assert after.status_code == 401
    assert users.json() == []


async def test_seed_file_creates_users_and_prices(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(
        json.dumps(
            {
                "users": [{"name": "demo", "password": "pw", "accounts": 2}],
                "prices": {"MNQZ6": 21100.5},
            }
        )
    )
    settings = load_sim_settings({"PHALANX_SIM_SEED": str(seed)})

    async with running_simulator(settings) as sim, httpx.AsyncClient(base_url=sim.url) as http:
        token = await http.post("/v1/auth/accesstokenrequest", json=login_body("demo", "pw"))
        prices = (await http.get("/admin/prices")).json()
        await http.post("/admin/reset")
        users_after_reset = (await http.get("/admin/users")).json()

    assert "accessToken" in token.json()
    assert prices == {"MNQZ6": 21100.5}
    assert [u["name"] for u in users_after_reset] == ["demo"]


async def test_admin_price_must_be_on_tick_and_known(http: httpx.AsyncClient) -> None:
    off_tick = await http.post("/admin/prices", json={"symbol": "MNQZ6", "price": 21000.1})
    unknown = await http.post("/admin/prices", json={"symbol": "NOPEZ6", "price": 1.0})
    assert off_tick.status_code == 400
    assert unknown.status_code == 404


def test_settings_from_environment() -> None:
    settings = load_sim_settings(
        {
            "PHALANX_SIM_HOST": "0.0.0.0",
            "PHALANX_SIM_PORT": "9000",
            "PHALANX_SIM_TOKEN_LIFETIME_S": "60",
            "PHALANX_SIM_PRICE_WALK": "true",
        }
    )
    assert settings == SimSettings(
        sim_host="0.0.0.0", sim_port=9000, sim_token_lifetime_s=60.0, sim_price_walk=True
    )
    assert SimSettings().sim_port == 8900
    assert SimSettings().sim_token_lifetime_s == 80 * 60
