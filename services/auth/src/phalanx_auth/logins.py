"""Broker logins: the one object the service, the admin API and the OAuth flow talk to.

:class:`LoginManager` builds the parts and owns their background loops; each part is a small
module of its own:

- :mod:`~phalanx_auth.connect` — connect by API access or OAuth, disconnect;
- :mod:`~phalanx_auth.api_access` — one ``accesstokenrequest`` within the failure budget;
- :mod:`~phalanx_auth.throttle` — pauses after penalties and lockouts, rolling hourly budgets;
- :mod:`~phalanx_auth.renewal` — proactive renewal within the venue's budget (ADR-0021);
- :mod:`~phalanx_auth.fallback` — API access when a token cannot be renewed, else
  ``ReauthRequired``;
- :mod:`~phalanx_auth.token_source` — token priority: cache → KV → API access;
- :mod:`~phalanx_auth.tokens` — the token cache that follows KV, expiry times;
- :mod:`~phalanx_auth.accounts` — linked accounts and discovery;
- :mod:`~phalanx_auth.login_status` — the status table;
- :mod:`~phalanx_auth.key_rotation` — re-sealing under the primary key.

Tokens and passwords never appear in logs, events or error messages: records and requests
have redacting ``repr``, errors carry the venue's text only, and the tokens bucket is sealed.
"""

from __future__ import annotations

from phalanx_auth.accounts import AccountBook, AccountDiscovery
from phalanx_auth.api_access import ApiAccess
from phalanx_auth.connect import Connector, LoginRequest
from phalanx_auth.counters import AuthMetrics
from phalanx_auth.fallback import ApiAccessFallback
from phalanx_auth.key_rotation import rotate_keys
from phalanx_auth.locks import LoginLocks
from phalanx_auth.renewal import Renewal
from phalanx_auth.settings import AuthSettings
from phalanx_auth.store import AuthStore
from phalanx_auth.throttle import LoginThrottle
from phalanx_auth.token_source import TokenSource
from phalanx_auth.tokens import TokenCache
from phalanx_common.bus import Bus
from phalanx_common.clock import Clock
from phalanx_common.records import AccountRecord, LoginRecord, TokenRecord
from phalanx_common.tasks import OwnedTasks
from phalanx_tradovate.rest import TradovateRest

__all__ = ["LoginManager"]


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
        self._tasks = OwnedTasks("auth-logins")
        self._locks = LoginLocks()
        self._tokens = TokenCache()
        self._accounts = AccountBook(store, bus, clock, self.metrics)
        throttle = LoginThrottle()
        api_access = ApiAccess(settings, rest, clock, throttle)
        fallback = ApiAccessFallback(store, bus, clock, self.metrics, self._tokens, api_access)
        self._source = TokenSource(store, clock, self.metrics, self._tokens, fallback)
        self._renewal = Renewal(
            settings,
            store,
            bus,
            rest,
            clock,
            self.metrics,
            self._tokens,
            throttle,
            fallback,
            self._locks,
        )
        self._discovery = AccountDiscovery(
            store, rest, clock, self.metrics, self._accounts, self._locks, self.token_for
        )
        self._connector = Connector(
            settings,
            store,
            bus,
            rest,
            clock,
            self.metrics,
            self._tokens,
            self._accounts,
            throttle,
            api_access,
            self._locks,
        )

    # -- lifecycle ------------------------------------------------------------------------------

    async def open(self) -> None:
        """Load the token cache and the linked accounts and follow both by KV watch (idempotent)."""
        if self._tokens.following:
            return
        await self._tokens.open(self.store)
        await self._accounts.open()

    def start(self) -> None:
        """Start the renewal loop (checks at once, then every ``renew_check_s``) and discovery."""
        if self._tasks:
            return
        self._tasks.spawn(self._renewal.run(), "auth-renewal")
        if self.settings.discover_every_s > 0:
            self._tasks.spawn(self._discovery.run(self.settings.discover_every_s), "auth-discovery")

    async def stop(self) -> None:
        """Stop the loops (idempotent); the token cache keeps following KV."""
        await self._tasks.stop()

    async def close(self) -> None:
        """Stop the loops and the KV watches (idempotent)."""
        await self.stop()
        await self._tokens.close()
        await self._accounts.close()

    # -- connecting -----------------------------------------------------------------------------

    async def register(self, req: LoginRequest) -> tuple[LoginRecord, list[AccountRecord]]:
        """Connect by API access; see :meth:`phalanx_auth.connect.Connector.register`."""
        return await self._connector.register(req)

    async def connect_oauth(
        self, access_token: str, expires_in_s: float | None, login_hint: str = ""
    ) -> tuple[LoginRecord, list[AccountRecord]]:
        """Connect with an OAuth token; see :meth:`phalanx_auth.connect.Connector.connect_oauth`."""
        return await self._connector.connect_oauth(access_token, expires_in_s, login_hint)

    async def disconnect(self, login_id: str) -> LoginRecord:
        """Forget a login's token and credentials and unlink its accounts (keeps the record).

        Raises:
            UnknownLogin: no such login.
        """
        return await self._connector.disconnect(login_id)

    # -- tokens ---------------------------------------------------------------------------------

    def cached_tokens(self) -> dict[str, TokenRecord]:
        """A snapshot of the in-memory token cache (login id → token)."""
        return self._tokens.snapshot()

    async def token_for(self, login_id: str) -> TokenRecord | None:
        """A usable token: in-memory cache → the token in KV → a fresh API-access login."""
        return await self._source.token_for(login_id)

    async def renew_due(self) -> list[str]:
        """Renew every token with less than ``renew_before_s`` left; return the renewed ids."""
        return await self._renewal.renew_due()

    async def renew_if_due(self, login_id: str) -> bool:
        """Renew one login's token if it is due; ``True`` when a new token was stored."""
        return await self._renewal.renew_if_due(login_id)

    async def rotate_keys(self) -> int:
        """Re-seal every token sealed with a non-primary key (CAS); returns how many."""
        return await rotate_keys(self.store, self._locks)

    # -- accounts -------------------------------------------------------------------------------

    async def accounts_of(self, login_id: str) -> list[AccountRecord]:
        """The linked accounts of a login (from memory once opened, else from KV)."""
        return await self._accounts.accounts_of(login_id)

    async def discover_all(self) -> None:
        """Re-discover the accounts of every active login."""
        await self._discovery.discover_all()

    async def discover(self, login_id: str) -> list[AccountRecord] | None:
        """List one login's accounts at the venue and link/unlink to match; ``None`` on failure."""
        return await self._discovery.discover(login_id)
