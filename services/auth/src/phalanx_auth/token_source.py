"""A usable token for a login, in order of cost: the in-memory cache, the token in KV, then a
fresh API-access login (rare; each one counted)."""

from __future__ import annotations

from phalanx_auth.counters import AuthMetrics
from phalanx_auth.fallback import ApiAccessFallback
from phalanx_auth.store import AuthStore
from phalanx_auth.tokens import TokenCache, expiry_ns
from phalanx_common.clock import Clock
from phalanx_common.records import LoginStatus, TokenRecord

__all__ = ["TokenSource"]


class TokenSource:
    """Finds a login's unexpired token.

    Args:
        store: the KV projections.
        clock: injected time.
        metrics: counts where each token came from.
        tokens: the in-memory token cache.
        fallback: API access when no stored token is valid.
    """

    def __init__(
        self,
        store: AuthStore,
        clock: Clock,
        metrics: AuthMetrics,
        tokens: TokenCache,
        fallback: ApiAccessFallback,
    ) -> None:
        self._store = store
        self._clock = clock
        self._metrics = metrics
        self._tokens = tokens
        self._fallback = fallback

    async def token_for(self, login_id: str) -> TokenRecord | None:
        """A usable token: in-memory cache → the token in KV → a fresh API-access login.

        The last step needs stored credentials, creates a new venue session and is counted in
        ``metrics.token_from_api_access``; it writes the token with compare-and-set.
        """
        now = self._clock.time_ns()
        cached = self._tokens.get(login_id)
        if cached is not None and (expiry_ns(cached.expiration_time) or 0) > now:
            self._metrics.token_from_cache += 1
            return cached
        found = await self._store.get_stored_token(login_id)
        if found is not None and (expiry_ns(found.record.expiration_time) or 0) > now:
            self._metrics.token_from_kv += 1
            self._tokens.put(login_id, found.record)
            return found.record
        login = await self._store.get_login(login_id)
        if login is None or login.status != LoginStatus.ACTIVE:
            return None
        revision = found.revision if found else None
        record = await self._fallback.token(login, revision, "no valid token")
        if record is not None:
            self._metrics.token_from_api_access += 1
        return record
