"""A renewal that loses the race with an operator's disconnect does not resurrect the login as
``reauth_required`` (the login status table), while an active login is marked and announced.

Real NATS; the venue is :class:`phalanx_tradovate.testing.FakeTradovateRest` behind
``httpx.MockTransport``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from nats.js.errors import NotFoundError

from phalanx_auth.api_access import ApiAccess
from phalanx_auth.counters import AuthMetrics
from phalanx_auth.fallback import ApiAccessFallback
from phalanx_auth.service import AuthService, build_auth
from phalanx_auth.settings import AuthSettings
from phalanx_auth.throttle import LoginThrottle
from phalanx_auth.tokens import TokenCache
from phalanx_common import codec
from phalanx_common.crypto import generate_key
from phalanx_common.events import ReauthRequired
from phalanx_common.records import LoginRecord, LoginStatus
from phalanx_testing.clock import FakeClock
from phalanx_tradovate.rest import TradovateRest
from phalanx_tradovate.testing import FakeTradovateRest

pytestmark = pytest.mark.integration

ADMIN = {"Authorization": "Bearer test-admin"}


@pytest_asyncio.fixture
async def service(nats_url: str, fake_clock: FakeClock) -> AsyncIterator[AuthService]:
    venue = FakeTradovateRest(fake_clock.time_ns, token_lifetime_s=80 * 60)
    venue.add_user("APEX_7", "pw-7", [(7001, "APEX0000701")])
    rest = TradovateRest(
        "http://venue.test/v1",
        client=httpx.AsyncClient(transport=httpx.MockTransport(venue.handle)),
        sleep=fake_clock.sleep,
    )
    settings = AuthSettings(
        nats_url=nats_url,
        auth_port=0,
        admin_token="test-admin",
        token_keys=f"k1:{generate_key()}",
        tradovate_rest_url="http://venue.test/v1",
    )
    built = await build_auth(settings, fake_clock, rest=rest)
    await built.start()
    await built.manager.stop()  # no background renewal: the test drives the fallback
    try:
        yield built
    finally:
        await built.stop()


def _fallback(service: AuthService, metrics: AuthMetrics) -> ApiAccessFallback:
    manager = service.manager
    api = ApiAccess(manager.settings, manager.rest, manager.clock, LoginThrottle())
    return ApiAccessFallback(manager.store, manager.bus, manager.clock, metrics, TokenCache(), api)


async def _reauth_events(service: AuthService) -> list[ReauthRequired]:
    js = service.bus.js
    try:
        info = await js.stream_info("AUTH")
    except NotFoundError:
        return []
    found: list[ReauthRequired] = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg("AUTH", seq)
        assert msg.data is not None
        event = codec.decode_event(msg.data)
        if isinstance(event, ReauthRequired):
            found.append(event)
    return found


async def _register(service: AuthService) -> LoginRecord:
    async with httpx.AsyncClient(base_url=service.url, timeout=10) as http:
        resp = await http.post(
            "/admin/logins", json={"username": "APEX_7", "password": "pw-7"}, headers=ADMIN
        )
    assert resp.status_code == 201, resp.text
    login = await service.manager.store.get_login("apex_7")
    assert login is not None
    assert login.status == LoginStatus.ACTIVE
    return login


async def test_an_active_login_without_credentials_is_marked_and_announced(
    service: AuthService,
) -> None:
    seen = await _register(service)
    metrics = AuthMetrics()
    token = await _fallback(service, metrics).token(seen, None, "renewal refused: test")
    assert token is None
    login = await service.manager.store.get_login("apex_7")
    assert login is not None
    assert (login.status, login.reason) == (LoginStatus.REAUTH_REQUIRED, "renewal refused: test")
    assert [e.login_id for e in await _reauth_events(service)] == ["apex_7"]
    assert metrics.reauth_required == 1


async def test_a_login_disconnected_meanwhile_stays_disconnected_and_nobody_is_asked(
    service: AuthService,
) -> None:
    seen = await _register(service)  # what a renewal read before the operator acted
    await service.manager.disconnect("apex_7")
    metrics = AuthMetrics()
    token = await _fallback(service, metrics).token(seen, None, "renewal refused: test")
    assert token is None
    login = await service.manager.store.get_login("apex_7")
    assert login is not None
    assert (login.status, login.reason) == (
        LoginStatus.DISCONNECTED,
        "disconnected by an operator",
    )
    assert await _reauth_events(service) == []
    assert metrics.reauth_required == 0
