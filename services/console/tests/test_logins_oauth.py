"""Connect and reconnect a Tradovate login by OAuth from the console (ADR-0135).

A real auth service over nats-server, the simulator as the venue (its consent page played by
httpx), the console over auth's admin API. The console's button gives the browser a
single-use link to auth; the browser that opens it goes through the venue's consent and comes
back to the console's logins page with the login connected and its accounts linked. Another
browser cannot finish that consent; the viewer and a forged form never start one.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html import unescape
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import pytest_asyncio

from phalanx_auth.service import AuthService, build_auth
from phalanx_auth.settings import AuthSettings
from phalanx_common.crypto import generate_key
from phalanx_console.passwords import hash_password
from phalanx_console.service import ConsoleService, build_console
from phalanx_console.settings import ConsoleSettings
from phalanx_sim.runner import Simulator
from phalanx_sim.testing import simulator as simulator
from phalanx_testing.servers import free_port

pytestmark = pytest.mark.integration

TOKEN = "console-oauth-test-admin-token-77c1"
ADMIN_PW = "admin-pw-for-oauth"
VIEWER_PW = "viewer-pw-for-oauth"


@pytest_asyncio.fixture
async def auth(nats_url: str, simulator: Simulator) -> AsyncIterator[AuthService]:
    settings = AuthSettings(
        nats_url=nats_url,
        auth_port=0,
        admin_token=TOKEN,
        token_keys=f"k1:{generate_key()}",
        tradovate_rest_url=simulator.rest_url,
        tradovate_oauth_url=f"{simulator.url}/oauth",
        oauth_client_id="phalanx-console-test",
        oauth_client_secret="console-test-secret",
        discover_every_s=0,
    )
    service = await build_auth(settings)
    await service.start()
    simulator.register_oauth_client(
        "phalanx-console-test", "console-test-secret", [f"{service.url}/oauth/callback"]
    )
    try:
        yield service
    finally:
        await service.stop()


@pytest_asyncio.fixture
async def console(auth: AuthService) -> AsyncIterator[ConsoleService]:
    nowhere = f"http://127.0.0.1:{free_port()}"
    settings = ConsoleSettings(
        console_port=0,
        console_users=(
            f"alice:admin:{hash_password(ADMIN_PW)},victor:viewer:{hash_password(VIEWER_PW)}"
        ),
        admin_token=TOKEN,
        ingest_url=nowhere,
        auth_url=auth.url,
        executor_url=nowhere,  # no budgets: the logins page shows none
        ledger_url=nowhere,
    )
    service = await build_console(settings)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


class Operator:
    """A signed-in console user; its cookies (the Secure console session sent by hand)."""

    def __init__(self, console: ConsoleService, session_id: str) -> None:
        self.console = console
        self.session_id = session_id
        session = console.sessions.get(session_id)
        assert session is not None
        self.csrf = session.csrf
        self.headers = {"Cookie": f"phalanx_console={session_id}", "Origin": console.url}

    @classmethod
    async def sign_in(
        cls, http: httpx.AsyncClient, console: ConsoleService, user: str, pw: str
    ) -> Operator:
        resp = await http.post(
            "/login", data={"user": user, "password": pw}, headers={"Origin": console.url}
        )
        assert resp.status_code == 303, resp.text
        return cls(console, resp.headers["set-cookie"].split(";")[0].split("=", 1)[1])

    async def connect(self, http: httpx.AsyncClient, **fields: str) -> httpx.Response:
        return await http.post(
            f"{self.console.url}/logins/connect",
            data={"csrf": self.csrf, **fields},
            headers=self.headers,
        )

    async def page(self, http: httpx.AsyncClient, url: str) -> str:
        resp = await http.get(url, headers={"Cookie": f"phalanx_console={self.session_id}"})
        assert resp.status_code == 200, resp.text
        return resp.text


def _continue_link(html: str) -> str:
    match = re.search(r'href="([^"]+)" id="continue-oauth"', html)
    assert match is not None, "no continue link on the page"
    return unescape(match.group(1))


async def _consent(sim: Simulator, authorize_url: str, username: str, password: str) -> str:
    fields = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
    fields.update(username=username, password=password)
    async with httpx.AsyncClient(timeout=10) as person:
        resp = await person.post(f"{sim.url}/oauth", data=fields)
    assert resp.status_code == 302, resp.text
    return resp.headers["location"]


async def test_connect_tradovate_from_the_console(
    console: ConsoleService, auth: AuthService, simulator: Simulator
) -> None:
    user = simulator.create_user("OAUTH_7", "venue-pw", accounts=3)
    # one client plays the operator's browser: it keeps auth's binding cookie
    async with httpx.AsyncClient(base_url=console.url, timeout=20) as browser:
        admin = await Operator.sign_in(browser, console, "alice", ADMIN_PW)
        started = await admin.connect(browser)
        assert started.status_code == 200, started.text
        link = _continue_link(started.text)
        assert link.startswith(f"{auth.url}/oauth/begin?ticket=")
        assert f'content="0; url={link}"' in unescape(started.text)  # goes on by itself
        assert started.headers["cache-control"] == "no-store"
        to_venue = await browser.get(link)
        assert to_venue.status_code == 303
        location = await _consent(simulator, to_venue.headers["location"], "OAUTH_7", "venue-pw")
        back = await browser.get(location)
        assert back.status_code == 303, back.text
        assert back.headers["location"] == f"{console.url}/logins/connected?connected=oauth_7"
        # the landing needs no session (the venue's redirect chain is cross-site: a browser
        # withholds the SameSite=Strict cookie) and only goes on to the logins page
        landing = await browser.get(back.headers["location"])
        assert landing.status_code == 200
        assert 'content="0; url=/logins?connected=oauth_7"' in landing.text
        assert "OAUTH_7" not in landing.text
        html = await admin.page(browser, f"{console.url}/logins?connected=oauth_7")
    assert "Connected login oauth_7" in html
    row = html.split('id="login-oauth_7"')[1].split("</tr>")[0]
    assert 'data-status="active"' in row
    assert "oauth" in row
    for account in user.accounts:
        assert f"{account['id']} {account['name']}" in row
    expires = re.search(r'id="expires-oauth_7" data-expires-in="(\d+)"', html)
    assert expires is not None
    assert 0 < int(expires.group(1)) <= 80 * 60


async def test_reconnect_is_for_the_login_it_names(
    console: ConsoleService, auth: AuthService, simulator: Simulator
) -> None:
    simulator.create_user("alice_v", "pw", accounts=1)
    async with httpx.AsyncClient(base_url=console.url, timeout=20) as browser:
        admin = await Operator.sign_in(browser, console, "alice", ADMIN_PW)
        started = await admin.connect(browser, login_id="bob_v")
        link = _continue_link(started.text)
        to_venue = await browser.get(link)
        location = await _consent(simulator, to_venue.headers["location"], "alice_v", "pw")
        refused = await browser.get(location)
    assert refused.status_code == 400
    assert "not for login 'bob_v'" in unescape(refused.text)
    assert f'href="{console.url}/logins/connected"' in refused.text
    assert await auth.manager.store.list_logins() == []


async def test_a_link_opened_elsewhere_or_twice_connects_nothing(
    console: ConsoleService, auth: AuthService, simulator: Simulator
) -> None:
    simulator.create_user("mallory_v", "pw", accounts=1)
    async with httpx.AsyncClient(base_url=console.url, timeout=20) as browser:
        admin = await Operator.sign_in(browser, console, "alice", ADMIN_PW)
        link = _continue_link((await admin.connect(browser)).text)
        to_venue = await browser.get(link)
        assert (await browser.get(link)).status_code == 400  # the link works once
    location = await _consent(simulator, to_venue.headers["location"], "mallory_v", "pw")
    async with httpx.AsyncClient(timeout=20) as other_browser:  # without auth's cookie
        refused = await other_browser.get(location)
    assert refused.status_code == 400
    assert "browser that started it" in refused.text
    assert await auth.manager.store.list_logins() == []


async def test_viewers_and_forged_forms_start_no_consent(
    console: ConsoleService, auth: AuthService
) -> None:
    async with httpx.AsyncClient(base_url=console.url, timeout=20) as http:
        viewer = await Operator.sign_in(http, console, "victor", VIEWER_PW)
        refused = await viewer.connect(http)
        assert refused.status_code == 403
        assert "continue-oauth" not in refused.text
        admin = await Operator.sign_in(http, console, "alice", ADMIN_PW)
        forged = await http.post("/logins/connect", data={"csrf": "forged"}, headers=admin.headers)
        assert forged.status_code == 403
        foreign = await http.post(
            "/logins/connect",
            data={"csrf": admin.csrf},
            headers={**admin.headers, "Origin": "https://evil.example"},
        )
        assert foreign.status_code == 403
        page = await admin.page(http, f"{console.url}/logins")
        assert 'id="connect-new"' in page
        seen = await viewer.page(http, f"{console.url}/logins?connected=%3Cb%3Efake")
        assert 'id="connect-new"' not in seen
        assert "Connected login" not in seen  # only a login auth lists is named


async def test_reconnect_brings_a_disconnected_login_back_with_its_accounts(
    console: ConsoleService, auth: AuthService, simulator: Simulator
) -> None:
    user = simulator.create_user("BACK_9", "pw", accounts=2)
    async with httpx.AsyncClient(base_url=console.url, timeout=20) as browser:
        admin = await Operator.sign_in(browser, console, "alice", ADMIN_PW)

        async def consent_through_console(**fields: str) -> str:
            link = _continue_link((await admin.connect(browser, **fields)).text)
            to_venue = await browser.get(link)
            location = await _consent(simulator, to_venue.headers["location"], "BACK_9", "pw")
            back = await browser.get(location)
            assert back.status_code == 303, back.text
            return await admin.page(browser, f"{console.url}/logins?connected=back_9")

        await consent_through_console()
        gone = await browser.post(
            "/logins/back_9/disconnect",
            data={"csrf": admin.csrf, "confirm": "on"},
            headers=admin.headers,
        )
        assert gone.status_code == 303
        html = await admin.page(browser, f"{console.url}/logins")
        row = html.split('id="login-back_9"')[1].split("</tr>")[0]
        assert 'data-status="disconnected"' in row
        assert 'id="reconnect-back_9"' in row
        html = await consent_through_console(login_id="back_9")
    row = html.split('id="login-back_9"')[1].split("</tr>")[0]
    assert 'data-status="active"' in row
    assert 'id="reconnect-back_9"' not in row
    for account in user.accounts:
        assert f"{account['id']} {account['name']}" in row


async def test_behind_a_proxy_the_consent_returns_to_the_public_address(
    auth: AuthService, simulator: Simulator
) -> None:
    simulator.create_user("PROXIED_1", "pw", accounts=1)
    nowhere = f"http://127.0.0.1:{free_port()}"
    settings = ConsoleSettings(
        console_port=0,
        console_users=f"alice:admin:{hash_password(ADMIN_PW)}",
        admin_token=TOKEN,
        ingest_url=nowhere,
        auth_url=auth.url,
        executor_url=nowhere,
        ledger_url=nowhere,
        console_public_url="https://console.example/",
    )
    proxied = await build_console(settings)
    await proxied.start()
    try:
        async with httpx.AsyncClient(base_url=proxied.url, timeout=20) as browser:
            admin = await Operator.sign_in(browser, proxied, "alice", ADMIN_PW)
            link = _continue_link((await admin.connect(browser)).text)
            to_venue = await browser.get(link)
            location = await _consent(simulator, to_venue.headers["location"], "PROXIED_1", "pw")
            back = await browser.get(location)
    finally:
        await proxied.stop()
    assert back.status_code == 303, back.text
    assert (
        back.headers["location"] == "https://console.example/logins/connected?connected=proxied_1"
    )
