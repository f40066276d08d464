"""The account page in a real headless browser (Debian's chromium driven by Playwright).

One operator session: the page behind the admin credential, **Connect a Tradovate login** →
the simulator's consent page → back with every account linked; a login whose renewal fails
shows "needs re-authorization" and comes back with **Connect Tradovate**; **Disconnect** unlinks.
Real NATS, the in-process simulator, the fake clock for time.

Chromium is Debian's (``/usr/bin/chromium``, installed by ``.ci/install-browser.sh``); the test
tries that script itself and skips, saying why, only if chromium is still missing afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page

from phalanx_auth.connect import LoginRequest
from phalanx_auth.service import AuthService, build_auth
from phalanx_auth.settings import AuthSettings
from phalanx_common.crypto import generate_key
from phalanx_sim import Simulator
from phalanx_testing.browser import browser as browser
from phalanx_testing.clock import FakeClock
from phalanx_testing.waiting import eventually


@pytest_asyncio.fixture
async def service(
    nats_url: str, fake_sim: Simulator, fake_clock: FakeClock
) -> AsyncIterator[AuthService]:
    settings = AuthSettings(
        nats_url=nats_url,
        auth_port=0,
        admin_token="page-admin-token",
        token_keys=f"k1:{generate_key()}",
        tradovate_rest_url=fake_sim.rest_url,
        tradovate_oauth_url=f"{fake_sim.url}/oauth",
        oauth_client_id="phalanx-page",
        oauth_client_secret="page-client-secret",
        discover_every_s=0,
    )
    svc = await build_auth(settings, fake_clock)
    await svc.start()
    fake_sim.register_oauth_client(
        "phalanx-page", "page-client-secret", [f"{svc.url}/oauth/callback"]
    )
    yield svc
    await svc.stop()


async def _consent(page: Page, username: str, password: str) -> None:
    """The person at the venue's consent page."""
    await page.wait_for_selector("#authorize")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", password)
    await page.click("#authorize")
    await page.wait_for_url("**/ui?connected=*")


async def _status(page: Page, login_id: str) -> str:
    return await page.get_attribute(f"#login-{login_id}", "data-status") or ""


@pytest.mark.integration
@pytest.mark.timeout(120)
async def test_account_page_in_a_headless_browser(
    browser: Browser, service: AuthService, fake_sim: Simulator, fake_clock: FakeClock
) -> None:
    apex = fake_sim.create_user("APEX_9001", "venue-pw", accounts=3)
    fake_sim.create_user("fragile", "fragile-pw", accounts=1)
    manager = service.manager
    await manager.register(LoginRequest(username="fragile", password="fragile-pw"))

    # without the admin credential the page is refused with a Basic challenge (a headless
    # browser turns that into a navigation error, so plain HTTP checks it)
    async with httpx.AsyncClient(timeout=10) as anonymous:
        denied = await anonymous.get(f"{service.url}/ui")
        assert denied.status_code == 401
        assert denied.headers["www-authenticate"].startswith("Basic")
        wrong = await anonymous.get(f"{service.url}/ui", auth=("admin", "wrong"))
        assert wrong.status_code == 401

    context = await browser.new_context(
        http_credentials={"username": "admin", "password": "page-admin-token"}
    )
    page = await context.new_page()
    await page.goto(f"{service.url}/ui")
    assert await _status(page, "fragile") == "active"

    # connect a new login by OAuth: every account of it is linked
    await page.click("#connect-new")
    await _consent(page, "APEX_9001", "venue-pw")
    assert "Connected login apex_9001" in await page.inner_text("#notice")
    assert await _status(page, "apex_9001") == "active"
    assert "oauth" in await page.inner_text("#login-apex_9001")
    for account in apex.accounts:
        row = await page.inner_text(f"#account-{account['id']}")
        assert account["name"] in row
        assert "apex_9001" in row
    stored = await manager.store.get_stored_token("apex_9001")
    assert stored is not None
    assert stored.source == "oauth"

    # "fragile" logs in elsewhere twice: the venue closes our session (2-session rule), so its
    # renewal is refused; with no stored credentials it ends in ReauthRequired
    async with httpx.AsyncClient(base_url=fake_sim.rest_url, timeout=10) as venue:
        for _ in range(2):
            resp = await venue.post(
                "/auth/accesstokenrequest", json={"name": "fragile", "password": "fragile-pw"}
            )
            assert resp.json().get("accessToken")
    await fake_clock.advance(55 * 60)

    async def marked() -> bool:
        login = await manager.store.get_login("fragile")
        if login is not None and login.status == "reauth_required":
            return True
        await fake_clock.advance(10)
        return False

    assert await eventually(marked, what="fragile marked reauth_required")
    await page.goto(f"{service.url}/ui")
    assert await _status(page, "fragile") == "reauth_required"
    assert "needs re-authorization" in await page.inner_text("#login-fragile")
    # apex_9001 was renewed meanwhile and stays active
    assert await _status(page, "apex_9001") == "active"

    # re-authorize "fragile" with its own Connect Tradovate button
    await page.click("#connect-fragile")
    await _consent(page, "fragile", "fragile-pw")
    assert await _status(page, "fragile") == "active"
    assert "oauth" in await page.inner_text("#login-fragile")

    # disconnect apex_9001: its accounts leave the page and the store
    await page.click("#disconnect-apex_9001")
    await page.wait_for_url("**/ui?disconnected=apex_9001")
    assert await _status(page, "apex_9001") == "disconnected"
    for account in apex.accounts:
        assert await page.query_selector(f"#account-{account['id']}") is None
    assert await manager.store.get_token("apex_9001") is None
    await context.close()
