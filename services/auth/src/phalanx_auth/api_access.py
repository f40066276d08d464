"""API access: one ``accesstokenrequest`` with username/password, within the login failure
budget and any pause the venue imposed. The fallback when OAuth is not used or a token
cannot be renewed; stored credentials are opt-in (ADR-0021)."""

from __future__ import annotations

import hashlib

from phalanx_auth.errors import InvalidCredentials, VenueRefused, VenueUnavailable
from phalanx_auth.settings import AuthSettings
from phalanx_auth.throttle import LOCKOUT_S, LoginThrottle
from phalanx_common.clock import Clock
from phalanx_common.crypto import StoredCredentials
from phalanx_tradovate import wire
from phalanx_tradovate.errors import AuthError, LockoutError, PenaltyError, TradovateError
from phalanx_tradovate.rest import TradovateRest

__all__ = ["ApiAccess"]


class ApiAccess:
    """Logs a login in by API access.

    Args:
        settings: the API key, app id and version, the failure budget.
        rest: the venue's REST client.
        clock: injected time.
        throttle: the logins' pauses and failure windows (shared with renewal).
    """

    def __init__(
        self, settings: AuthSettings, rest: TradovateRest, clock: Clock, throttle: LoginThrottle
    ) -> None:
        self._settings = settings
        self._rest = rest
        self._clock = clock
        self._throttle = throttle

    def device_id(self, username: str, device_id: str | None) -> str:
        """The request's device id: given, else the setting, else stable per username."""
        if device_id:
            return device_id
        if self._settings.device_id:
            return self._settings.device_id
        # Stable per username and deployment, as Tradovate requires
        # (docs/tradovate-protocol.md §2.1).
        seed = f"phalanx:{self._settings.app_id}:{username.lower()}".encode()
        return hashlib.sha256(seed).hexdigest()[:32]

    def request_for(self, creds: StoredCredentials) -> wire.AccessTokenRequest:
        """The ``accesstokenrequest`` body: the login's own values over the service's."""
        settings = self._settings
        cid_text = creds.cid or settings.cid or None
        cid: int | str | None = int(cid_text) if cid_text and cid_text.isdigit() else cid_text
        return wire.AccessTokenRequest(
            name=creds.username,
            password=creds.password,
            appId=creds.app_id or settings.app_id,
            appVersion=settings.app_version,
            deviceId=self.device_id(creds.username, creds.device_id),
            cid=cid,
            sec=creds.sec or settings.sec or None,
        )

    async def log_in(self, login_id: str, creds: StoredCredentials) -> wire.AccessTokenResponse:
        """One ``accesstokenrequest`` within the login failure budget; the answer has a token.

        The REST client honours a plain time penalty once (waits ``p-time`` on the injected
        clock, resends with the ticket); a captcha is never retried.

        Raises:
            InvalidCredentials, VenueRefused, VenueUnavailable: as their names say.
        """
        clock, throttle = self._clock, self._throttle
        now = clock.monotonic()
        failures = throttle.failures(login_id)
        budget = self._settings.login_failures_per_hour
        if failures.count(now) >= budget:
            raise VenueRefused(
                f"{budget} failed logins in the last hour for "
                f"{login_id!r}: not trying again (a further failure locks the login for an hour)",
                3600.0,
            )
        paused_s = throttle.paused_for(login_id, now)
        if paused_s > 0:
            raise VenueRefused(f"venue calls for {login_id!r} are paused", paused_s)
        try:
            token = await self._rest.access_token_request(self.request_for(creds))
            if not token.accessToken:
                raise AuthError(token.errorText or "the venue returned no access token")
            return token
        except AuthError as exc:
            failures.add(clock.monotonic())
            raise InvalidCredentials(f"the venue refused the login: {exc.text}") from exc
        except PenaltyError as exc:
            failures.add(clock.monotonic())
            if exc.captcha:
                throttle.pause_until(login_id, clock.monotonic() + LOCKOUT_S)
                raise VenueRefused(
                    "the venue requires a captcha for this login (too many attempts); "
                    "wait about an hour before trying again",
                    LOCKOUT_S,
                ) from exc
            raise VenueRefused(
                f"the venue imposed a time penalty of {exc.time_s:g}s twice", exc.time_s
            ) from exc
        except LockoutError as exc:
            throttle.pause_until(login_id, clock.monotonic() + LOCKOUT_S)
            raise VenueRefused(
                f"the venue locked out logins (HTTP {exc.status}); wait an hour", LOCKOUT_S
            ) from exc
        except TradovateError as exc:
            failures.add(clock.monotonic())
            raise VenueUnavailable(f"venue error: {exc}") from exc
