"""Renewal: every token with less than ``renew_before_s`` left is renewed with
``renewaccesstoken`` and written with compare-and-set on the revision read (ADR-0021).

At most ``renew_max_per_hour`` renewals per login in any rolling hour (the venue allows 15). A
transient failure (5xx, timeout, unreachable) keeps the token and retries at the next check; a
time penalty or lockout pauses that login's calls. A refused renewal, or an expired token,
goes to :class:`~phalanx_auth.fallback.ApiAccessFallback`.
"""

from __future__ import annotations

import asyncio
import logging

import msgspec

from phalanx_auth.counters import AuthMetrics
from phalanx_auth.fallback import ApiAccessFallback
from phalanx_auth.locks import LoginLocks
from phalanx_auth.settings import AuthSettings
from phalanx_auth.store import AuthStore, StoredToken
from phalanx_auth.throttle import LOCKOUT_S, LoginThrottle
from phalanx_auth.tokens import TokenCache, announce_token, expiration_or_default, expiry_ns
from phalanx_common.bus import Bus
from phalanx_common.clock import Clock
from phalanx_common.crypto import CryptoError
from phalanx_common.records import LoginRecord, LoginStatus
from phalanx_tradovate import wire
from phalanx_tradovate.errors import (
    AuthError,
    LockoutError,
    PenaltyError,
    ProtocolError,
    TradovateError,
)
from phalanx_tradovate.rest import TradovateRest

__all__ = ["Renewal"]

log = logging.getLogger(__name__)


