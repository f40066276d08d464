"""500 logins stay valid across 24 simulated hours (real NATS, the simulator, a fake clock).

The renewal loop runs as in production (check every 5 min, renew under 30 min left); the test
only advances the fake clock — shared by auth and the simulator — one check interval at a time
and waits for each pass to finish. An executor-like reader follows the sealed tokens bucket
through a KV watch and, after every pass, every token it holds must be accepted by the venue.
At the end the simulator's own books must show zero rejected tokens, zero limit violations and
at most 15 renewals per login in any rolling hour.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable

import pytest

from phalanx_auth.connect import LoginRequest
from phalanx_auth.logins import LoginManager
from phalanx_auth.service import build_auth
from phalanx_auth.settings import AuthSettings
from phalanx_auth.tokens import expiry_ns
from phalanx_common.bus import Bus
from phalanx_common.crypto import key_ring_from_settings, token_decoder
from phalanx_common.kvmirror import KvMirror
from phalanx_common.records import TokenRecord
from phalanx_common.subjects import Buckets
from phalanx_sim import Simulator
from phalanx_testing.clock import FakeClock
from phalanx_testing.waiting import eventually
from phalanx_tradovate.rest import TradovateRest

LOGINS = 500
HOURS = 24
CHECK_S = 300.0
KEYS = "k1:" + "A" * 43 + "="  # 32 zero-ish bytes, base64: a fixed test key


def _settings(nats_url: str, sim: Simulator) -> AuthSettings:
    return AuthSettings(
        nats_url=nats_url,
        auth_port=0,
        admin_token="test-admin",
        token_keys=KEYS,
        tradovate_rest_url=sim.rest_url,
        renew_check_s=CHECK_S,
        renew_before_s=1800.0,
        renew_concurrency=8,
        discover_every_s=0,
    )


def _passes_reached(manager: LoginManager, target: int) -> Callable[[], bool]:
    return lambda: manager.metrics.renewal_passes >= target


@pytest.mark.integration
@pytest.mark.timeout(300)
async def test_500_logins_stay_valid_for_24_simulated_hours(
    nats_url: str, fake_sim: Simulator, fake_clock: FakeClock
) -> None:
    sim = fake_sim
    for i in range(LOGINS):
        sim.create_user(f"trader{i:03d}", f"pw-{i}", accounts=1)
    settings = _settings(nats_url, sim)
    service = await build_auth(settings, fake_clock)
    await service.start()
    manager = service.manager
    reader_bus = await Bus.connect(nats_url, "executor-like-reader")
    reader: KvMirror[TokenRecord] = KvMirror(
        await reader_bus.key_value(Buckets.TOKENS),
        TokenRecord,
        decoder=token_decoder(key_ring_from_settings(KEYS, "unused")),
    )
    try:
        await _register_all(manager)
        await reader.start()
        await eventually(lambda: len(reader) == LOGINS, what="the reader sees every token")

        min_left_s = float("inf")
        passes = manager.metrics.renewal_passes
        for _ in range(int(HOURS * 3600 / CHECK_S)):
            await fake_clock.advance(CHECK_S)
            passes += 1
            await eventually(_passes_reached(manager, passes), interval=0.002, what="renewal pass")
            min_left_s = min(
                min_left_s, await _reader_tokens_work(reader, manager, sim, fake_clock)
            )
        # every login's token still works over real HTTP, end to end
        rest = TradovateRest(sim.rest_url)
        try:
            for record in reader.values()[:: LOGINS // 10]:
                assert (await rest.account_list(record.access_token))[0].id > 0
        finally:
            await rest.aclose()
    finally:
        await reader.stop()
        await reader_bus.close()
        await service.stop()

    log = list(sim.venue.state.requests)
    assert [r for r in log if r.status == 401] == []  # zero expired-token rejections
    assert list(sim.venue.limiter.violations) == []
    renewals: dict[int | None, list[float]] = defaultdict(list)
    for r in log:
        if r.endpoint.lower() == "auth/renewaccesstoken":
            assert r.status == 200
            renewals[r.user_id].append(r.time)
    assert len(renewals) == LOGINS
    worst = max(_most_in_any_hour(times) for times in renewals.values())
    assert worst <= 2  # a renewal about every 50 minutes; the venue allows 15 per hour
    per_login = sorted(len(t) for t in renewals.values())
    assert per_login[0] >= HOURS * 60 // 80  # tokens live 80 min: at least 18 renewals
    assert manager.metrics.api_access_fallbacks == 0
    assert manager.metrics.reauth_required == 0
    assert min_left_s > 1800.0 - CHECK_S - 1  # never closer to expiry than one check interval


async def _register_all(manager: LoginManager) -> None:
    gate = asyncio.Semaphore(32)

    async def register(i: int) -> None:
        async with gate:
            await manager.register(LoginRequest(username=f"trader{i:03d}", password=f"pw-{i}"))

    await asyncio.gather(*(register(i) for i in range(LOGINS)))


async def _reader_tokens_work(
    reader: KvMirror[TokenRecord], manager: LoginManager, sim: Simulator, clock: FakeClock
) -> float:
    """After a pass: the reader holds auth's tokens and the venue accepts each; returns the
    shortest time (s) a token has left."""
    # the reader (an executor) has caught up with auth's writes...
    await eventually(
        lambda: all(
            (r := reader.get(lid)) is not None and r.access_token == t.access_token
            for lid, t in manager.cached_tokens().items()
        ),
        interval=0.002,
        what="reader follows renewals",
    )
    # ...and every token it holds is accepted by the venue right now
    now_ns = clock.time_ns()
    min_left_s = float("inf")
    for record in reader.values():
        assert sim.venue.authenticate(record.access_token) is not None, record.login_id
        left = (expiry_ns(record.expiration_time) or 0) - now_ns
        min_left_s = min(min_left_s, left / 1e9)
    return min_left_s


def _most_in_any_hour(times: list[float]) -> int:
    """The most of ``times`` (seconds) that fall in any rolling hour."""
    times = sorted(times)
    worst = 0
    start = 0
    for end in range(len(times)):
        while times[end] - times[start] >= 3600:
            start += 1
        worst = max(worst, end - start + 1)
    return worst
