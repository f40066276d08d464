"""Broker logins: connect (API access or OAuth), keep tokens fresh, discover accounts.

- **Connect.** :meth:`LoginManager.register` logs in with username/password (API access, the
  fallback); :meth:`LoginManager.connect_oauth` takes a token from an OAuth consent
  (:mod:`phalanx_auth.oauth`). Both call ``/auth/me`` or use the login answer, list the accounts,
  store the sealed token (compare-and-set), link every account and announce it.
- **Renewal** (:meth:`LoginManager.renew_due`, run every ``renew_check_s`` by the loop): a token
  with less than ``renew_before_s`` left is renewed with ``renewaccesstoken`` and written with
  compare-and-set on the revision read. At most ``renew_max_per_hour`` renewals per login in any
  rolling hour (the venue allows 15). A transient failure (5xx, timeout, unreachable) keeps the
  token and retries at the next check; a time penalty or lockout pauses that login's calls. A
  refused renewal, or an expired token, falls back to API access **only** if credentials were
  stored (opt-in) and the login failure budget allows; otherwise the login is marked
  ``reauth_required`` and ``ReauthRequired`` is published.
- **Token priority** (:meth:`LoginManager.token_for`): in-memory cache → the token in KV → a
  fresh API-access login (rare; counted in :class:`AuthMetrics`).
- **Accounts**: discovered on connect and every ``discover_every_s``; new ones are linked
  (``AccountLinked``), ones the venue no longer lists are removed (``AccountUnlinked``).

Tokens and passwords never appear in logs, events or error messages: records and requests
have redacting ``repr``, errors carry the venue's text only, and the tokens bucket is sealed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import msgspec

from phalanx_auth.settings import AuthSettings
from phalanx_auth.store import AuthStore
from phalanx_common import subjects
from phalanx_common.bus import Bus
from phalanx_common.clock import Clock
from phalanx_common.crypto import CryptoError, SealedToken, StoredCredentials, token_decoder
from phalanx_common.events import (
    AccountLinked,
    AccountUnlinked,
    Event,
    ReauthRequired,
    TokenRenewed,
)
from phalanx_common.ids import new_event_id
from phalanx_common.kvmirror import KvMirror
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
    "AuthMetrics",
    "InvalidCredentials",
    "LoginConflict",
    "LoginError",
    "LoginManager",
    "LoginRequest",
    "UnknownLogin",
    "VenueRefused",
    "VenueUnavailable",
    "expiry_ns",
    "login_id_for",
]

log = logging.getLogger(__name__)

DEFAULT_TOKEN_LIFETIME_S = 80 * 60.0
"""Assumed lifetime when the venue omits ``expirationTime`` (Tradovate documents 80 minutes)."""

LOCKOUT_S = 3600.0
"""How long a login's venue calls stay paused after HTTP 423/429 (retrying extends a lockout)."""

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


def iso_from_ns(ns: int) -> str:
    """Format ns since the epoch as Tradovate does (``2026-01-01T00:00:00Z``)."""
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat().replace("+00:00", "Z")


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


class LoginError(Exception):
    """Connecting a login failed; nothing was stored."""


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


class UnknownLogin(LoginError):
    """No such login."""


@dataclass
class AuthMetrics:
    """Counters of the auth service (``GET /admin/metrics``).

    ``token_from_api_access`` and ``api_access_fallbacks`` should stay near zero: each is a new
    venue session made because the stored token could not serve.
    """

    logins_connected: int = 0
    oauth_connects: int = 0
    oauth_failures: int = 0
    renewals: int = 0
    renewal_failures: int = 0
    renewal_cas_lost: int = 0
    renewals_skipped_budget: int = 0
    api_access_fallbacks: int = 0
    reauth_required: int = 0
    token_from_cache: int = 0
    token_from_kv: int = 0
    token_from_api_access: int = 0
    discoveries: int = 0
    accounts_linked: int = 0
    accounts_unlinked: int = 0
    renewal_passes: int = 0
    by_login_renewals: dict[str, int] = field(default_factory=dict)

    def snapshot(self) -> dict[str, int]:
        """Every counter except the per-login map."""
        out = asdict(self)
        out.pop("by_login_renewals")
        return out