class Renewal:
    """Keeps every active login's token fresh.

    Args:
        settings: renewal thresholds, budget and concurrency.
        store: the KV projections.
        bus: where ``TokenRenewed`` goes.
        rest: the venue's REST client.
        clock: injected time.
        metrics: the service's counters.
        tokens: the in-memory token cache (the renewal schedule once it follows KV).
        throttle: the logins' pauses and renewal windows.
        fallback: API access or ``ReauthRequired`` when renewing is not possible.
        locks: the per-login locks.
    """

    def __init__(
        self,
        settings: AuthSettings,
        store: AuthStore,
        bus: Bus,
        rest: TradovateRest,
        clock: Clock,
        metrics: AuthMetrics,
        tokens: TokenCache,
        throttle: LoginThrottle,
        fallback: ApiAccessFallback,
        locks: LoginLocks,
    ) -> None:
        self._settings = settings
        self._store = store
        self._bus = bus
        self._rest = rest
        self._clock = clock
        self._metrics = metrics
        self._tokens = tokens
        self._throttle = throttle
        self._fallback = fallback
        self._locks = locks

    async def run(self) -> None:
        """Check at once, then every ``renew_check_s``, for ever (a failed pass is logged)."""
        while True:
            try:
                await self.renew_due()
            except Exception:
                log.exception("renewal pass failed")
            self._metrics.renewal_passes += 1
            await self._clock.sleep(self._settings.renew_check_s)

    async def _due_ids(self) -> list[str]:
        if self._tokens.following:
            horizon = self._clock.time_ns() + int(self._settings.renew_before_s * 1e9)
            return self._tokens.expiring_before(horizon)
        return await self._store.token_login_ids()

    async def renew_due(self) -> list[str]:
        """Renew every token with less than ``renew_before_s`` left; return the renewed ids.

        Candidates come from the in-memory schedule (kept current by own writes and the KV
        watch); each is re-read from KV before acting, so a stale cache never causes a call.
        """
        due = await self._due_ids()
        if not due:
            return []
        gate = asyncio.Semaphore(max(1, self._settings.renew_concurrency))

        async def one(login_id: str) -> bool:
            async with gate:
                try:
                    return await self.renew_if_due(login_id)
                except Exception:
                    log.exception("login %s: renewal failed unexpectedly", login_id)
                    return False

        results = await asyncio.gather(*(one(login_id) for login_id in due))
        return [login_id for login_id, ok in zip(due, results, strict=True) if ok]

    async def renew_if_due(self, login_id: str) -> bool:
        """Renew one login's token if it is due; ``True`` when a new token was stored.

        The new token is written with compare-and-set on the revision that was read: if another
        writer got there first, this renewal is dropped (the other token stays).
        """
        async with self._locks(login_id):
            return await self._renew_locked(login_id)

    async def _renew_locked(self, login_id: str) -> bool:
        try:
            found = await self._store.get_stored_token(login_id)
        except CryptoError as exc:
            log.error(
                "login %s: stored token cannot be opened (%s); check PHALANX_TOKEN_KEYS",
                login_id,
                exc,
            )
            return False
        if found is None:
            return False
        self._tokens.put(login_id, found.record)
        login = await self._store.get_login(login_id)
        if login is None or login.status != LoginStatus.ACTIVE:
            return False
        now = self._clock.time_ns()
        expires = expiry_ns(found.record.expiration_time)
        if expires is None:
            log.warning(
                "login %s: unparsable expirationTime %r", login_id, found.record.expiration_time
            )
            expires = now
        left_s = (expires - now) / 1e9
        if left_s >= self._settings.renew_before_s:
            return False
        if left_s <= 0:
            return await self._fall_back(
                login, found.revision, "token expired before it could be renewed"
            )
        if not self._may_call(login_id):
            return False
        try:
            fresh = await self._rest.renew_access_token(found.record.access_token)
        except TradovateError as exc:
            self._metrics.renewal_failures += 1
            return await self._after_failure(login, found.revision, exc)
        if not fresh.accessToken:
            self._metrics.renewal_failures += 1
            return await self._fall_back(login, found.revision, "renewal returned no token")
        return await self._store_renewed(login_id, found, fresh, expires, now)

    def _may_call(self, login_id: str) -> bool:
        """Whether the login's calls are unpaused and its hourly renewal budget has room;
        counts the attempt when they are."""
        mono = self._clock.monotonic()
        paused_s = self._throttle.paused_for(login_id, mono)
        if paused_s > 0:
            log.warning(
                "login %s: venue calls paused for %.0fs more; renewal waits", login_id, paused_s
            )
            return False
        window = self._throttle.renewals(login_id)
        if window.count(mono) >= self._settings.renew_max_per_hour:
            self._metrics.renewals_skipped_budget += 1
            log.warning(
                "login %s: %d renewals in the last hour already; waiting (venue allows 15/h)",
                login_id,
                self._settings.renew_max_per_hour,
            )
            return False
        window.add(mono)
        return True

    async def _after_failure(self, login: LoginRecord, revision: int, exc: TradovateError) -> bool:
        """What a failed ``renewaccesstoken`` leads to, by the class of the venue's error."""
        login_id = login.login_id
        if isinstance(exc, AuthError | ProtocolError):
            return await self._fall_back(login, revision, f"renewal refused: {exc}")
        if isinstance(exc, PenaltyError):
            if exc.captcha:
                return await self._fall_back(login, revision, f"renewal needs a captcha: {exc}")
            self._throttle.pause_until(login_id, self._clock.monotonic() + exc.time_s)
            log.warning("login %s: renewal penalised (%s); next check retries", login_id, exc)
            return False
        if isinstance(exc, LockoutError):
            self._throttle.pause_until(login_id, self._clock.monotonic() + LOCKOUT_S)
            log.error("login %s: venue lockout on renewal (%s); pausing an hour", login_id, exc)
            return False
        log.warning(
            "login %s: renewal failed (%s); the token stays, next check retries", login_id, exc
        )
        return False

    async def _store_renewed(
        self,
        login_id: str,
        found: StoredToken,
        fresh: wire.AccessTokenResponse,
        expires: int,
        now: int,
    ) -> bool:
        assert fresh.accessToken is not None
        expiration = expiration_or_default(fresh.expirationTime, now)
        if (expiry_ns(expiration) or 0) < expires:
            log.warning(
                "login %s: renewal answered an earlier expiry; keeping the stored token", login_id
            )
            return False
        record = msgspec.structs.replace(
            found.record, access_token=fresh.accessToken, expiration_time=expiration
        )
        if await self._store.update_token(record, found.revision, source=found.source) is None:
            self._metrics.renewal_cas_lost += 1
            log.info("login %s: token changed while renewing; keeping the other write", login_id)
            return False
        self._tokens.put(login_id, record)
        self._metrics.renewed(login_id)
        await announce_token(
            self._bus, self._clock, login_id, found.record.user_id, expiration, now
        )
        log.info("login %s: token renewed, expires %s", login_id, expiration)
        return True

    async def _fall_back(self, login: LoginRecord, revision: int, reason: str) -> bool:
        return await self._fallback.token(login, revision, reason) is not None
