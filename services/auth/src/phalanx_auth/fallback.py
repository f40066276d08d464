"""When a token cannot be renewed: log in again by API access if credentials were stored
(opt-in) and the failure budget allows, else mark the login ``reauth_required`` and publish
``ReauthRequired`` (ADR-0021)."""

from __future__ import annotations

import logging

from phalanx_auth.api_access import ApiAccess
from phalanx_auth.counters import AuthMetrics
from phalanx_auth.errors import InvalidCredentials, VenueRefused, VenueUnavailable
from phalanx_auth.login_status import can_move, moved
from phalanx_auth.store import AuthStore
from phalanx_auth.tokens import TokenCache, announce_token, expiration_or_default
from phalanx_common import subjects
from phalanx_common.bus import Bus
from phalanx_common.clock import Clock
from phalanx_common.crypto import CryptoError, StoredCredentials
from phalanx_common.events import ReauthRequired
from phalanx_common.ids import new_event_id
from phalanx_common.records import LoginRecord, LoginStatus, TokenRecord

__all__ = ["ApiAccessFallback"]

log = logging.getLogger(__name__)


class ApiAccessFallback:
    """API access as the last resort for a login's token, or a person is asked.

    Args:
        store: the KV projections.
        bus: where ``TokenRenewed`` and ``ReauthRequired`` go.
        clock: injected time.
        metrics: the service's counters.
        tokens: the in-memory token cache.
        api_access: logs in by username/password.
    """

    def __init__(
        self,
        store: AuthStore,
        bus: Bus,
        clock: Clock,
        metrics: AuthMetrics,
        tokens: TokenCache,
        api_access: ApiAccess,
    ) -> None:
        self._store = store
        self._bus = bus
        self._clock = clock
        self._metrics = metrics
        self._tokens = tokens
        self._api_access = api_access

    async def token(
        self, login: LoginRecord, revision: int | None, reason: str
    ) -> TokenRecord | None:
        """API access if credentials are stored and the budget allows, else ``ReauthRequired``.

        The new token is written with compare-and-set on ``revision`` (``None``: no token was
        stored); if another writer got there first, that writer's token is returned.
        """
        login_id = login.login_id
        creds = await self._credentials(login)
        if creds is None:
            await self.require_reauth(login, reason)
            return None
        try:
            token = await self._api_access.log_in(login_id, creds)
        except InvalidCredentials as exc:
            await self.require_reauth(login, f"{reason}; API access refused: {exc}")
            return None
        except VenueRefused as exc:
            await self.require_reauth(login, f"{reason}; API access not possible now: {exc}")
            return None
        except VenueUnavailable as exc:
            log.warning(
                "login %s: %s; API access failed (%s); next check retries", login_id, reason, exc
            )
            return None
        assert token.accessToken is not None
        now = self._clock.time_ns()
        expiration = expiration_or_default(token.expirationTime, now)
        current = self._tokens.get(login_id)
        user_id = int(token.userId or login.user_id)
        record = TokenRecord(
            login_id=login_id,
            user_id=user_id,
            access_token=token.accessToken,
            expiration_time=expiration,
        )
        if revision is None:
            await self._store.put_token(record, source="api")
        elif await self._store.update_token(record, revision, source="api") is None:
            self._metrics.renewal_cas_lost += 1
            log.info("login %s: token changed during API access; keeping the other write", login_id)
            return current
        self._tokens.put(login_id, record)
        self._metrics.api_access_fallbacks += 1
        await announce_token(self._bus, self._clock, login_id, user_id, expiration, now)
        log.warning(
            "login %s: %s; logged in again by API access (new venue session)", login_id, reason
        )
        return record

    async def _credentials(self, login: LoginRecord) -> StoredCredentials | None:
        if not login.has_credentials:
            return None
        try:
            return await self._store.get_credentials(login.login_id)
        except CryptoError as exc:
            log.error("login %s: stored credentials cannot be opened (%s)", login.login_id, exc)
            return None

    async def require_reauth(self, login: LoginRecord, reason: str) -> None:
        """Mark the login ``reauth_required`` with ``reason`` and publish ``ReauthRequired``.

        A login an operator disconnected meanwhile stays disconnected (see
        :mod:`phalanx_auth.login_status`).
        """
        log.error("login %s needs a person: %s", login.login_id, reason)
        current = await self._store.get_login(login.login_id) or login
        if not can_move(current.status, LoginStatus.REAUTH_REQUIRED):
            log.info(
                "login %s is %s; not asking for re-authorization", login.login_id, current.status
            )
            return
        self._metrics.reauth_required += 1
        await self._store.put_login(moved(current, LoginStatus.REAUTH_REQUIRED, reason=reason))
        now = self._clock.time_ns()
        await self._bus.publish(
            subjects.auth_subject(login.login_id),
            ReauthRequired(
                event_id=new_event_id(),
                ts_event=now,
                ts_init=now,
                login_id=login.login_id,
                reason=reason,
            ),
        )
