"""OAuth connect against the simulator (real HTTP, real NATS, shared fake clock).

The person's part (the venue's consent form) is played by httpx here; the headless-browser
test drives the same flow through the account page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import pytest_asyncio

from phalanx_auth.service import AuthService, build_auth
from phalanx_auth.settings import AuthSettings
from phalanx_common.crypto import generate_key
from phalanx_sim import Simulator
from phalanx_testing.clock import FakeClock
from phalanx_tradovate.rest import TradovateRest

ADMIN = {"Authorization": "Bearer test-admin"}


@dataclass
class OAuthHarness:
    service: AuthService
    sim: Simulator
    clock: FakeClock
    http: httpx.AsyncClient

    async def start(self, login_id: str | None = None) -> str:
        resp = await self.http.post(
            "/admin/oauth/start", json={"login_id": login_id}, headers=ADMIN
        )
        assert resp.status_code == 200, resp.text
        url: str = resp.json()["authorize_url"]
        return url

    async def consent(self, authorize_url: str, username: str, password: str) -> str:
        """Play the person at the venue: open the consent page, sign in; returns the redirect."""
        async with httpx.AsyncClient(timeout=10) as browser:
            page = await browser.get(authorize_url)
            assert page.status_code == 200, page.text
            assert 'id="authorize"' in page.text
            fields = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
            fields.update(username=username, password=password)
            resp = await browser.post(f"{self.sim.url}/oauth", data=fields)
        assert resp.status_code == 302, resp.text
        return resp.headers["location"]

    async def callback(self, location: str) -> httpx.Response:
        parts = urlsplit(location)
        return await self.http.get(f"{parts.path}?{parts.query}")


@pytest_asyncio.fixture
async def o(
    nats_url: str, fake_sim: Simulator, fake_clock: FakeClock
) -> AsyncIterator[OAuthHarness]:
    settings = AuthSettings(
        nats_url=nats_url,
        auth_port=0,
        admin_token="test-admin",
        token_keys=f"k1:{generate_key()}",
        tradovate_rest_url=fake_sim.rest_url,
        tradovate_oauth_url=f"{fake_sim.url}/oauth",
        oauth_client_id="phalanx-test",
        oauth_client_secret="client-secret-xyz",
    )
    service = await build_auth(settings, fake_clock)
    await service.start()
    fake_sim.register_oauth_client(
        "phalanx-test", "client-secret-xyz", [f"{service.url}/oauth/callback"]
    )
    async with httpx.AsyncClient(base_url=service.url, timeout=10) as http:
        yield OAuthHarness(service, fake_sim, fake_clock, http)
    await service.stop()


@pytest.mark.integration
async def test_oauth_links_every_account(o: OAuthHarness) -> None:
    user = o.sim.create_user("APEX_4242", "venue-pw", accounts=3)
    url = await o.start()
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["state"][0]) >= 43
    location = await o.consent(url, "APEX_4242", "venue-pw")
    resp = await o.callback(location)
    assert resp.status_code == 303, resp.text
    assert resp.headers["location"] == "/ui?connected=apex_4242"
    login = (await o.http.get("/admin/logins/apex_4242", headers=ADMIN)).json()
    assert login["method"] == "oauth"
    assert login["status"] == "active"
    assert login["user_id"] == user.userId
    assert sorted(a["account_id"] for a in login["accounts"]) == sorted(
        int(a["id"]) for a in user.accounts
    )
    assert 0 < login["token_expires_in_s"] <= 80 * 60
    # the stored token works at the venue, and renews like any other
    stored = await o.service.manager.store.get_stored_token("apex_4242")
    assert stored is not None
    assert stored.source == "oauth"
    rest = TradovateRest(o.sim.rest_url)
    try:
        assert (await rest.me(stored.record.access_token)).name == "APEX_4242"
    finally:
        await rest.aclose()
    await o.service.manager.stop()
    await o.clock.advance(55 * 60)
    assert await o.service.manager.renew_due() == ["apex_4242"]


@pytest.mark.integration
async def test_replayed_and_forged_states_are_refused(o: OAuthHarness) -> None:
    o.sim.create_user("replay", "pw", accounts=1)
    location = await o.consent(await o.start(), "replay", "pw")
    assert (await o.callback(location)).status_code == 303
    replay = await o.callback(location)
    assert replay.status_code == 400
    assert "already used" in replay.text
    code = parse_qs(urlsplit(location).query)["code"][0]
    forged = await o.http.get("/oauth/callback", params={"code": code, "state": "x" * 43})
    assert forged.status_code == 400
    assert "unknown or already used" in forged.text
    missing = await o.http.get("/oauth/callback", params={"code": code})
    assert missing.status_code == 400
    assert o.service.manager.metrics.oauth_failures == 3


@pytest.mark.integration
async def test_expired_code_is_a_clear_error(o: OAuthHarness) -> None:
    o.sim.create_user("slow", "pw", accounts=1)
    location = await o.consent(await o.start(), "slow", "pw")
    await o.clock.advance(120)  # the simulator's codes live 60 s; our state lives 600 s
    resp = await o.callback(location)
    assert resp.status_code == 400
    assert "invalid_grant" in resp.text
    assert await o.service.manager.store.get_login("slow") is None


@pytest.mark.integration
async def test_denied_consent_and_wrong_login_hint(o: OAuthHarness) -> None:
    o.sim.create_user("alice", "pw", accounts=1)
    url = await o.start()
    state = parse_qs(urlsplit(url).query)["state"][0]
    denied = await o.http.get("/oauth/callback", params={"error": "access_denied", "state": state})
    assert denied.status_code == 400
    assert "did not grant access" in denied.text
    # consent given as alice while the operator meant to reconnect bob: nothing is linked
    location = await o.consent(await o.start(login_id="bob"), "alice", "pw")
    resp = await o.callback(location)
    assert resp.status_code == 400
    assert "not for login" in resp.text
    assert await o.service.manager.store.list_logins() == []


@pytest.mark.integration
async def test_browser_bound_state_needs_its_cookie(o: OAuthHarness) -> None:
    o.sim.create_user("carol", "pw", accounts=1)
    started = await o.service.flow.start(browser=True)
    location = await o.consent(started.authorize_url, "carol", "pw")
    resp = await o.callback(location)  # no cookie: another browser
    assert resp.status_code == 400
    assert "browser that started it" in resp.text


@pytest.mark.integration
async def test_oauth_not_configured_is_409(nats_url: str, fake_clock: FakeClock) -> None:
    settings = AuthSettings(nats_url=nats_url, auth_port=0, admin_token="test-admin")
    service = await build_auth(settings, fake_clock)
    await service.start()
    try:
        async with httpx.AsyncClient(base_url=service.url, timeout=10) as http:
            resp = await http.post("/admin/oauth/start", json={}, headers=ADMIN)
        assert resp.status_code == 409
        assert "PHALANX_OAUTH_CLIENT_ID" in resp.json()["detail"]
    finally:
        await service.stop()
