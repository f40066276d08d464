"""The auth service over a real NATS server and a fake Tradovate REST venue.

The venue is :class:`phalanx_tradovate.testing.FakeTradovateRest` behind ``httpx.MockTransport``
(the REST client code runs for real). Contract tests against the simulator are in
``test_auth_sim.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import nats
import pytest
import pytest_asyncio
from nats.js.errors import NotFoundError

from phalanx_auth.service import AuthService, build_auth
from phalanx_auth.settings import AuthSettings
from phalanx_auth.tokens import expiry_ns
from phalanx_common import codec
from phalanx_common.errors import DependencyUnavailable
from phalanx_common.events import AccountLinked, AnyEvent, ReauthRequired, TokenRenewed
from phalanx_common.records import AccountRecord, LoginRecord, TokenRecord
from phalanx_testing.clock import FakeClock
from phalanx_testing.waiting import eventually
from phalanx_tradovate.rest import TradovateRest
from phalanx_tradovate.testing import FakeTradovateRest

ADMIN = {"Authorization": "Bearer test-admin"}
ACCOUNTS = [(2001, "APEX1234501"), (2002, "PAAPEX1234502")]


@dataclass
class Harness:
    service: AuthService
    venue: FakeTradovateRest
    clock: FakeClock
    http: httpx.AsyncClient
    nats_url: str

    async def events(self) -> list[AnyEvent]:
        """Every event in the AUTH stream, in order."""
        js = self.service.bus.js
        try:
            info = await js.stream_info("AUTH")
        except NotFoundError:
            return []
        if not info.state.messages:
            return []
        out: list[AnyEvent] = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg("AUTH", seq)
            assert msg.data is not None
            out.append(codec.decode_event(msg.data))
        return out

    async def token(self, login_id: str) -> tuple[TokenRecord, int] | None:
        return await self.service.manager.store.get_token(login_id)


def _settings(nats_url: str, **overrides: object) -> AuthSettings:
    base: dict[str, object] = {
        "nats_url": nats_url,
        "auth_port": 0,
        "admin_token": "test-admin",
        "tradovate_rest_url": "http://venue.test/v1",
    }
    base.update(overrides)
    return AuthSettings(**base)  # type: ignore[arg-type]


@pytest_asyncio.fixture
async def harness(nats_url: str, fake_clock: FakeClock) -> AsyncIterator[Harness]:
    venue = FakeTradovateRest(fake_clock.time_ns, token_lifetime_s=80 * 60)
    venue.add_user("APEX_12345", "right-password", ACCOUNTS)
    rest = TradovateRest(
        "http://venue.test/v1",
        client=httpx.AsyncClient(transport=httpx.MockTransport(venue.handle)),
    )
    service = await build_auth(_settings(nats_url), fake_clock, rest=rest)
    await service.start()
    async with httpx.AsyncClient(base_url=service.url, timeout=10) as http:
        yield Harness(service, venue, fake_clock, http, nats_url)
    await service.stop()


async def _register(h: Harness, password: str = "right-password") -> httpx.Response:  # noqa: S107
    return await h.http.post(
        "/admin/logins",
        json={"username": "APEX_12345", "password": password},
        headers=ADMIN,
    )


@pytest.mark.integration
async def test_register_stores_login_token_accounts_and_publishes(harness: Harness) -> None:
    resp = await _register(harness)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["login_id"] == "apex_12345"
    assert body["username"] == "APEX_12345"
    assert body["user_id"] == 1000
    assert body["status"] == "active"
    assert [(a["account_id"], a["account_spec"]) for a in body["accounts"]] == ACCOUNTS
    assert "tok-" not in resp.text
    assert "right-password" not in resp.text

    store = harness.service.manager.store
    assert await store.get_login("apex_12345") == LoginRecord(
        login_id="apex_12345",
        username="APEX_12345",
        user_id=1000,
        connected_ns=harness.clock.time_ns(),
    )
    found = await harness.token("apex_12345")
    assert found is not None
    token, _ = found
    assert token.access_token == "tok-1000-1"
    assert expiry_ns(token.expiration_time) == harness.clock.time_ns() + 80 * 60 * 10**9
    assert await store.get_account(2002) == AccountRecord(
        account_id=2002, account_spec="PAAPEX1234502", login_id="apex_12345", user_id=1000
    )

    events: list[AnyEvent] = await eventually(harness.events, what="auth events")
    linked = [e for e in events if isinstance(e, AccountLinked)]
    assert [(e.account_id, e.account_spec, e.login_id, e.user_id) for e in linked] == [
        (2001, "APEX1234501", "apex_12345", 1000),
        (2002, "PAAPEX1234502", "apex_12345", 1000),
    ]
    renewed = [e for e in events if isinstance(e, TokenRenewed)]
    assert [(e.login_id, e.expiration_time) for e in renewed] == [
        ("apex_12345", token.expiration_time)
    ]
    # the login sent what Tradovate expects, including a stable deviceId
    (login_body,) = harness.venue.login_bodies
    assert login_body["name"] == "APEX_12345"
    assert login_body["appId"] == "phalanx"
    assert len(login_body["deviceId"]) == 32


@pytest.mark.integration
async def test_list_endpoints(harness: Harness) -> None:
    assert (await _register(harness)).status_code == 201
    logins = (await harness.http.get("/admin/logins", headers=ADMIN)).json()
    assert [(x["login_id"], len(x["accounts"])) for x in logins] == [("apex_12345", 2)]
    assert logins[0]["token_expiration_time"].endswith("Z")
    accounts = (await harness.http.get("/admin/accounts", headers=ADMIN)).json()
    assert [(a["account_id"], a["login_id"]) for a in accounts] == [
        (2001, "apex_12345"),
        (2002, "apex_12345"),
    ]


@pytest.mark.integration
async def test_admin_api_requires_the_token(harness: Harness) -> None:
    resp = await harness.http.get("/admin/logins")
    assert resp.status_code == 401
    resp = await harness.http.post(
        "/admin/logins",
        json={"username": "APEX_12345", "password": "right-password"},
        headers={"Authorization": "Bearer wrong"},
    )
    assert resp.status_code == 401
    assert harness.venue.calls == []


@pytest.mark.integration
async def test_wrong_password_is_400_and_stores_nothing(harness: Harness) -> None:
    resp = await _register(harness, password="wrong")
    assert resp.status_code == 400
    assert "Incorrect username or password" in resp.json()["detail"]
    store = harness.service.manager.store
    assert await store.list_logins() == []
    assert await store.list_accounts() == []
    assert await store.token_login_ids() == []
    assert await harness.events() == []
    assert harness.venue.calls == ["auth/accesstokenrequest"]


@pytest.mark.integration
async def test_unreachable_venue_is_502_and_stores_nothing(
    nats_url: str, fake_clock: FakeClock
) -> None:
    settings = _settings(nats_url, tradovate_rest_url="http://127.0.0.1:9/v1", venue_timeout_s=2.0)
    service = await build_auth(settings, fake_clock)
    await service.start()
    try:
        async with httpx.AsyncClient(base_url=service.url, timeout=10) as http:
            resp = await http.post(
                "/admin/logins", json={"username": "bob", "password": "x"}, headers=ADMIN
            )
        assert resp.status_code == 502
        assert "venue" in resp.json()["detail"]
        assert await service.manager.store.list_logins() == []
        assert await service.manager.store.token_login_ids() == []
    finally:
        await service.stop()


async def test_unreachable_nats_raises_dependency_unavailable() -> None:
    with pytest.raises(DependencyUnavailable, match="NATS"):
        await build_auth(_settings("nats://127.0.0.1:9"))


@pytest.mark.integration
async def test_renewal_loop_renews_before_expiry_on_the_fake_clock(harness: Harness) -> None:
    assert (await _register(harness)).status_code == 201
    before = await harness.token("apex_12345")
    assert before is not None
    # 80 min token, renew when < 30 min left: at +45 min nothing is due yet...
    assert await harness.service.manager.renew_due() == []
    await harness.clock.advance(45 * 60)
    assert await harness.service.manager.renew_due() == []
    assert harness.venue.calls_to("auth/renewaccesstoken") == 0
    # ...at +55 min (25 min left) the loop, woken by the clock, renews. Each probe moves the
    # clock on a little, in case the loop went back to sleep after the advance.
    await harness.clock.advance(10 * 60)

    async def renewed() -> TokenRecord | None:
        found = await harness.token("apex_12345")
        if found and found[0].access_token != before[0].access_token:
            return found[0]
        await harness.clock.advance(30)
        return None

    token: TokenRecord | None = await eventually(renewed, what="renewed token")
    assert token is not None
    assert token.access_token == "tok-1000-2"
    old_expiry = expiry_ns(before[0].expiration_time)
    new_expiry = expiry_ns(token.expiration_time)
    assert old_expiry is not None
    assert new_expiry is not None
    assert new_expiry - old_expiry >= 55 * 60 * 10**9
    after = await harness.token("apex_12345")
    assert after is not None
    assert after[1] > before[1]
    assert harness.venue.calls_to("auth/renewaccesstoken") == 1
    events: list[TokenRenewed] = await eventually(
        lambda: _of_type(harness, TokenRenewed, 2), what="second TokenRenewed"
    )
    assert events[-1].expiration_time == token.expiration_time


async def _of_type(h: Harness, type_: type[TokenRenewed], n: int) -> list[TokenRenewed]:
    found = [e for e in await h.events() if isinstance(e, type_)]
    return found if len(found) >= n else []


@pytest.mark.integration
async def test_renewal_uses_compare_and_set(harness: Harness) -> None:
    assert (await _register(harness)).status_code == 201
    await harness.service.manager.stop()  # drive renewal by hand
    store = harness.service.manager.store
    other = TokenRecord(
        login_id="apex_12345",
        user_id=1000,
        access_token="written-by-another-replica",
        expiration_time="2026-01-01T03:00:00Z",
    )

    async def race() -> None:
        await store.put_token(other)

    harness.venue.before_renew = race
    await harness.clock.advance(60 * 60)
    assert await harness.service.manager.renew_if_due("apex_12345") is False
    found = await harness.token("apex_12345")
    assert found is not None
    assert found[0] == other
    assert len([e for e in await harness.events() if isinstance(e, TokenRenewed)]) == 1


@pytest.mark.integration
async def test_refused_renewal_requires_reauth_once(harness: Harness) -> None:
    assert (await _register(harness)).status_code == 201
    await harness.service.manager.stop()
    harness.venue.renew_status = 401
    await harness.clock.advance(60 * 60)
    manager = harness.service.manager
    assert await manager.renew_due() == []
    assert await manager.renew_due() == []  # already marked: no second call or event
    assert harness.venue.calls_to("auth/renewaccesstoken") == 1
    login = await manager.store.get_login("apex_12345")
    assert login is not None
    assert login.status == "reauth_required"
    reauth = [e for e in await harness.events() if isinstance(e, ReauthRequired)]
    assert [(e.login_id, "renewal refused" in e.reason) for e in reauth] == [("apex_12345", True)]
    # registering again brings the login back
    assert (await _register(harness)).status_code == 201
    login = await manager.store.get_login("apex_12345")
    assert login is not None
    assert login.status == "active"


@pytest.mark.integration
async def test_events_are_readable_by_another_client(harness: Harness) -> None:
    """A consumer (the executor) can follow auth.<login> on the AUTH stream."""
    assert (await _register(harness)).status_code == 201
    nc = await nats.connect(harness.nats_url)
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe("auth.apex_12345", durable=None, stream="AUTH")
        msgs = await sub.fetch(3, timeout=5)
        kinds = [type(codec.decode_event(m.data)).__name__ for m in msgs]
        assert kinds == ["AccountLinked", "AccountLinked", "TokenRenewed"]
    finally:
        await nc.close()
