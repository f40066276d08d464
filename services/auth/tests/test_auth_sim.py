"""The auth service against the Tradovate simulator (real HTTP, real NATS)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from phalanx_auth.service import AuthService, build_auth
from phalanx_auth.settings import AuthSettings
from phalanx_auth.tokens import expiry_ns
from phalanx_sim import Simulator
from phalanx_testing.clock import FakeClock
from phalanx_testing.waiting import eventually
from phalanx_tradovate.rest import TradovateRest

ADMIN = {"Authorization": "Bearer test-admin"}


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(host="127.0.0.1", port=0) as running:
        yield running


@pytest_asyncio.fixture
async def clock() -> FakeClock:
    # aligned with the real clock, which the simulator uses to stamp expirationTime
    return FakeClock(start_ns=time.time_ns())


@pytest_asyncio.fixture
async def service(nats_url: str, sim: Simulator, clock: FakeClock) -> AsyncIterator[AuthService]:
    settings = AuthSettings(
        nats_url=nats_url,
        auth_port=0,
        admin_token="test-admin",
        tradovate_rest_url=sim.rest_url,
    )
    svc = await build_auth(settings, clock)
    await svc.start()
    yield svc
    await svc.stop()


@pytest.mark.integration
async def test_register_a_simulator_login(service: AuthService, sim: Simulator) -> None:
    user = sim.create_user("APEX_777", "sim-pw", accounts=3)
    async with httpx.AsyncClient(base_url=service.url, timeout=10) as http:
        resp = await http.post(
            "/admin/logins", json={"username": "APEX_777", "password": "sim-pw"}, headers=ADMIN
        )
        assert resp.status_code == 201, resp.text
        body = resp.json()
        assert body["login_id"] == "apex_777"
        assert body["user_id"] == user.userId
        assert sorted((a["account_id"], a["account_spec"]) for a in body["accounts"]) == sorted(
            (int(a["id"]), a["name"]) for a in user.accounts
        )
        wrong = await http.post(
            "/admin/logins", json={"username": "APEX_777", "password": "nope"}, headers=ADMIN
        )
        assert wrong.status_code == 400
    found = await service.manager.store.get_token("apex_777")
    assert found is not None
    # the stored token works at the venue
    rest = TradovateRest(sim.rest_url)
    try:
        accounts = await rest.account_list(found[0].access_token)
    finally:
        await rest.aclose()
    assert sorted(a.id for a in accounts) == sorted(int(a["id"]) for a in user.accounts)


@pytest.mark.integration
async def test_renewal_against_the_simulator(
    service: AuthService, sim: Simulator, clock: FakeClock
) -> None:
    sim.create_user("renewer", "pw", accounts=1)
    async with httpx.AsyncClient(base_url=service.url, timeout=10) as http:
        resp = await http.post(
            "/admin/logins", json={"username": "renewer", "password": "pw"}, headers=ADMIN
        )
    assert resp.status_code == 201, resp.text
    before = await service.manager.store.get_token("renewer")
    assert before is not None
    await clock.advance(55 * 60)  # the simulator's tokens live 80 min: 25 min left

    async def renewed() -> bool:
        found = await service.manager.store.get_token("renewer")
        if found is not None and found[0].access_token != before[0].access_token:
            return True
        await clock.advance(30)
        return False

    done: bool = await eventually(renewed, what="token renewed at the simulator")
    assert done
    after = await service.manager.store.get_token("renewer")
    assert after is not None
    assert after[1] > before[1]
    rest = TradovateRest(sim.rest_url)
    try:
        me = await rest.me(after[0].access_token)
    finally:
        await rest.aclose()
    assert me.name == "renewer"
    old, new = expiry_ns(before[0].expiration_time), expiry_ns(after[0].expiration_time)
    assert old is not None
    assert new is not None
    assert new >= old
