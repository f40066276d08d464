"""Broker logins: register one (log in, discover accounts, store, announce) and keep tokens fresh.

Credentials: the password (and an optional per-login ``cid``/``sec``) is used for the one
``accesstokenrequest`` call and then dropped; nothing stores it, in memory or in KV. A login whose
token cannot be renewed any more is marked ``reauth_required`` and announced with
``ReauthRequired``; an operator registers it again. (The later auth issue adds OAuth, refresh and
encrypted storage; :class:`LoginManager` is the seam for them.)
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec

from phalanx_auth.settings import AuthSettings
from phalanx_auth.store import AuthStore
from phalanx_common import subjects
from phalanx_common.bus import Bus
from phalanx_common.clock import Clock
from phalanx_common.events import AccountLinked, Event, ReauthRequired, TokenRenewed
from phalanx_common.ids import new_event_id
from phalanx_common.records import AccountRecord, LoginRecord, TokenRecord
from phalanx_tradovate import wire
from phalanx_tradovate.errors import (
    AuthError,
    LockoutError,
    PenaltyError,
    ProtocolError,
    TradovateError,
)
from phalanx_tradovate.rest import TradovateRest

__all__ = [
    "DEFAULT_TOKEN_LIFETIME_S",
    "InvalidCredentials",
    "LoginConflict",
    "LoginError",
    "LoginManager",
    "LoginRequest",
    "VenueRefused",
    "VenueUnavailable",
    "expiry_ns",
    "login_id_for",
]

log = logging.getLogger(__name__)

DEFAULT_TOKEN_LIFETIME_S = 80 * 60.0
"""Assumed lifetime when the venue omits ``expirationTime`` (Tradovate documents 80 minutes)."""

_UNSAFE = re.compile(r"[^a-z0-9_-]")


def login_id_for(username: str) -> str:
    """The login id of a username: lowercase, every character outside ``[a-z0-9_-]`` → ``_``.

    Raises:
        ValueError: if the username is empty or blank.
    """
    slug = _UNSAFE.sub("_", username.strip().lower())
    if not slug:
        raise ValueError("username is empty")
    return slug


def expiry_ns(expiration_time: str) -> int | None:
    """Parse Tradovate's ISO ``expirationTime`` into ns since the epoch (``None`` if unparsable)."""
    try:
        parsed = datetime.fromisoformat(expiration_time.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return int(parsed.timestamp()) * 1_000_000_000 + parsed.microsecond * 1_000


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class LoginRequest:
    """What an operator gives to register a login (never stored)."""

    username: str
    password: str
    app_id: str | None = None
    cid: str | None = None
    sec: str | None = None
    device_id: str | None = None

    def __repr__(self) -> str:
        return f"LoginRequest(username={self.username!r})"


class LoginError(Exception):
    """Registering a login failed; nothing was stored."""


class InvalidCredentials(LoginError):
    """The venue refused the username/password (or the API key)."""


class VenueRefused(LoginError):
    """The venue is throttling logins (penalty, captcha or lockout): wait before retrying."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class VenueUnavailable(LoginError):
    """The venue could not be reached or answered nonsense."""


class LoginConflict(LoginError):
    """Another username already maps to the same login id."""


class LoginManager:
    """Registers logins and renews their tokens.

    Args:
        settings: auth settings (API key, renewal thresholds).
        store: the KV projections.
        bus: where events are published.
        rest: the venue's REST client.
        clock: injected time.
    """

    def __init__(
        self,
        settings: AuthSettings,
        store: AuthStore,
        bus: Bus,
        rest: TradovateRest,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.store = store
        self.bus = bus
        self.rest = rest
        self.clock = clock
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    # -- registration -------------------------------------------------------------------------

    def _device_id(self, req: LoginRequest) -> str:
        if req.device_id:
            return req.device_id
        if self.settings.device_id:
            return self.settings.device_id
        # Stable per username and deployment, as Tradovate requires (reference §2.1).
        seed = f"phalanx:{self.settings.app_id}:{req.username.lower()}".encode()
        return hashlib.sha256(seed).hexdigest()[:32]

    def _access_request(self, req: LoginRequest) -> wire.AccessTokenRequest:
        cid_text = req.cid or self.settings.cid or None
        cid: int | str | None = int(cid_text) if cid_text and cid_text.isdigit() else cid_text
        return wire.AccessTokenRequest(
            name=req.username,
            password=req.password,
            appId=req.app_id or self.settings.app_id,
            appVersion=self.settings.app_version,
            deviceId=self._device_id(req),
            cid=cid,
            sec=req.sec or self.settings.sec or None,
        )

    async def register(self, req: LoginRequest) -> tuple[LoginRecord, list[AccountRecord]]:
        """Log in, list the accounts, store login/token/accounts and publish the events.

        Nothing is stored unless both venue calls succeed.

        Raises:
            ValueError: the username is empty.
            InvalidCredentials: the venue refused the credentials.
            VenueRefused: the venue is throttling logins.
            VenueUnavailable: the venue cannot be reached or failed.
            LoginConflict: a different username already owns this login id.
        """
        login_id = login_id_for(req.username)
        existing = await self.store.get_login(login_id)
        if existing is not None and existing.username != req.username:
            raise LoginConflict(
                f"login id {login_id!r} already belongs to username {existing.username!r}"
            )
        try:
            token = await self.rest.access_token_request(self._access_request(req))
            if not token.accessToken:
                raise InvalidCredentials(token.errorText or "the venue returned no access token")
            accounts = await self.rest.account_list(token.accessToken)
        except AuthError as exc:
            raise InvalidCredentials(f"the venue refused the login: {exc.text}") from exc
        except PenaltyError as exc:
            wait = 3600.0 if exc.captcha else exc.time_s
            raise VenueRefused(
                "the venue requires a captcha for this login (too many attempts); "
                "wait about an hour before trying again"
                if exc.captcha
                else f"the venue imposed a time penalty of {exc.time_s:g}s",
                wait,
            ) from exc
        except LockoutError as exc:
            raise VenueRefused(
                f"the venue locked out logins (HTTP {exc.status}); wait an hour", 3600.0
            ) from exc
        except TradovateError as exc:
            raise VenueUnavailable(f"venue error: {exc}") from exc

        now = self.clock.time_ns()
        user_id = int(token.userId or 0)
        expiration = token.expirationTime or _iso(now + int(DEFAULT_TOKEN_LIFETIME_S * 1e9))
        login = LoginRecord(login_id=login_id, username=req.username, user_id=user_id)
        records = [
            AccountRecord(
                account_id=a.id,
                account_spec=a.name,
                login_id=login_id,
                user_id=user_id,
                active=a.active is not False and not a.archived,
            )
            for a in accounts
        ]
        async with self._lock:
            await self.store.put_token(
                TokenRecord(
                    login_id=login_id,
                    user_id=user_id,
                    access_token=token.accessToken,
                    expiration_time=expiration,
                )
            )
            await self.store.put_login(login)
            for record in records:
                await self.store.put_account(record)
        subject = subjects.auth_subject(login_id)
        for record in records:
            await self._publish(
                subject,
                AccountLinked(
                    event_id=new_event_id(),
                    ts_event=now,
                    ts_init=self.clock.time_ns(),
                    account_id=record.account_id,
                    account_spec=record.account_spec,
                    login_id=login_id,
                    user_id=user_id,
                ),
                msg_id=f"linked-{login_id}-{record.account_id}-{expiration}",
            )
        await self._publish_renewed(login_id, user_id, expiration, now)
        log.info("login %s registered: user %d, %d accounts", login_id, user_id, len(records))
        return login, records

    async def _publish(self, subject: str, event: Event, msg_id: str | None = None) -> None:
        await self.bus.publish(subject, event, msg_id=msg_id)

    async def _publish_renewed(
        self, login_id: str, user_id: int, expiration: str, ts_event: int
    ) -> None:
        await self._publish(
            subjects.auth_subject(login_id),
            TokenRenewed(
                event_id=new_event_id(),
                ts_event=ts_event,
                ts_init=self.clock.time_ns(),
                login_id=login_id,
                user_id=user_id,
                expiration_time=expiration,
            ),
            msg_id=f"token-{login_id}-{expiration}",
        )

    # -- renewal ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the renewal loop (checks at once, then every ``renew_check_s``)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="auth-renewal")

    async def stop(self) -> None:
        """Stop the renewal loop (idempotent)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.renew_due()
            except Exception:
                log.exception("renewal pass failed")
            await self.clock.sleep(self.settings.renew_check_s)

    async def renew_due(self) -> list[str]:
        """Renew every token with less than ``renew_before_s`` left; return the renewed ids."""
        renewed: list[str] = []
        for login_id in await self.store.token_login_ids():
            if await self.renew_if_due(login_id):
                renewed.append(login_id)
        return renewed

    async def renew_if_due(self, login_id: str) -> bool:
        """Renew one login's token if it is due; ``True`` when a new token was stored.

        The new token is written with compare-and-set on the revision that was read: if another
        writer got there first, this renewal is dropped (its token stays valid until expiry).
        """
        found = await self.store.get_token(login_id)
        if found is None:
            return False
        token, revision = found
        login = await self.store.get_login(login_id)
        if login is not None and login.status == "reauth_required":
            return False
        now = self.clock.time_ns()
        expires = expiry_ns(token.expiration_time)
        if expires is None:
            log.warning("login %s: unparsable expirationTime %r", login_id, token.expiration_time)
            expires = now
        left_s = (expires - now) / 1e9
        if left_s >= self.settings.renew_before_s:
            return False
        if left_s <= 0:
            await self._require_reauth(login_id, login, "token expired before it could be renewed")
            return False
        try:
            fresh = await self.rest.renew_access_token(token.access_token)
        except (AuthError, ProtocolError) as exc:
            await self._require_reauth(login_id, login, f"renewal refused: {exc}")
            return False
        except PenaltyError as exc:
            if exc.captcha:
                await self._require_reauth(login_id, login, f"renewal needs a captcha: {exc}")
            else:
                log.warning("login %s: renewal penalised (%s); next check retries", login_id, exc)
            return False
        except TradovateError as exc:
            log.warning("login %s: renewal failed (%s); next check retries", login_id, exc)
            return False
        if not fresh.accessToken:
            await self._require_reauth(login_id, login, "renewal returned no token")
            return False
        expiration = fresh.expirationTime or _iso(now + int(DEFAULT_TOKEN_LIFETIME_S * 1e9))
        record = msgspec.structs.replace(
            token, access_token=fresh.accessToken, expiration_time=expiration
        )
        if await self.store.update_token(record, revision) is None:
            log.info("login %s: token changed while renewing; keeping the other write", login_id)
            return False
        await self._publish_renewed(login_id, token.user_id, expiration, now)
        log.info("login %s: token renewed, expires %s", login_id, expiration)
        return True

    async def _require_reauth(self, login_id: str, login: LoginRecord | None, reason: str) -> None:
        log.error("login %s needs a person: %s", login_id, reason)
        if login is not None:
            await self.store.put_login(msgspec.structs.replace(login, status="reauth_required"))
        now = self.clock.time_ns()
        await self._publish(
            subjects.auth_subject(login_id),
            ReauthRequired(
                event_id=new_event_id(), ts_event=now, ts_init=now, login_id=login_id, reason=reason
            ),
        )
