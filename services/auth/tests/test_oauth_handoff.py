"""A consent started for another service's browser (the console, ADR-0135), over the simulator.

``POST /admin/oauth/start`` with ``browser: true`` gives a single-use ``/oauth/begin`` link:
the browser that opens it gets the binding cookie and goes to the venue; the callback then
sends that browser back to ``return_to``. Another browser, a second use of the link, or an
old link gets nothing. Real HTTP and NATS, the shared fake clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import pytest_asyncio

from phalanx_auth.page import BINDING_COOKIE
from phalanx_auth.service import AuthService, build_auth
from phalanx_auth.settings import AuthSettings
from phalanx_common.crypto import generate_key
from phalanx_sim import Simulator
from phalanx_testing.clock import FakeClock

ADMIN = {"Authorization": "Bearer handoff-admin"}
CONSOLE = "https://console.example/logins"


@pytest_asyncio.fixture
async def auth(
    nats_url: str, fake_sim: Simulator, fake_clock: FakeClock
) -> AsyncIterator[AuthService]:
    settings = AuthSettings(
        nats_url=nats_url,
        auth_port=0,
        admin_token="handoff-admin",
        token_keys=f"k1:{generate_key()}",
        tradovate_rest_url=fake_sim.rest_url,
        tradovate_oauth_url=f"{fake_sim.url}/oauth",
        oauth_client_id="phalanx-handoff",
        oauth_client_secret="handoff-secret",
        oauth_state_ttl_s=300,
    )
    service = await build_auth(settings, fake_clock)
    await service.start()
    fake_sim.register_oauth_client(
        "phalanx-handoff", "handoff-secret", [f"{service.url}/oauth/callback"]
    )
    yield service
    await service.stop()


async def _hand_off(auth: AuthService, login_id: str | None = None) -> str:
    async with httpx.AsyncClient(base_url=auth.url, timeout=10) as admin:
        resp = await admin.post(
            "/admin/oauth/start",
            json={"login_id": login_id, "browser": True, "return_to": CONSOLE},
            headers=ADMIN,
        )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["authorize_url"] == ""  # only the browser that opens the link learns it
    url: str = body["browser_url"]
    assert url.startswith(f"{auth.url}/oauth/begin?ticket=")
    return url


async def _consent(sim: Simulator, authorize_url: str, username: str, password: str) -> str:
    """The person at the venue's consent page; returns where the venue sends the browser."""
    fields = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
    fields.update(username=username, password=password)
    async with httpx.AsyncClient(timeout=10) as person:
        resp = await person.post(f"{sim.url}/oauth", data=fields)
    assert resp.status_code == 302, resp.text
    return resp.headers["location"]


@pytest.mark.integration
async def test_the_browser_that_opens_the_link_connects_and_returns(
    auth: AuthService, fake_sim: Simulator
) -> None:
    fake_sim.create_user("dora", "pw", accounts=2)
    link = await _hand_off(auth)
    async with httpx.AsyncClient(timeout=10) as browser:
        begun = await browser.get(link)
        assert begun.status_code == 303, begun.text
        authorize_url = begun.headers["location"]
        assert authorize_url.startswith(f"{fake_sim.url}/oauth?")
        assert browser.cookies.get(BINDING_COOKIE)
        location = await _consent(fake_sim, authorize_url, "dora", "pw")
        back = await browser.get(location)
        assert back.status_code == 303, back.text
        assert back.headers["location"] == f"{CONSOLE}?connected=dora"
        # the link worked once
        again = await browser.get(link)
        assert again.status_code == 400
        assert "already used" in again.text
    login = await auth.manager.store.get_login("dora")
    assert login is not None
    assert login.status == "active"


@pytest.mark.integration
async def test_another_browser_cannot_finish_and_is_sent_back(
    auth: AuthService, fake_sim: Simulator
) -> None:
    fake_sim.create_user("erin", "pw", accounts=1)
    link = await _hand_off(auth, login_id="erin")
    async with httpx.AsyncClient(timeout=10) as operator:
        authorize_url = (await operator.get(link)).headers["location"]
    location = await _consent(fake_sim, authorize_url, "erin", "pw")
    async with httpx.AsyncClient(timeout=10) as stranger:  # without the binding cookie
        refused = await stranger.get(location)
    assert refused.status_code == 400
    assert "browser that started it" in refused.text
    assert f'href="{CONSOLE}"' in refused.text  # back to the console, not to auth's page
    assert await auth.manager.store.get_login("erin") is None


@pytest.mark.integration
async def test_an_old_or_forged_link_is_refused(auth: AuthService, fake_clock: FakeClock) -> None:
    link = await _hand_off(auth)
    await fake_clock.advance(301)
    async with httpx.AsyncClient(timeout=10) as browser:
        old = await browser.get(link)
        assert old.status_code == 400
        assert "expired" in old.text
        forged = await browser.get(f"{auth.url}/oauth/begin", params={"ticket": "x" * 43})
        assert forged.status_code == 400
        assert not browser.cookies.get(BINDING_COOKIE)


@pytest.mark.integration
async def test_return_to_must_be_a_web_address(auth: AuthService) -> None:
    async with httpx.AsyncClient(base_url=auth.url, timeout=10) as admin:
        for bad in ("javascript:alert(1)", "//evil.example/x", "ftp://x/y"):
            resp = await admin.post(
                "/admin/oauth/start", json={"browser": True, "return_to": bad}, headers=ADMIN
            )
            assert resp.status_code == 422, bad
        anonymous = await admin.post("/admin/oauth/start", json={"browser": True})
        assert anonymous.status_code == 401
