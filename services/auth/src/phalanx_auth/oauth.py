"""OAuth connect: authorization-code flow with ``state`` and PKCE (S256), ADR-0022.

1. :meth:`OAuthFlow.start` makes a 32-byte ``state`` and ``code_verifier``
   (``secrets.token_urlsafe(32)``), stores ``sha256(state)`` → the sealed verifier, the
   redirect URI and (for a browser) ``sha256`` of a binding cookie in the ``oauth-states``
   bucket, and returns the venue's consent URL (``tradovate_oauth_url?response_type=code&
   client_id&redirect_uri&state[&code_challenge&code_challenge_method=S256]``).
2. The venue redirects the browser to ``redirect_uri?code&state``. :meth:`OAuthFlow.finish`
   consumes the state exactly once (CAS delete), checks its age on the injected clock and the
   browser binding (constant-time), exchanges the code (:func:`exchange_code`) and hands the
   token to :meth:`LoginManager.connect_oauth`, which calls ``/auth/me`` and ``account/list``
   and links every account.

A replayed, forged or expired state, a code the venue refuses, or a consent denied at the venue
ends in :class:`OAuthError` with a message fit for the page; nothing is stored then.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from phalanx_auth.errors import LoginError
from phalanx_auth.logins import LoginManager
from phalanx_auth.settings import AuthSettings
from phalanx_auth.store import AuthStore, OAuthHandoff, OAuthState
from phalanx_common.clock import Clock
from phalanx_common.records import AccountRecord, LoginRecord

__all__ = [
    "ExchangedToken",
    "Finished",
    "Handoff",
    "OAuthError",
    "OAuthFlow",
    "OAuthNotConfigured",
    "Started",
    "exchange_code",
    "pkce_challenge",
]

log = logging.getLogger(__name__)


class OAuthError(Exception):
    """The OAuth flow failed; the message says why, without any secret.

    ``return_to`` is where the consent was started from (the console's logins page), when the
    failure came after the state was found; the failure page links back there.
    """

    return_to: str = ""


class OAuthNotConfigured(OAuthError):
    """``tradovate_oauth_url``/``oauth_client_id``/``oauth_client_secret`` are not set."""


@dataclass(frozen=True)
class Started:
    """A started consent: send the browser to ``authorize_url``."""

    authorize_url: str
    state: str
    browser_nonce: str  # the value of the binding cookie ("" when started over the API)

    def __repr__(self) -> str:
        return "Started(<redacted>)"


@dataclass(frozen=True)
class Handoff:
    """A consent started for a browser that another service sends to ``/oauth/begin``."""

    ticket: str  # single use; the browser's way to get the binding cookie

    def __repr__(self) -> str:
        return "Handoff(<redacted>)"


@dataclass(frozen=True)
class Finished:
    """A completed consent: the login, its accounts, and where the browser goes next."""

    login: LoginRecord
    accounts: list[AccountRecord]
    return_to: str


@dataclass(frozen=True)
class ExchangedToken:
    """What the code exchange returned."""

    access_token: str
    expires_in_s: float | None

    def __repr__(self) -> str:
        return f"ExchangedToken(expires_in_s={self.expires_in_s!r})"


def pkce_challenge(verifier: str) -> str:
    """The S256 PKCE challenge of a verifier (RFC 7636)."""
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def default_token_url(rest_url: str) -> str:
    """``https://live.tradovateapi.com/v1`` → ``https://live.tradovateapi.com/auth/oauthtoken``.

    Tradovate's official OAuth example posts to the path without ``/v1``
    (docs/tradovate-protocol.md §2.4).
    """
    base = rest_url.rstrip("/")
    if base.endswith("/v1"):
        base = base[: -len("/v1")]
    return f"{base}/auth/oauthtoken"


async def exchange_code(
    client: httpx.AsyncClient,
    token_url: str,
    *,
    code: str,
    redirect_uri: str,
    client_id: str,
    client_secret: str,
    code_verifier: str | None,
    timeout_s: float = 10.0,
) -> ExchangedToken:
    """Exchange an authorization code (``POST /auth/oauthtoken``, form-encoded, once).

    Never retried: a code is single-use, so a second attempt can only fail.

    Raises:
        OAuthError: the venue answered ``error`` (e.g. ``invalid_grant`` for a used or expired
            code), could not be reached, or answered something unreadable.
    """
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": client_id,
        "client_secret": client_secret,
    }
    if code_verifier:
        form["code_verifier"] = code_verifier
    try:
        resp = await client.post(
            token_url, data=form, headers={"Accept": "application/json"}, timeout=timeout_s
        )
    except httpx.HTTPError as exc:
        raise OAuthError(
            f"the venue's token endpoint could not be reached ({type(exc).__name__})"
        ) from exc
    try:
        body: Any = resp.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise OAuthError(
            f"the venue's token endpoint answered HTTP {resp.status_code} without JSON"
        )
    if body.get("error"):
        error = str(body.get("error"))[:64]
        description = str(body.get("error_description") or "")[:200]
        raise OAuthError(
            f"the venue refused the authorization code: {error} {description}".rstrip()
        )
    token = body.get("access_token")
    if resp.status_code >= 400 or not isinstance(token, str) or not token:
        raise OAuthError(
            f"the venue's token endpoint answered HTTP {resp.status_code} without a token"
        )
    expires = body.get("expires_in")
    expires_in = float(expires) if isinstance(expires, int | float) and expires > 0 else None
    return ExchangedToken(access_token=token, expires_in_s=expires_in)


class OAuthFlow:
    """Starts consents and finishes them on the callback.

    Args:
        settings: OAuth settings (client, URLs, PKCE, state lifetime).
        store: where states live.
        manager: connects the login once a token is in hand.
        http: the HTTP client for the code exchange.
        redirect_uri: the callback URL registered with the venue.
        clock: injected time (a state's age).
    """

    def __init__(
        self,
        settings: AuthSettings,
        store: AuthStore,
        manager: LoginManager,
        http: httpx.AsyncClient,
        redirect_uri: str,
        *,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.store = store
        self.manager = manager
        self.http = http
        self.redirect_uri = redirect_uri
        self.token_url = settings.oauth_token_url or default_token_url(settings.tradovate_rest_url)

    @property
    def configured(self) -> bool:
        """Whether a consent URL and client credentials are set."""
        s = self.settings
        return bool(s.tradovate_oauth_url and s.oauth_client_id and s.oauth_client_secret)

    async def start(self, *, browser: bool, login_hint: str = "", return_to: str = "") -> Started:
        """Begin a consent; returns the URL to send the browser to.

        ``return_to`` (set by an admin API caller only) is where the callback sends the browser
        after success, with ``?connected=<login id>``, instead of the account page.

        Raises:
            OAuthNotConfigured: OAuth settings are missing.
        """
        if not self.configured:
            raise OAuthNotConfigured(
                "OAuth is not configured: set PHALANX_TRADOVATE_OAUTH_URL, "
                "PHALANX_OAUTH_CLIENT_ID and PHALANX_OAUTH_CLIENT_SECRET"
            )
        state = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(48) if self.settings.oauth_pkce else ""
        nonce = secrets.token_urlsafe(32) if browser else ""
        record = OAuthState(
            created_ns=self.clock.time_ns(),
            redirect_uri=self.redirect_uri,
            sealed_verifier=(
                self.store.ring.seal(verifier.encode(), b"phalanx|pkce") if verifier else ""
            ),
            browser_sha256=_digest(nonce) if nonce else "",
            login_hint=login_hint,
            return_to=return_to,
        )
        await self.store.create_state(_digest(state), record)
        params = {
            "response_type": "code",
            "client_id": self.settings.oauth_client_id,
            "redirect_uri": self.redirect_uri,
            "state": state,
        }
        if verifier:
            params["code_challenge"] = pkce_challenge(verifier)
            params["code_challenge_method"] = "S256"
        base = self.settings.tradovate_oauth_url
        joiner = "&" if urlsplit(base).query else "?"
        return Started(
            authorize_url=f"{base}{joiner}{urlencode(params)}", state=state, browser_nonce=nonce
        )

    async def hand_off(self, *, login_hint: str = "", return_to: str = "") -> Handoff:
        """Begin a browser-bound consent for a browser that another service redirects here.

        The binding nonce and the venue's URL are sealed under a single-use ticket; the browser
        trades the ticket at ``GET /oauth/begin`` (:meth:`begin`) for the binding cookie on the
        callback's host and the redirect to the venue (ADR-0135).

        Raises:
            OAuthNotConfigured: OAuth settings are missing.
        """
        started = await self.start(browser=True, login_hint=login_hint, return_to=return_to)
        ticket = secrets.token_urlsafe(32)
        ring = self.store.ring
        await self.store.create_handoff(
            _digest(ticket),
            OAuthHandoff(
                created_ns=self.clock.time_ns(),
                sealed_nonce=ring.seal(started.browser_nonce.encode(), b"phalanx|handoff-nonce"),
                sealed_authorize_url=ring.seal(
                    started.authorize_url.encode(), b"phalanx|handoff-url"
                ),
            ),
        )
        return Handoff(ticket=ticket)

    async def begin(self, ticket: str) -> Started:
        """Trade a handoff ticket, once, for the venue's URL and the browser binding nonce.

        Raises:
            OAuthError: unknown, used or expired ticket.
        """
        found = await self.store.take_handoff(_digest(ticket)) if 0 < len(ticket) <= 256 else None
        if found is None:
            raise OAuthError("unknown or already used connection link: start the connection again")
        if (self.clock.time_ns() - found.created_ns) / 1e9 > self.settings.oauth_state_ttl_s:
            raise OAuthError("the connection link expired: start the connection again")
        ring = self.store.ring
        return Started(
            authorize_url=ring.open(found.sealed_authorize_url, b"phalanx|handoff-url").decode(),
            state="",
            browser_nonce=ring.open(found.sealed_nonce, b"phalanx|handoff-nonce").decode(),
        )

    async def finish(
        self,
        *,
        state: str,
        code: str | None,
        error: str | None,
        browser_nonce: str | None,
    ) -> tuple[LoginRecord, list[AccountRecord]]:
        """Complete a consent from the callback's query.

        Raises:
            OAuthError: unknown/replayed/expired/forged state, wrong browser, consent denied,
                code refused, or the venue refused the token.
        """
        done = await self.finish_returning(
            state=state, code=code, error=error, browser_nonce=browser_nonce
        )
        return done.login, done.accounts

    async def finish_returning(
        self,
        *,
        state: str,
        code: str | None,
        error: str | None,
        browser_nonce: str | None,
    ) -> Finished:
        """:meth:`finish`, also saying where the consent was started from (``return_to``)."""
        try:
            return await self._finish(
                state=state, code=code, error=error, browser_nonce=browser_nonce
            )
        except OAuthError:
            self.manager.metrics.oauth_failures += 1
            raise

    async def _finish(
        self,
        *,
        state: str,
        code: str | None,
        error: str | None,
        browser_nonce: str | None,
    ) -> Finished:
        if not state or len(state) > 256:
            raise OAuthError("the callback carried no valid state: start the connection again")
        pending = await self.store.take_state(_digest(state))
        if pending is None:
            raise OAuthError(
                "unknown or already used OAuth state (a replayed or forged callback, or it "
                "expired): start the connection again"
            )
        try:
            login, accounts = await self._complete(
                pending, code=code, error=error, nonce=browser_nonce
            )
        except OAuthError as exc:
            exc.return_to = pending.return_to
            raise
        return Finished(login=login, accounts=accounts, return_to=pending.return_to)

    async def _complete(
        self, pending: OAuthState, *, code: str | None, error: str | None, nonce: str | None
    ) -> tuple[LoginRecord, list[AccountRecord]]:
        age_s = (self.clock.time_ns() - pending.created_ns) / 1e9
        if age_s > self.settings.oauth_state_ttl_s:
            raise OAuthError(
                f"the consent took longer than {self.settings.oauth_state_ttl_s:g}s: "
                "start the connection again"
            )
        if pending.browser_sha256 and not hmac.compare_digest(
            pending.browser_sha256, _digest(nonce or "")
        ):
            raise OAuthError(
                "this callback did not come back to the browser that started it: "
                "start the connection again from the account page"
            )
        if error:
            raise OAuthError(f"the venue did not grant access: {error[:64]}")
        if not code:
            raise OAuthError("the callback carried no authorization code")
        verifier = (
            self.store.ring.open(pending.sealed_verifier, b"phalanx|pkce").decode()
            if pending.sealed_verifier
            else None
        )
        exchanged = await exchange_code(
            self.http,
            self.token_url,
            code=code,
            redirect_uri=pending.redirect_uri,
            client_id=self.settings.oauth_client_id,
            client_secret=self.settings.oauth_client_secret,
            code_verifier=verifier,
            timeout_s=self.settings.venue_timeout_s,
        )
        try:
            return await self.manager.connect_oauth(
                exchanged.access_token, exchanged.expires_in_s, login_hint=pending.login_hint
            )
        except LoginError as exc:
            raise OAuthError(str(exc)) from exc
