"""Connecting and disconnecting a login: by API access (username/password) or with a token
from an OAuth consent (:mod:`phalanx_auth.oauth`). Either way the venue is asked who the user
is and which accounts it has, and only then is anything stored: the sealed token, the login,
the linked accounts, and ``TokenRenewed`` / ``AccountLinked`` on the bus."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from phalanx_auth.accounts import AccountBook
from phalanx_auth.api_access import ApiAccess
from phalanx_auth.counters import AuthMetrics
from phalanx_auth.errors import InvalidCredentials, LoginConflict, UnknownLogin, VenueUnavailable
from phalanx_auth.locks import LoginLocks
from phalanx_auth.login_status import InvalidLoginTransition, can_move, moved
from phalanx_auth.settings import AuthSettings
from phalanx_auth.store import AuthStore
from phalanx_auth.throttle import LoginThrottle
from phalanx_auth.tokens import (
    DEFAULT_TOKEN_LIFETIME_S,
    TokenCache,
    announce_token,
    expiration_or_default,
    iso_from_ns,
)
from phalanx_common.bus import Bus
from phalanx_common.clock import Clock
from phalanx_common.crypto import StoredCredentials
from phalanx_common.records import AccountRecord, LoginRecord, LoginStatus, TokenRecord
from phalanx_tradovate import wire
from phalanx_tradovate.errors import AuthError, TradovateError
from phalanx_tradovate.rest import TradovateRest

__all__ = ["Connector", "LoginRequest", "login_id_for"]

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class LoginRequest:
    """What an operator gives to register a login (stored only with ``remember``, sealed)."""

    username: str
    password: str
    app_id: str | None = None
    cid: str | None = None
    sec: str | None = None
    device_id: str | None = None
    remember: bool = False

    def __repr__(self) -> str:
        return f"LoginRequest(username={self.username!r})"

    def credentials(self) -> StoredCredentials:
        """The part kept (sealed) for the renewal fallback."""
        return StoredCredentials(
            username=self.username,
            password=self.password,
            app_id=self.app_id,
            cid=self.cid,
            sec=self.sec,
            device_id=self.device_id,
        )


@dataclass(frozen=True)
class _Connection:
    """A login the venue just vouched for: who it is, its token and its accounts."""

    login_id: str
    username: str
    user_id: int
    access_token: str
    expiration: str
    accounts: list[wire.Account]
    method: str
    has_credentials: bool
    previous: LoginStatus | None


class Connector:
    """Connects logins and disconnects them.

    Args:
        settings: whether credentials may be stored.
        store: the KV projections.
        bus: where ``TokenRenewed`` goes.
        rest: the venue's REST client.
        clock: injected time.
        metrics: the service's counters.
        tokens: the in-memory token cache.
        accounts: the linked accounts.
        throttle: the logins' pauses (a connect by a person clears its login's).
        api_access: logs in by username/password.
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
        accounts: AccountBook,
        throttle: LoginThrottle,
        api_access: ApiAccess,
        locks: LoginLocks,
    ) -> None:
        self._settings = settings
        self._store = store
        self._bus = bus
        self._rest = rest
        self._clock = clock
        self._metrics = metrics
        self._tokens = tokens
        self._accounts = accounts
        self._throttle = throttle
        self._api_access = api_access
        self._locks = locks

    async def _existing(self, login_id: str, username: str) -> LoginRecord | None:
        existing = await self._store.get_login(login_id)
        if existing is not None and existing.username != username:
            raise LoginConflict(
                f"login id {login_id!r} already belongs to username {existing.username!r}"
            )
        return existing

    async def register(self, req: LoginRequest) -> tuple[LoginRecord, list[AccountRecord]]:
        """Connect by API access: log in, list the accounts, store, link and announce.

        Nothing is stored unless both venue calls succeed. With ``req.remember`` (and the
        ``store_credentials`` setting) the credentials are kept sealed for the renewal fallback.

        Raises:
            ValueError: the username is empty.
            InvalidCredentials: the venue refused the credentials.
            VenueRefused: the venue is throttling logins, or the failure budget is spent.
            VenueUnavailable: the venue cannot be reached or failed.
            LoginConflict: a different username already owns this login id.
        """
        login_id = login_id_for(req.username)
        existing = await self._existing(login_id, req.username)
        creds = req.credentials()
        token = await self._api_access.log_in(login_id, creds)
        assert token.accessToken is not None
        try:
            accounts = await self._rest.account_list(token.accessToken)
        except AuthError as exc:
            raise InvalidCredentials(f"the venue refused the account list: {exc.text}") from exc
        except TradovateError as exc:
            raise VenueUnavailable(f"venue error: {exc}") from exc
        now = self._clock.time_ns()
        remember = req.remember and self._settings.store_credentials
        if remember:
            await self._store.put_credentials(login_id, creds)
        elif existing is not None and existing.has_credentials:
            await self._store.delete_credentials(login_id)
        return await self._connected(
            _Connection(
                login_id=login_id,
                username=req.username,
                user_id=int(token.userId or 0),
                access_token=token.accessToken,
                expiration=expiration_or_default(token.expirationTime, now),
                accounts=accounts,
                method="api",
                has_credentials=remember,
                previous=existing.status if existing else None,
            )
        )

    async def connect_oauth(
        self, access_token: str, expires_in_s: float | None, login_hint: str = ""
    ) -> tuple[LoginRecord, list[AccountRecord]]:
        """Connect with a token from an OAuth consent: ``/auth/me``, ``account/list``, store.

        Args:
            access_token: the exchanged token.
            expires_in_s: its lifetime as the exchange reported it (``None``: 80 min assumed).
            login_hint: the login id the operator meant to reconnect (checked, not trusted).

        Raises:
            InvalidCredentials: the venue refused the token.
            VenueUnavailable: the venue cannot be reached or failed.
            LoginConflict: the consent was given for a different user than ``login_hint``,
                or another username owns the login id.
        """
        try:
            me = await self._rest.me(access_token)
            accounts = await self._rest.account_list(access_token)
        except AuthError as exc:
            raise InvalidCredentials(f"the venue refused the OAuth token: {exc.text}") from exc
        except TradovateError as exc:
            raise VenueUnavailable(f"venue error: {exc}") from exc
        if not me.name or me.userId is None:
            raise VenueUnavailable("the venue's /auth/me named no user")
        login_id = login_id_for(me.name)
        if login_hint and login_hint != login_id:
            raise LoginConflict(
                f"the consent was given as {me.name!r}, not for login {login_hint!r}; "
                "sign in at the venue as the login you meant to reconnect"
            )
        existing = await self._existing(login_id, me.name)
        now = self._clock.time_ns()
        lifetime_s = expires_in_s if expires_in_s and expires_in_s > 0 else DEFAULT_TOKEN_LIFETIME_S
        result = await self._connected(
            _Connection(
                login_id=login_id,
                username=me.name,
                user_id=int(me.userId),
                access_token=access_token,
                expiration=iso_from_ns(now + int(lifetime_s * 1e9)),
                accounts=accounts,
                method="oauth",
                has_credentials=existing.has_credentials if existing else False,
                previous=existing.status if existing else None,
            )
        )
        self._metrics.oauth_connects += 1
        return result

    async def _connected(self, c: _Connection) -> tuple[LoginRecord, list[AccountRecord]]:
        if not can_move(c.previous, LoginStatus.ACTIVE):
            raise InvalidLoginTransition(f"login {c.login_id!r}: {c.previous} -> active")
        now = self._clock.time_ns()
        record = TokenRecord(
            login_id=c.login_id,
            user_id=c.user_id,
            access_token=c.access_token,
            expiration_time=c.expiration,
        )
        login = LoginRecord(
            login_id=c.login_id,
            username=c.username,
            user_id=c.user_id,
            status=LoginStatus.ACTIVE,
            method=c.method,
            connected_ns=now,
            has_credentials=c.has_credentials,
        )
        async with self._locks(c.login_id):
            await self._store.put_token(record, source=c.method)
            self._tokens.put(c.login_id, record)
            self._throttle.clear(c.login_id)
            await self._store.put_login(login)
            linked = await self._accounts.sync(c.login_id, c.user_id, c.accounts, now)
        await announce_token(self._bus, self._clock, c.login_id, c.user_id, c.expiration, now)
        self._metrics.logins_connected += 1
        log.info(
            "login %s connected (%s): user %d, %d accounts",
            c.login_id,
            c.method,
            c.user_id,
            len(linked),
        )
        return login, linked

    async def disconnect(self, login_id: str) -> LoginRecord:
        """Forget a login's token and credentials and unlink its accounts (keeps the record).

        Raises:
            UnknownLogin: no such login.
        """
        async with self._locks(login_id):
            login = await self._store.get_login(login_id)
            if login is None:
                raise UnknownLogin(f"no login {login_id!r}")
            now = self._clock.time_ns()
            await self._store.delete_token(login_id)
            self._tokens.pop(login_id)
            await self._store.delete_credentials(login_id)
            for account in await self._accounts.accounts_of(login_id):
                await self._accounts.unlink(account, "login disconnected", now)
            login = moved(
                login,
                LoginStatus.DISCONNECTED,
                reason="disconnected by an operator",
                has_credentials=False,
            )
            await self._store.put_login(login)
        log.info("login %s disconnected", login_id)
        return login
