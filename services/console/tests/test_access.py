"""Who may do what, through the running console over HTTP (ADR-0131).

The services behind it are unreachable on purpose: a request that passes every check goes on
to the service and comes back 502 "unreachable"; one that fails a check is refused before, with
401 or 403. So each status below says which side of the guard the request ended on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from phalanx_console.passwords import hash_password
from phalanx_console.service import ConsoleService, build_console
from phalanx_console.sessions import SessionStore
from phalanx_console.settings import ConsoleSettings
from phalanx_testing.servers import free_port

ADMIN_PW = "admin-pw-for-tests"
VIEWER_PW = "viewer-pw-for-tests"


@pytest_asyncio.fixture
async def console() -> AsyncIterator[ConsoleService]:
    nowhere = f"http://127.0.0.1:{free_port()}"
    users = (
        f"alice:admin:{hash_password(ADMIN_PW)},"  # admin
        f"victor:viewer:{hash_password(VIEWER_PW)}"
    )
    settings = ConsoleSettings(
        console_port=0,
        console_users=users,
        admin_token="console-test-token",
        ingest_url=nowhere,
        auth_url=nowhere,
        executor_url=nowhere,
        ledger_url=nowhere,
    )
    service = await build_console(settings)
    await service.start()
    yield service
    await service.stop()


def _token(store: SessionStore, session_id: str) -> str:
    session = store.get(session_id)
    assert session is not None
    return session.csrf


def _origin(console: ConsoleService) -> dict[str, str]:
    return {"Origin": console.url}


async def _sign_in(http: httpx.AsyncClient, console: ConsoleService, user: str, pw: str) -> str:
    """Sign in; the session cookie's value (sent by hand: it is Secure, the test is http)."""
    resp = await http.post("/login", data={"user": user, "password": pw}, headers=_origin(console))
    assert resp.status_code == 303, resp.text
    assert resp.headers["location"] == "/strategies"
    cookie = resp.headers["set-cookie"]
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "secure", "samesite=strict", "path=/"} <= flags
    return cookie.split(";")[0].split("=", 1)[1]


@pytest.mark.integration
async def test_signed_out_requests_go_to_the_sign_in_page(console: ConsoleService) -> None:
    async with httpx.AsyncClient(base_url=console.url, timeout=10) as http:
        for path in ("/", "/strategies", "/positions", "/trading", "/logins", "/signals/x"):
            resp = await http.get(path)
            assert resp.status_code == 303, path
            assert resp.headers["location"] == "/login"
        stream = await http.get("/strategies/s1/signals/live", headers={"HX-Request": "true"})
        assert stream.status_code == 401
        assert stream.headers["hx-redirect"] == "/login"
        posted = await http.post("/trading/kill", data={"confirm_word": "FLATTEN"})
        assert posted.status_code == 401
        forged = await http.get("/strategies", headers={"Cookie": "phalanx_console=made-up"})
        assert forged.status_code == 303
        login = await http.get("/login")
        assert login.status_code == 200
        assert "script-src 'self'" in login.headers["content-security-policy"]
        assert login.headers["x-frame-options"] == "DENY"


@pytest.mark.integration
async def test_sign_in_needs_the_right_password_and_this_consoles_origin(
    console: ConsoleService,
) -> None:
    async with httpx.AsyncClient(base_url=console.url, timeout=10) as http:
        for user, pw in (("alice", VIEWER_PW), ("nobody", ADMIN_PW), ("alice", "")):
            wrong = await http.post(
                "/login", data={"user": user, "password": pw}, headers=_origin(console)
            )
            assert wrong.status_code == 401
            assert "wrong user name or password" in wrong.text
            assert "set-cookie" not in wrong.headers
        foreign = await http.post(
            "/login",
            data={"user": "alice", "password": ADMIN_PW},
            headers={"Origin": "https://evil.example"},
        )
        assert foreign.status_code == 403
        assert "set-cookie" not in foreign.headers
        session = await _sign_in(http, console, "alice", ADMIN_PW)
        assert session