class _Window:
    """Timestamps in a rolling window (monotonic seconds)."""

    def __init__(self, span_s: float) -> None:
        self.span_s = span_s
        self._times: deque[float] = deque()

    def count(self, now: float) -> int:
        while self._times and self._times[0] <= now - self.span_s:
            self._times.popleft()
        return len(self._times)

    def add(self, now: float) -> None:
        self._times.append(now)


class LoginManager:
    """Connects logins, renews their tokens and discovers their accounts.

    Args:
        settings: auth settings (API key, renewal thresholds, budgets).
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
        self.metrics = AuthMetrics()
        self._tasks: list[asyncio.Task[None]] = []
        self._mirror: KvMirror[TokenRecord] | None = None
        self._account_mirror: KvMirror[AccountRecord] | None = None
        self._accounts: dict[int, AccountRecord] = {}  # own writes + KV watch
        self._tokens: dict[str, TokenRecord] = {}  # in-memory cache: own writes + KV watch
        self._renew_windows: dict[str, _Window] = {}
        self._login_failures: dict[str, _Window] = {}
        self._paused_until: dict[str, float] = {}  # login → monotonic s (penalty, lockout)
        self._login_locks: dict[str, asyncio.Lock] = {}
        self.renewal_pass_done = asyncio.Event()

    # -- lifecycle ------------------------------------------------------------------------------

    async def open(self) -> None:
        """Load the token cache and keep it current by a KV watch (idempotent)."""
        if self._mirror is not None:
            return
        mirror: KvMirror[TokenRecord] = KvMirror(
            self.store.tokens_kv, TokenRecord, "auth-tokens", decoder=token_decoder(self.store.ring)
        )
        mirror.on_change(self._on_token_change)
        await mirror.start()
        self._tokens.update(mirror.items())
        self._mirror = mirror
        accounts: KvMirror[AccountRecord] = KvMirror(
            self.store.accounts_kv, AccountRecord, "auth-accounts"
        )
        accounts.on_change(self._on_account_change)
        await accounts.start()
        self._accounts.update({a.account_id: a for a in accounts.values()})
        self._account_mirror = accounts

    def _on_account_change(self, key: str, record: AccountRecord | None) -> None:
        if record is None:
            with contextlib.suppress(ValueError):
                self._accounts.pop(int(key), None)
        else:
            self._accounts[record.account_id] = record

    async def accounts_of(self, login_id: str) -> list[AccountRecord]:
        """The linked accounts of a login (from memory once opened, else from KV)."""
        if self._account_mirror is not None:
            values = list(self._accounts.values())
        else:
            values = await self.store.list_accounts()
        return sorted((a for a in values if a.login_id == login_id), key=lambda a: a.account_id)

    def _on_token_change(self, login_id: str, record: TokenRecord | None) -> None:
        if record is None:
            self._tokens.pop(login_id, None)
        else:
            self._tokens[login_id] = record

    def start(self) -> None:
        """Start the renewal loop (checks at once, then every ``renew_check_s``) and discovery."""
        if self._tasks:
            return
        self._tasks.append(asyncio.create_task(self._renewal_loop(), name="auth-renewal"))
        if self.settings.discover_every_s > 0:
            self._tasks.append(asyncio.create_task(self._discovery_loop(), name="auth-discovery"))

    async def stop(self) -> None:
        """Stop the loops (idempotent); the token cache keeps following KV."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def close(self) -> None:
        """Stop the loops and the KV watch (idempotent)."""
        await self.stop()
        if self._mirror is not None:
            await self._mirror.stop()
            self._mirror = None
        if self._account_mirror is not None:
            await self._account_mirror.stop()
            self._account_mirror = None

    def _lock(self, login_id: str) -> asyncio.Lock:
        lock = self._login_locks.get(login_id)
        if lock is None:
            lock = self._login_locks[login_id] = asyncio.Lock()
        return lock

    # -- API access ----------------------------------------------------------------------------

    def _device_id(self, username: str, device_id: str | None) -> str:
        if device_id:
            return device_id
        if self.settings.device_id:
            return self.settings.device_id
        # Stable per username and deployment, as Tradovate requires (reference §2.1).
        seed = f"phalanx:{self.settings.app_id}:{username.lower()}".encode()
        return hashlib.sha256(seed).hexdigest()[:32]

    def _access_request(self, creds: StoredCredentials) -> wire.AccessTokenRequest:
        cid_text = creds.cid or self.settings.cid or None
        cid: int | str | None = int(cid_text) if cid_text and cid_text.isdigit() else cid_text
        return wire.AccessTokenRequest(
            name=creds.username,
            password=creds.password,
            appId=creds.app_id or self.settings.app_id,
            appVersion=self.settings.app_version,
            deviceId=self._device_id(creds.username, creds.device_id),
            cid=cid,
            sec=creds.sec or self.settings.sec or None,
        )

    def _failure_window(self, login_id: str) -> _Window:
        window = self._login_failures.get(login_id)
        if window is None:
            window = self._login_failures[login_id] = _Window(3600.0)
        return window

    async def _api_access(
        self, login_id: str, creds: StoredCredentials
    ) -> wire.AccessTokenResponse:
        """One ``accesstokenrequest`` within the login failure budget.

        The REST client honours a plain time penalty once (waits ``p-time`` on the injected
        clock, resends with the ticket); a captcha is never retried.

        Raises:
            InvalidCredentials, VenueRefused, VenueUnavailable: as their names say.
        """
        now = self.clock.monotonic()
        failures = self._failure_window(login_id)
        if failures.count(now) >= self.settings.login_failures_per_hour:
            raise VenueRefused(
                f"{self.settings.login_failures_per_hour} failed logins in the last hour for "
                f"{login_id!r}: not trying again (a further failure locks the login for an hour)",
                3600.0,
            )
        paused = self._paused_until.get(login_id, 0.0)
        if paused > now:
            raise VenueRefused(f"venue calls for {login_id!r} are paused", paused - now)
        try:
            token = await self.rest.access_token_request(self._access_request(creds))
            if not token.accessToken:
                raise AuthError(token.errorText or "the venue returned no access token")
            return token
        except AuthError as exc:
            failures.add(self.clock.monotonic())
            raise InvalidCredentials(f"the venue refused the login: {exc.text}") from exc
        except PenaltyError as exc:
            failures.add(self.clock.monotonic())
            if exc.captcha:
                self._paused_until[login_id] = self.clock.monotonic() + LOCKOUT_S
                raise VenueRefused(
                    "the venue requires a captcha for this login (too many attempts); "
                    "wait about an hour before trying again",
                    LOCKOUT_S,
                ) from exc
            raise VenueRefused(
                f"the venue imposed a time penalty of {exc.time_s:g}s twice", exc.time_s
            ) from exc
        except LockoutError as exc:
            self._paused_until[login_id] = self.clock.monotonic() + LOCKOUT_S
            raise VenueRefused(
                f"the venue locked out logins (HTTP {exc.status}); wait an hour", LOCKOUT_S
            ) from exc
        except TradovateError as exc:
            failures.add(self.clock.monotonic())
            raise VenueUnavailable(f"venue error: {exc}") from exc

    # -- connecting -----------------------------------------------------------------------------

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
        existing = await self.store.get_login(login_id)
        if existing is not None and existing.username != req.username:
            raise LoginConflict(
                f"login id {login_id!r} already belongs to username {existing.username!r}"
            )
        creds = req.credentials()
        token = await self._api_access(login_id, creds)
        assert token.accessToken is not None
        try:
            accounts = await self.rest.account_list(token.accessToken)
        except AuthError as exc:
            raise InvalidCredentials(f"the venue refused the account list: {exc.text}") from exc
        except TradovateError as exc:
            raise VenueUnavailable(f"venue error: {exc}") from exc
        now = self.clock.time_ns()
        expiration = token.expirationTime or iso_from_ns(now + int(DEFAULT_TOKEN_LIFETIME_S * 1e9))
        remember = req.remember and self.settings.store_credentials
        if remember:
            await self.store.put_credentials(login_id, creds)
        elif existing is not None and existing.has_credentials:
            await self.store.delete_credentials(login_id)
        return await self._connected(
            login_id=login_id,
            username=req.username,
            user_id=int(token.userId or 0),
            access_token=token.accessToken,
            expiration=expiration,
            accounts=accounts,
            method="api",
            has_credentials=remember,
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
            me = await self.rest.me(access_token)
            accounts = await self.rest.account_list(access_token)
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
        existing = await self.store.get_login(login_id)
        if existing is not None and existing.username != me.name:
            raise LoginConflict(
                f"login id {login_id!r} already belongs to username {existing.username!r}"
            )
        now = self.clock.time_ns()
        lifetime_s = expires_in_s if expires_in_s and expires_in_s > 0 else DEFAULT_TOKEN_LIFETIME_S
        result = await self._connected(
            login_id=login_id,
            username=me.name,
            user_id=int(me.userId),
            access_token=access_token,
            expiration=iso_from_ns(now + int(lifetime_s * 1e9)),
            accounts=accounts,
            method="oauth",
            has_credentials=existing.has_credentials if existing else False,
        )
        self.metrics.oauth_connects += 1
        return result

    async def _connected(
        self,
        *,
        login_id: str,
        username: str,
        user_id: int,
        access_token: str,
        expiration: str,
        accounts: list[wire.Account],
        method: str,
        has_credentials: bool,
    ) -> tuple[LoginRecord, list[AccountRecord]]:
        now = self.clock.time_ns()
        record = TokenRecord(
            login_id=login_id,
            user_id=user_id,
            access_token=access_token,
            expiration_time=expiration,
        )
        login = LoginRecord(
            login_id=login_id,
            username=username,
            user_id=user_id,
            status="active",
            method=method,
            connected_ns=now,
            has_credentials=has_credentials,
        )
        async with self._lock(login_id):
            await self.store.put_token(record, source=method)
            self._tokens[login_id] = record
            self._paused_until.pop(login_id, None)
            await self.store.put_login(login)
            linked = await self._sync_accounts(login_id, user_id, accounts, now)
        await self._publish_renewed(login_id, user_id, expiration, now)
        self.metrics.logins_connected += 1
        log.info(
            "login %s connected (%s): user %d, %d accounts", login_id, method, user_id, len(linked)
        )
        return login, linked

    async def _sync_accounts(
        self, login_id: str, user_id: int, accounts: list[wire.Account], now: int
    ) -> list[AccountRecord]:
        """Make the account records of a login match the venue's list; publish the changes."""
        subject = subjects.auth_subject(login_id)
        current = {a.account_id: a for a in await self.accounts_of(login_id)}
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
        for record in records:
            before = current.pop(record.account_id, None)
            if before == record:
                continue
            await self.store.put_account(record)
            self._accounts[record.account_id] = record
            if before is None or before.account_spec != record.account_spec:
                self.metrics.accounts_linked += 1
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
                    msg_id=f"linked-{login_id}-{record.account_id}-{now}",
                )
        for gone in current.values():
            await self._unlink(gone, "the venue no longer lists this account", now)
        return records

    async def _unlink(self, account: AccountRecord, reason: str, now: int) -> None:
        await self.store.delete_account(account.account_id)
        self._accounts.pop(account.account_id, None)
        self.metrics.accounts_unlinked += 1
        await self._publish(
            subjects.auth_subject(account.login_id),
            AccountUnlinked(
                event_id=new_event_id(),
                ts_event=now,
                ts_init=self.clock.time_ns(),
                account_id=account.account_id,
                login_id=account.login_id,
                reason=reason,
            ),
            msg_id=f"unlinked-{account.login_id}-{account.account_id}-{now}",
        )
        log.info("account %d unlinked from %s: %s", account.account_id, account.login_id, reason)

    async def disconnect(self, login_id: str) -> LoginRecord:
        """Forget a login's token and credentials and unlink its accounts (keeps the record).

        Raises:
            UnknownLogin: no such login.
        """
        async with self._lock(login_id):
            login = await self.store.get_login(login_id)
            if login is None:
                raise UnknownLogin(f"no login {login_id!r}")
            now = self.clock.time_ns()
            await self.store.delete_token(login_id)
            self._tokens.pop(login_id, None)
            await self.store.delete_credentials(login_id)
            for account in await self.accounts_of(login_id):
                await self._unlink(account, "login disconnected", now)
            login = msgspec.structs.replace(
                login,
                status="disconnected",
                reason="disconnected by an operator",
                has_credentials=False,
            )
            await self.store.put_login(login)
        log.info("login %s disconnected", login_id)
        return login

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

    # -- tokens for consumers -------------------------------------------------------------------

    def cached_token(self, login_id: str) -> TokenRecord | None:
        """The in-memory token of a login (no I/O), or ``None``."""
        return self._tokens.get(login_id)

    def cached_tokens(self) -> dict[str, TokenRecord]:
        """A snapshot of the in-memory token cache (login id → token)."""
        return dict(self._tokens)

    async def token_for(self, login_id: str) -> TokenRecord | None:
        """A usable token: in-memory cache → the token in KV → a fresh API-access login.

        The last step needs stored credentials, creates a new venue session and is counted in
        ``metrics.token_from_api_access``; it writes the token with compare-and-set.
        """
        now = self.clock.time_ns()
        cached = self._tokens.get(login_id)
        if cached is not None and (expiry_ns(cached.expiration_time) or 0) > now:
            self.metrics.token_from_cache += 1
            return cached
        found = await self.store.get_stored_token(login_id)
        if found is not None and (expiry_ns(found.record.expiration_time) or 0) > now:
            self.metrics.token_from_kv += 1
            self._tokens[login_id] = found.record
            return found.record
        login = await self.store.get_login(login_id)
        if login is None or login.status != "active":
            return None
        record = await self._fallback(login, found.revision if found else None, "no valid token")
        if record is not None:
            self.metrics.token_from_api_access += 1
        return record

    # -- renewal --------------------------------------------------------------------------------

    async def _renewal_loop(self) -> None:
        while True:
            try:
                await self.renew_due()
            except Exception:
                log.exception("renewal pass failed")
            self.metrics.renewal_passes += 1
            self.renewal_pass_done.set()
            await self.clock.sleep(self.settings.renew_check_s)

    async def _due_ids(self) -> list[str]:
        now = self.clock.time_ns()
        horizon = now + int(self.settings.renew_before_s * 1e9)
        if self._mirror is not None:
            return sorted(
                login_id
                for login_id, record in self._tokens.items()
                if (expiry_ns(record.expiration_time) or 0) < horizon
            )
        return await self.store.token_login_ids()

    async def renew_due(self) -> list[str]:
        """Renew every token with less than ``renew_before_s`` left; return the renewed ids.

        Candidates come from the in-memory schedule (kept current by own writes and the KV
        watch); each is re-read from KV before acting, so a stale cache never causes a call.
        """
        due = await self._due_ids()
        if not due:
            return []
        gate = asyncio.Semaphore(max(1, self.settings.renew_concurrency))

        async def one(login_id: str) -> bool:
            async with gate:
                try:
                    return await self.renew_if_due(login_id)
                except Exception:
                    log.exception("login %s: renewal failed unexpectedly", login_id)
                    return False

        results = await asyncio.gather(*(one(login_id) for login_id in due))
        return [login_id for login_id, ok in zip(due, results, strict=True) if ok]

    def _renew_window(self, login_id: str) -> _Window:
        window = self._renew_windows.get(login_id)
        if window is None:
            window = self._renew_windows[login_id] = _Window(3600.0)
        return window

    async def renew_if_due(self, login_id: str) -> bool:
        """Renew one login's token if it is due; ``True`` when a new token was stored.

        The new token is written with compare-and-set on the revision that was read: if another
        writer got there first, this renewal is dropped (the other token stays).
        """
        async with self._lock(login_id):
            return await self._renew_locked(login_id)

    async def _renew_locked(self, login_id: str) -> bool:
        try:
            found = await self.store.get_stored_token(login_id)
        except CryptoError as exc:
            log.error(
                "login %s: stored token cannot be opened (%s); check PHALANX_TOKEN_KEYS",
                login_id,
                exc,
            )
            return False
        if found is None:
            return False
        token, revision = found.record, found.revision
        self._tokens[login_id] = token
        login = await self.store.get_login(login_id)
        if login is None or login.status != "active":
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
            return await self._fallback_or_reauth(
                login, revision, "token expired before it could be renewed"
            )
        mono = self.clock.monotonic()
        paused = self._paused_until.get(login_id, 0.0)
        if paused > mono:
            log.warning(
                "login %s: venue calls paused for %.0fs more; renewal waits",
                login_id,
                paused - mono,
            )
            return False
        window = self._renew_window(login_id)
        if window.count(mono) >= self.settings.renew_max_per_hour:
            self.metrics.renewals_skipped_budget += 1
            log.warning(
                "login %s: %d renewals in the last hour already; waiting (venue allows 15/h)",
                login_id,
                self.settings.renew_max_per_hour,
            )
            return False
        window.add(mono)
        try:
            fresh = await self.rest.renew_access_token(token.access_token)
        except (AuthError, ProtocolError) as exc:
            self.metrics.renewal_failures += 1
            return await self._fallback_or_reauth(login, revision, f"renewal refused: {exc}")
        except PenaltyError as exc:
            self.metrics.renewal_failures += 1
            if exc.captcha:
                return await self._fallback_or_reauth(
                    login, revision, f"renewal needs a captcha: {exc}"
                )
            self._paused_until[login_id] = self.clock.monotonic() + exc.time_s
            log.warning("login %s: renewal penalised (%s); next check retries", login_id, exc)
            return False
        except LockoutError as exc:
            self.metrics.renewal_failures += 1
            self._paused_until[login_id] = self.clock.monotonic() + LOCKOUT_S
            log.error("login %s: venue lockout on renewal (%s); pausing an hour", login_id, exc)
            return False
        except TradovateError as exc:
            self.metrics.renewal_failures += 1
            log.warning(
                "login %s: renewal failed (%s); the token stays, next check retries", login_id, exc
            )
            return False
        if not fresh.accessToken:
            self.metrics.renewal_failures += 1
            return await self._fallback_or_reauth(login, revision, "renewal returned no token")
        expiration = fresh.expirationTime or iso_from_ns(now + int(DEFAULT_TOKEN_LIFETIME_S * 1e9))
        if (expiry_ns(expiration) or 0) < expires:
            log.warning(
                "login %s: renewal answered an earlier expiry; keeping the stored token", login_id
            )
            return False
        record = msgspec.structs.replace(
            token, access_token=fresh.accessToken, expiration_time=expiration
        )
        if await self.store.update_token(record, revision, source=found.source) is None:
            self.metrics.renewal_cas_lost += 1
            log.info("login %s: token changed while renewing; keeping the other write", login_id)
            return False
        self._tokens[login_id] = record
        self.metrics.renewals += 1
        self.metrics.by_login_renewals[login_id] = (
            self.metrics.by_login_renewals.get(login_id, 0) + 1
        )
        await self._publish_renewed(login_id, token.user_id, expiration, now)
        log.info("login %s: token renewed, expires %s", login_id, expiration)
        return True

    async def _fallback_or_reauth(self, login: LoginRecord, revision: int, reason: str) -> bool:
        record = await self._fallback(login, revision, reason)
        return record is not None

    async def _fallback(
        self, login: LoginRecord, revision: int | None, reason: str
    ) -> TokenRecord | None:
        """API access if credentials are stored and the budget allows, else ``ReauthRequired``."""
        login_id = login.login_id
        creds: StoredCredentials | None = None
        if login.has_credentials:
            try:
                creds = await self.store.get_credentials(login_id)
            except CryptoError as exc:
                log.error("login %s: stored credentials cannot be opened (%s)", login_id, exc)
        if creds is None:
            await self._require_reauth(login, reason)
            return None
        try:
            token = await self._api_access(login_id, creds)
        except InvalidCredentials as exc:
            await self._require_reauth(login, f"{reason}; API access refused: {exc}")
            return None
        except VenueRefused as exc:
            await self._require_reauth(login, f"{reason}; API access not possible now: {exc}")
            return None
        except VenueUnavailable as exc:
            log.warning(
                "login %s: %s; API access failed (%s); next check retries", login_id, reason, exc
            )
            return None
        assert token.accessToken is not None
        now = self.clock.time_ns()
        expiration = token.expirationTime or iso_from_ns(now + int(DEFAULT_TOKEN_LIFETIME_S * 1e9))
        current = self._tokens.get(login_id)
        user_id = int(token.userId or login.user_id)
        record = TokenRecord(
            login_id=login_id,
            user_id=user_id,
            access_token=token.accessToken,
            expiration_time=expiration,
        )
        if revision is None:
            await self.store.put_token(record, source="api")
        elif await self.store.update_token(record, revision, source="api") is None:
            self.metrics.renewal_cas_lost += 1
            log.info("login %s: token changed during API access; keeping the other write", login_id)
            return current
        self._tokens[login_id] = record
        self.metrics.api_access_fallbacks += 1
        await self._publish_renewed(login_id, user_id, expiration, now)
        log.warning(
            "login %s: %s; logged in again by API access (new venue session)", login_id, reason
        )
        return record

    async def _require_reauth(self, login: LoginRecord, reason: str) -> None:
        log.error("login %s needs a person: %s", login.login_id, reason)
        self.metrics.reauth_required += 1
        current = await self.store.get_login(login.login_id) or login
        await self.store.put_login(
            msgspec.structs.replace(current, status="reauth_required", reason=reason)
        )
        now = self.clock.time_ns()
        await self._publish(
            subjects.auth_subject(login.login_id),
            ReauthRequired(
                event_id=new_event_id(),
                ts_event=now,
                ts_init=now,
                login_id=login.login_id,
                reason=reason,
            ),
        )

    async def rotate_keys(self) -> int:
        """Re-seal every token sealed with a non-primary key (CAS); returns how many."""
        rotated = 0
        for login_id in await self.store.token_login_ids():
            meta: SealedToken | None = await self.store.get_token_meta(login_id)
            if meta is None or not self.store.ring.needs_rotation(meta.sealed):
                continue
            async with self._lock(login_id):
                found = await self.store.get_stored_token(login_id)
                if found is None:
                    continue
                if await self.store.update_token(found.record, found.revision, source=found.source):
                    rotated += 1
        for login in await self.store.list_logins():
            if login.has_credentials:
                creds = await self.store.get_credentials(login.login_id)
                if creds is not None:
                    await self.store.put_credentials(login.login_id, creds)
        return rotated

    # -- discovery ------------------------------------------------------------------------------

    async def _discovery_loop(self) -> None:
        while True:
            await self.clock.sleep(self.settings.discover_every_s)
            try:
                await self.discover_all()
            except Exception:
                log.exception("discovery pass failed")

    async def discover_all(self) -> None:
        """Re-discover the accounts of every active login."""
        for login in await self.store.list_logins():
            if login.status == "active":
                await self.discover(login.login_id)

    async def discover(self, login_id: str) -> list[AccountRecord] | None:
        """List one login's accounts at the venue and link/unlink to match; ``None`` on failure."""
        login = await self.store.get_login(login_id)
        if login is None or login.status != "active":
            return None
        token = await self.token_for(login_id)
        if token is None:
            return None
        try:
            accounts = await self.rest.account_list(token.access_token)
        except TradovateError as exc:
            log.warning("login %s: account discovery failed (%s)", login_id, exc)
            return None
        self.metrics.discoveries += 1
        async with self._lock(login_id):
            return await self._sync_accounts(
                login_id, login.user_id, accounts, self.clock.time_ns()
            )
