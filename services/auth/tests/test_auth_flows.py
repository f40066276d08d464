"""Fallback to API access, account discovery, disconnect, key rotation and the secrecy of tokens.

Real NATS; the venue is :class:`phalanx_tradovate.testing.FakeTradovateRest` behind
``httpx.MockTransport`` (the REST client code runs for real) so accounts can appear and vanish.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import nats
import pytest
import pytest_asyncio
from nats.js.errors import NotFoundError

from phalanx_auth.service import AuthService, build_auth
from phalanx_auth.settings import AuthSettings
from phalanx_common import codec
from phalanx_common.crypto import KeyRing, generate_key
from phalanx_common.events import AccountLinked, AccountUnlinked, AnyEvent, ReauthRequired
from phalanx_testing.clock import FakeClock
from phalanx_testing.waiting import eventually
from phalanx_tradovate.rest import TradovateRest
from phalanx_tradovate.testing import FakeTradovateRest

ADMIN = {"Authorization": "Bearer test-admin"}
PASSWORD = "pw-Very-Secret-4711"
KEY_1 = generate_key()


@dataclass
class H:
    service: AuthService
    venue: FakeTradovateRest
    clock: FakeClock
    http: httpx.AsyncClient
    nats_url: str
    accounts: list[tuple[int, str]]

    async def events(self) -> list[AnyEvent]:
        js = self.service.bus.js
        try:
            info = await js.stream_info("AUTH")
        except NotFoundError:
            return []
        out: list[AnyEvent] = []
        if not info.state.messages:
            return out
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg("AUTH", seq)
            assert msg.data is not None
            out.append(codec.decode_event(msg.data))
        return out

    async def register(self, remember: bool = False) -> httpx.Response:
        return await self.http.post(
            "/admin/logins",
            json={"username": "APEX_1", "password": PASSWORD, "remember_credentials": remember},
            headers=ADMIN,
        )


async def _harness(
    nats_url: str, clock: FakeClock, keys: str = f"k1:{KEY_1}", **overrides: object
) -> tuple[AuthService, FakeTradovateRest, list[tuple[int, str]]]:
    venue = FakeTradovateRest(clock.time_ns, token_lifetime_s=80 * 60)
    accounts = [(3001, "APEX0000101"), (3002, "PAAPEX0000102")]
    venue.add_user("APEX_1", PASSWORD, accounts)
    rest = TradovateRest(
        "http://venue.test/v1",
        client=httpx.AsyncClient(transport=httpx.MockTransport(venue.handle)),
        sleep=clock.sleep,
    )
    values: dict[str, object] = {
        "nats_url": nats_url,
        "auth_port": 0,
        "admin_token": "test-admin",
        "token_keys": keys,
        "tradovate_rest_url": "http://venue.test/v1",
    }
    values.update(overrides)
    service = await build_auth(AuthSettings(**values), clock, rest=rest)  # type: ignore[arg-type]
    await service.start()
    await service.manager.stop()  # drive renewal and discovery by hand
    return service, venue, accounts


@pytest_asyncio.fixture
async def h(nats_url: str, fake_clock: FakeClock) -> AsyncIterator[H]:
    service, venue, accounts = await _harness(nats_url, fake_clock)
    async with httpx.AsyncClient(base_url=service.url, timeout=10) as http:
        yield H(service, venue, fake_clock, http, nats_url, accounts)
    await service.stop()


@pytest.mark.integration
async def test_refused_renewal_falls_back_to_stored_credentials(h: H) -> None:
    assert (await h.register(remember=True)).status_code == 201
    manager = h.service.manager
    before = await manager.store.get_token("apex_1")
    assert before is not None
    h.venue.renew_status = 401
    await h.clock.advance(55 * 60)
    assert await manager.renew_due() == ["apex_1"]
    after = await manager.store.get_token("apex_1")
    assert after is not None
    assert after[0].access_token != before[0].access_token
    assert after[1] > before[1]
    assert h.venue.calls_to("auth/accesstokenrequest") == 2
    assert manager.metrics.api_access_fallbacks == 1  # rare, and visible
    login = await manager.store.get_login("apex_1")
    assert login is not None
    assert login.status == "active"
    metrics = (await h.http.get("/admin/metrics", headers=ADMIN)).json()
    assert metrics["api_access_fallbacks"] == 1


@pytest.mark.integration
async def test_without_credentials_a_refused_renewal_requires_reauth(h: H) -> None:
    assert (await h.register(remember=False)).status_code == 201
    manager = h.service.manager
    h.venue.renew_status = 401
    await h.clock.advance(55 * 60)
    assert await manager.renew_due() == []
    assert h.venue.calls_to("auth/accesstokenrequest") == 1  # no second login
    login = await manager.store.get_login("apex_1")
    assert login is not None
    assert login.status == "reauth_required"
    assert "renewal refused" in login.reason
    assert [e.login_id for e in await h.events() if isinstance(e, ReauthRequired)] == ["apex_1"]


@pytest.mark.integration
async def test_wrong_stored_password_stops_within_the_failure_budget(h: H) -> None:
    assert (await h.register(remember=True)).status_code == 201
    manager = h.service.manager
    h.venue.users["APEX_1"] = ("changed-at-the-venue", *h.venue.users["APEX_1"][1:])
    h.venue.renew_status = 401
    await h.clock.advance(55 * 60)
    for _ in range(5):
        await manager.renew_due()
    # one refused renewal, one failed login, then the login waits for a person
    assert h.venue.calls_to("auth/renewaccesstoken") == 1
    assert h.venue.calls_to("auth/accesstokenrequest") == 2
    login = await manager.store.get_login("apex_1")
    assert login is not None
    assert login.status == "reauth_required"
    assert "API access refused" in login.reason


@pytest.mark.integration
async def test_venue_outage_during_renewal_keeps_the_token(h: H) -> None:
    assert (await h.register()).status_code == 201
    manager = h.service.manager
    before = await manager.store.get_token("apex_1")
    assert before is not None
    h.venue.renew_status = 503
    await h.clock.advance(55 * 60)
    assert await manager.renew_due() == []
    assert await manager.store.get_token("apex_1") == before
    login = await manager.store.get_login("apex_1")
    assert login is not None
    assert login.status == "active"
    # the outage ends before expiry: the next check renews
    h.venue.renew_status = None
    await h.clock.advance(5 * 60)
    assert await manager.renew_due() == ["apex_1"]


@pytest.mark.integration
async def test_discovery_links_new_and_unlinks_closed_accounts(h: H) -> None:
    assert (await h.register()).status_code == 201
    h.accounts.append((3003, "PAAPEX0000103"))  # a new prop account appears
    h.accounts.remove((3001, "APEX0000101"))  # an evaluation closes
    resp = await h.http.post("/admin/logins/apex_1/discover", headers=ADMIN)
    assert resp.status_code == 200, resp.text
    assert sorted(a["account_id"] for a in resp.json()) == [3002, 3003]
    store = h.service.manager.store
    assert await store.get_account(3001) is None
    new = await store.get_account(3003)
    assert new is not None
    assert new.login_id == "apex_1"
    events = await h.events()
    assert [e.account_id for e in events if isinstance(e, AccountLinked)] == [3001, 3002, 3003]
    assert [(e.account_id, e.login_id) for e in events if isinstance(e, AccountUnlinked)] == [
        (3001, "apex_1")
    ]


@pytest.mark.integration
async def test_discovery_runs_on_its_schedule(nats_url: str, fake_clock: FakeClock) -> None:
    service, _, accounts = await _harness(nats_url, fake_clock, discover_every_s=600.0)
    try:
        async with httpx.AsyncClient(base_url=service.url, timeout=10) as http:
            resp = await http.post(
                "/admin/logins", json={"username": "APEX_1", "password": PASSWORD}, headers=ADMIN
            )
            assert resp.status_code == 201
        service.manager.start()
        accounts.append((3004, "PAAPEX0000104"))

        async def linked() -> bool:
            if await service.manager.store.get_account(3004) is not None:
                return True
            await fake_clock.advance(60)
            return False

        assert await eventually(linked, what="scheduled discovery linked the new account")
    finally:
        await service.stop()


@pytest.mark.integration
async def test_disconnect_forgets_token_and_unlinks(h: H) -> None:
    assert (await h.register(remember=True)).status_code == 201
    resp = await h.http.delete("/admin/logins/apex_1", headers=ADMIN)
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "disconnected"
    store = h.service.manager.store
    assert await store.get_token("apex_1") is None
    assert await store.get_credentials("apex_1") is None
    assert await store.list_accounts() == []
    unlinked = [e for e in await h.events() if isinstance(e, AccountUnlinked)]
    assert sorted(e.account_id for e in unlinked) == [3001, 3002]
    assert (await h.http.delete("/admin/logins/nobody", headers=ADMIN)).status_code == 404


@pytest.mark.integration
async def test_openapi_is_served(h: H) -> None:
    doc = (await h.http.get("/openapi.json")).json()
    assert {"/admin/logins", "/admin/logins/{login_id}", "/admin/oauth/start"} <= set(doc["paths"])
    assert "/ui" not in doc["paths"]


@pytest.mark.integration
async def test_key_rotation_reseals_under_the_new_key(nats_url: str, fake_clock: FakeClock) -> None:
    service, _, _ = await _harness(nats_url, fake_clock)
    try:
        async with httpx.AsyncClient(base_url=service.url, timeout=10) as http:
            resp = await http.post(
                "/admin/logins",
                json={"username": "APEX_1", "password": PASSWORD, "remember_credentials": True},
                headers=ADMIN,
            )
            assert resp.status_code == 201
        token = await service.manager.store.get_token("apex_1")
        assert token is not None
    finally:
        await service.stop()
    key_2 = generate_key()
    service, _, _ = await _harness(nats_url, fake_clock, keys=f"k2:{key_2},k1:{KEY_1}")
    try:
        store = service.manager.store
        meta = await store.get_token_meta("apex_1")
        assert meta is not None
        assert KeyRing.key_id_of(meta.sealed) == "k1"
        assert await service.manager.rotate_keys() == 1
        meta = await store.get_token_meta("apex_1")
        assert meta is not None
        assert KeyRing.key_id_of(meta.sealed) == "k2"
        after = await store.get_token("apex_1")
        assert after is not None
        assert after[0].access_token == token[0].access_token
        creds = await store.get_credentials("apex_1")
        assert creds is not None
        assert creds.password == PASSWORD
    finally:
        await service.stop()
    # the old key alone can no longer open it
    service, _, _ = await _harness(nats_url, fake_clock, keys=f"k2:{key_2}")
    try:
        assert (await service.manager.store.get_token("apex_1")) is not None
    finally:
        await service.stop()


@pytest.mark.integration
async def test_tokens_and_passwords_never_leak(
    h: H, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """Scan logs, stdout/stderr, events, raw KV, API answers and the page for a known token."""
    caplog.set_level(logging.DEBUG)
    assert (await h.register(remember=True)).status_code == 201
    manager = h.service.manager
    first = await manager.store.get_token("apex_1")
    assert first is not None
    secrets = {first[0].access_token, PASSWORD}
    # exercise the failure paths too: wrong password, refused renewal and the fallback
    bad = await h.http.post(
        "/admin/logins", json={"username": "APEX_1", "password": "wrong-" + PASSWORD}, headers=ADMIN
    )
    assert bad.status_code == 400
    h.venue.renew_status = 401
    await h.clock.advance(55 * 60)
    assert await manager.renew_due() == ["apex_1"]
    second = await manager.store.get_token("apex_1")
    assert second is not None
    secrets.add(second[0].access_token)
    h.venue.renew_status = None
    await h.clock.advance(55 * 60)
    assert await manager.renew_due() == ["apex_1"]
    third = await manager.store.get_token("apex_1")
    assert third is not None
    secrets.add(third[0].access_token)

    texts: list[str] = [bad.text, repr(manager.settings), repr(first[0]), repr(manager.store.ring)]
    basic = base64.b64encode(b"admin:test-admin").decode()
    for path in ("/admin/logins", "/admin/accounts", "/admin/metrics", "/openapi.json"):
        texts.append((await h.http.get(path, headers=ADMIN)).text)
    texts.append((await h.http.get("/ui", headers={"Authorization": f"Basic {basic}"})).text)
    texts.extend(str(e) + repr(e) + codec.encode(e).decode() for e in await h.events())
    nc = await nats.connect(h.nats_url)
    try:
        js = nc.jetstream()
        for stream in ("KV_tokens", "KV_credentials", "KV_logins", "KV_accounts", "AUTH"):
            info = await js.stream_info(stream)
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                try:
                    msg = await js.get_msg(stream, seq)
                except NotFoundError:
                    continue
                texts.append((msg.data or b"").decode(errors="replace"))
    finally:
        await nc.close()
    texts.extend(record.getMessage() + (record.exc_text or "") for record in caplog.records)
    out = capsys.readouterr()
    texts.extend([out.out, out.err, caplog.text])
    assert caplog.records  # the scan looked at real log output
    assert len(texts) > 20
    leaks = [(s[:8] + "…", t[:120]) for t in texts for s in secrets if s in t]
    assert leaks == []


@pytest.mark.integration
async def test_failed_logins_stop_at_the_budget_without_calling_the_venue(h: H) -> None:
    for _ in range(3):
        resp = await h.http.post(
            "/admin/logins", json={"username": "APEX_1", "password": "wrong"}, headers=ADMIN
        )
        assert resp.status_code == 400
    fourth = await h.http.post(
        "/admin/logins", json={"username": "APEX_1", "password": PASSWORD}, headers=ADMIN
    )
    assert fourth.status_code == 429
    assert "failed logins in the last hour" in fourth.json()["detail"]
    assert int(fourth.headers["retry-after"]) > 0
    assert h.venue.calls_to("auth/accesstokenrequest") == 3  # the 4th never left
    await h.clock.advance(3601)
    assert (await h.register()).status_code == 201


@pytest.mark.integration
async def test_token_priority_cache_then_kv_then_api_access(h: H) -> None:
    assert (await h.register(remember=True)).status_code == 201
    manager = h.service.manager
    cached = await manager.token_for("apex_1")
    assert cached is not None
    assert manager.metrics.token_from_cache == 1
    assert manager.metrics.token_from_api_access == 0
    # the token expired unnoticed (the loop is stopped): the last resort logs in again
    await h.clock.advance(81 * 60)
    fresh = await manager.token_for("apex_1")
    assert fresh is not None
    assert fresh.access_token != cached.access_token
    assert manager.metrics.token_from_api_access == 1
    assert h.venue.calls_to("auth/accesstokenrequest") == 2
    assert await manager.token_for("apex_1") == fresh
    assert manager.metrics.token_from_cache == 2