@pytest.mark.integration
async def test_changes_need_admin_role_csrf_token_and_origin(console: ConsoleService) -> None:
    async with httpx.AsyncClient(base_url=console.url, timeout=10) as http:
        admin = await _sign_in(http, console, "alice", ADMIN_PW)
        other = await _sign_in(http, console, "alice", ADMIN_PW)
        viewer = await _sign_in(http, console, "victor", VIEWER_PW)
        # every page embeds its session's token; the pages need the services, so read the
        # tokens where the pages read them
        store = console.sessions
        admin_csrf, other_csrf, viewer_csrf = (_token(store, s) for s in (admin, other, viewer))
        kill = {"confirm_word": "FLATTEN", "reason": "test"}

        async def post(session: str, data: dict[str, str], **headers: str) -> httpx.Response:
            return await http.post(
                "/trading/kill",
                data=data,
                headers={"Cookie": f"phalanx_console={session}", **headers},
            )

        # every check passed: the request reaches the executor (unreachable here: 502)
        passed = await post(admin, {**kill, "csrf": admin_csrf}, Origin=console.url)
        assert passed.status_code == 502
        assert "unreachable" in passed.text
        by_header = await post(admin, kill, Origin=console.url, **{"X-CSRF-Token": admin_csrf})
        assert by_header.status_code == 502
        by_referer = await post(
            admin, {**kill, "csrf": admin_csrf}, Referer=f"{console.url}/trading"
        )
        assert by_referer.status_code == 502
        # each failed check: 403 before anything is sent
        refusals = {
            "no token": await post(admin, kill, Origin=console.url),
            "wrong token": await post(admin, {**kill, "csrf": "x" * 43}, Origin=console.url),
            "another session's token": await post(
                admin, {**kill, "csrf": other_csrf}, Origin=console.url
            ),
            "foreign origin": await post(
                admin, {**kill, "csrf": admin_csrf}, Origin="https://evil.example"
            ),
            "null origin": await post(admin, {**kill, "csrf": admin_csrf}, Origin="null"),
            "no origin or referer": await post(admin, {**kill, "csrf": admin_csrf}),
            "read-only role": await post(viewer, {**kill, "csrf": viewer_csrf}, Origin=console.url),
        }
        for what, resp in refusals.items():
            assert resp.status_code == 403, what
        assert "read-only" in refusals["read-only role"].text
        assert "CSRF" in refusals["wrong token"].text

        # signing out ends the session: its cookie no longer opens a page
        out = await http.post(
            "/logout",
            data={"csrf": admin_csrf},
            headers={"Cookie": f"phalanx_console={admin}", "Origin": console.url},
        )
        assert out.status_code == 303
        assert store.get(admin) is None
        after = await post(admin, {**kill, "csrf": admin_csrf}, Origin=console.url)
        assert after.status_code == 401
        still = await post(other, {**kill, "csrf": other_csrf}, Origin=console.url)
        assert still.status_code == 502


@pytest.mark.integration
async def test_ids_in_paths_cannot_reach_other_admin_routes(console: ConsoleService) -> None:
    async with httpx.AsyncClient(base_url=console.url, timeout=10) as http:
        session = await _sign_in(http, console, "victor", VIEWER_PW)
        cookie = {"Cookie": f"phalanx_console={session}"}
        for path in (
            "/strategies/x%3Flimit%3D1",  # a query smuggled into the id
            "/signals/a%2Fb",
            "/strategies/x%23y/signals/live",
        ):
            resp = await http.get(path, headers=cookie)
            assert resp.status_code in (404, 422), path
        # a well-formed id goes on to the (unreachable) service
        assert (await http.get("/signals/s0123abc", headers=cookie)).status_code == 502


@pytest.mark.integration
async def test_metrics_count_sign_ins_and_sessions_and_readyz_needs_users(
    console: ConsoleService,
) -> None:
    async with httpx.AsyncClient(base_url=console.url, timeout=10) as http:
        await _sign_in(http, console, "alice", ADMIN_PW)
        await _sign_in(http, console, "victor", VIEWER_PW)
        refused = await http.post(
            "/login", data={"user": "alice", "password": "nope"}, headers=_origin(console)
        )
        assert refused.status_code == 401
        text = (await http.get("/metrics")).text
        assert 'phalanx_console_sign_ins_total{result="ok"} 2.0' in text
        assert 'phalanx_console_sign_ins_total{result="refused"} 1.0' in text
        assert "phalanx_console_sessions 2.0" in text
        assert (await http.get("/readyz")).status_code == 200


@pytest.mark.integration
async def test_too_many_wrong_passwords_hold_the_address_back(console: ConsoleService) -> None:
    async with httpx.AsyncClient(base_url=console.url, timeout=10) as http:
        for _ in range(10):
            wrong = await http.post(
                "/login", data={"user": "alice", "password": "guess"}, headers=_origin(console)
            )
            assert wrong.status_code == 401
        held = await http.post(
            "/login", data={"user": "alice", "password": ADMIN_PW}, headers=_origin(console)
        )
        assert held.status_code == 429  # even the right password, from this address
        assert int(held.headers["retry-after"]) > 0
        assert "set-cookie" not in held.headers
