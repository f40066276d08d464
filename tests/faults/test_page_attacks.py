"""The account page under attack (ADR-0118): auth served over real HTTP, the simulator as venue.

- no access to the page or its forms without the admin credential; an empty token (presented,
  or configured in development mode) never matches;
- a form is accepted only with its page session's cookie, that session's CSRF token and an
  ``Origin`` (or ``Referer``) naming this service: each session has its own token, a foreign or
  missing origin is refused;
- OAuth: a forged ``state`` and a replayed callback (code and state used twice) are refused and
  link nothing.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import pytest_asyncio

from phalanx_auth.page import SESSION_COOKIE
from phalanx_auth.service import AuthService, build_auth
from phalanx_auth.settings import AuthSettings
from phalanx_common.crypto import generate_key
from phalanx_sim import Simulator

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

TOKEN = "page-attack-admin-token-0123456789"
CLIENT_ID = "phalanx-page-attacks"
CLIENT_SECRET = "page-attacks-client-secret-x1"


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(host="127.0.0.1", port=0) as running:
        yield running


async def _auth(nats_url: str, sim: Simulator, admin_token: str) -> AuthService:
    service = await build_auth(
        AuthSettings(
            nats_url=nats_url,
            auth_port=0,
            admin_token=admin_token,
            dev_mode=not admin_token,
            token_keys=f"k1:{generate_key()}",
            tradovate_rest_url=sim.rest_url,
            tradovate_oauth_url=f"{sim.url}/oauth",
            oauth_client_id=CLIENT_ID,
            oauth_client_secret=CLIENT_SECRET,
        )
    )
    await service.start()
    sim.register_oauth_client(CLIENT_ID, CLIENT_SECRET, [f"{service.url}/oauth/callback"])
    return service


@pytest_asyncio.fixture
async def auth(nats_url: str, sim: Simulator) -> AsyncIterator[AuthService]:
    service = await _auth(nats_url, sim, TOKEN)
    try:
        yield service
    finally:
        await service.stop()


def _csrf(page: httpx.Response) -> str:
    found = re.search(r'name=csrf value="([0-9a-f]+)"', page.text)
    assert found is not None, page.text
    return found.group(1)


async def test_the_page_and_its_forms_need_the_credential(auth: AuthService) -> None:
    async with httpx.AsyncClient(base_url=auth.url, timeout=10) as anonymous:
        statuses = [
            (await anonymous.get("/ui")).status_code,
            (await anonymous.get("/ui", auth=("admin", "wrong"))).status_code,
            (await anonymous.post("/ui/connect", data={"csrf": "x"})).status_code,
            (await anonymous.post("/ui/logins/x/disconnect", data={"csrf": "x"})).status_code,
            (await anonymous.get("/admin/logins")).status_code,
        ]
    assert statuses == [401] * 5


async def test_an_empty_configured_token_never_matches(nats_url: str, sim: Simulator) -> None:
    service = await _auth(nats_url, sim, admin_token="")  # development mode allows it
    try:
        async with httpx.AsyncClient(base_url=service.url, timeout=10) as http:
            statuses = [
                (await http.get("/ui", auth=("admin", ""))).status_code,
                (await http.get("/ui", auth=("", ""))).status_code,
                (await http.get("/ui", headers={"Authorization": "Bearer"})).status_code,
                (await http.get("/admin/logins", headers={"Authorization": "Bearer"})).status_code,
                (await http.get("/admin/logins", auth=("admin", ""))).status_code,
                (
                    await http.post("/admin/keys/rotate", headers={"Authorization": "Bearer"})
                ).status_code,
            ]
    finally:
        await service.stop()
    assert statuses == [401] * 6


async def test_forms_need_their_session_csrf_and_origin(auth: AuthService) -> None:
    credential = ("operator", TOKEN)
    own_origin = {"Origin": auth.url}
    async with (
        httpx.AsyncClient(base_url=auth.url, timeout=10, auth=credential) as browser,
        httpx.AsyncClient(base_url=auth.url, timeout=10, auth=credential) as other_browser,
    ):
        page = await browser.get("/ui")
        assert page.status_code == 200
        assert "httponly" in page.headers["set-cookie"].lower()
        assert "samesite=strict" in page.headers["set-cookie"].lower()
        csrf = _csrf(page)
        other_csrf = _csrf(await other_browser.get("/ui"))
        assert other_csrf != csrf  # a token per session
        session = browser.cookies[SESSION_COOKIE]

        async def connect(token: str, headers: dict[str, str], cookie: bool = True) -> int:
            cookies = {SESSION_COOKIE: session} if cookie else {}
            async with httpx.AsyncClient(
                base_url=auth.url, timeout=10, auth=credential, cookies=cookies
            ) as c:
                answer = await c.post("/ui/connect", data={"csrf": token}, headers=headers)
            return answer.status_code

        refused = {
            "no session cookie": await connect(csrf, own_origin, cookie=False),
            "another session's token": await connect(other_csrf, own_origin),
            "no token": await connect("", own_origin),
            "a foreign Origin": await connect(csrf, {"Origin": "https://evil.example"}),
            "a foreign Referer": await connect(csrf, {"Referer": "https://evil.example/ui"}),
            "an opaque Origin": await connect(csrf, {"Origin": "null"}),
            "no Origin nor Referer": await connect(csrf, {}),
        }
        accepted = {
            "own Origin": await connect(csrf, own_origin),
            "own Referer": await connect(csrf, {"Referer": f"{auth.url}/ui"}),
        }
    assert refused == dict.fromkeys(refused, 403)
    assert accepted == dict.fromkeys(accepted, 303)


async def test_forged_state_and_replayed_callback_are_refused(
    auth: AuthService, sim: Simulator
) -> None:
    admin = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=auth.url, timeout=10) as http:
        created = await http.post(
            f"{sim.url}/admin/users",
            json={"name": "page_person", "password": "page-person-pw", "accounts": 1},
        )
        assert created.status_code < 300, created.text
        started = await http.post("/admin/oauth/start", json={}, headers=admin)
        authorize_url = started.json()["authorize_url"]
        fields = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
        forged = await http.get("/oauth/callback", params={"state": "forged", "code": "x"})
        async with httpx.AsyncClient(timeout=10) as person:
            consent = await person.post(
                f"{sim.url}/oauth",
                data={**fields, "username": "page_person", "password": "page-person-pw"},
            )
        assert consent.status_code == 302, consent.text
        callback = urlsplit(consent.headers["location"])
        query = parse_qs(callback.query)
        wrong_state = await http.get(
            "/oauth/callback", params={"state": fields["state"] + "x", "code": query["code"][0]}
        )
        first = await http.get(f"{callback.path}?{callback.query}")
        replayed = await http.get(f"{callback.path}?{callback.query}")
        logins = (await http.get("/admin/logins", headers=admin)).json()
    assert (forged.status_code, wrong_state.status_code) == (400, 400)
    assert (first.status_code, replayed.status_code) == (303, 400)
    assert [login["username"] for login in logins] == ["page_person"]
