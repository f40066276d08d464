"""The auth admin API (bearer ``PHALANX_ADMIN_TOKEN``); OpenAPI at ``/openapi.json``, ``/docs``.

- ``POST /admin/logins`` ``{"username","password", "app_id"?, "cid"?, "sec"?, "device_id"?,
  "remember_credentials"?}`` → 201 ``LoginOut`` (never the token or password); 400 wrong
  credentials; 409 the login id belongs to another username; 429 the venue throttles logins
  (or the failure budget is spent); 502 venue unreachable.
- ``GET /admin/logins`` → ``[LoginOut]``; ``GET /admin/logins/{id}`` → ``LoginOut`` (404).
- ``DELETE /admin/logins/{id}`` → ``LoginOut`` (disconnected: token and credentials forgotten,
  accounts unlinked).
- ``POST /admin/logins/{id}/discover`` → ``[AccountOut]`` (502 when the venue fails).
- ``POST /admin/oauth/start`` ``{"login_id"?}`` → ``{"authorize_url"}`` (409 not configured).
  With ``"browser": true`` (the console, ADR-0135) also ``"browser_url"``: a single-use
  ``/oauth/begin?ticket=`` link on the callback's host that binds the consent to the browser
  which opens it; ``"return_to"`` (an ``http(s)`` URL) is where the callback sends that
  browser afterwards, with ``?connected=<login id>``.
- ``GET /admin/accounts`` → ``[AccountOut]``; ``GET /admin/metrics`` → counters.
- ``POST /admin/keys/rotate`` → ``{"rotated": n}`` (re-seal under the primary key).
- ``GET /healthz`` → ``{"status": "ok"}`` (no auth): liveness.
- ``GET /readyz`` → 200 when NATS is connected, else 503; ``GET /metrics`` → Prometheus.

The account page and the OAuth callback are in :mod:`phalanx_auth.page`.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Depends, FastAPI, HTTPException, status
from pydantic import BaseModel, Field

from phalanx_auth.connect import LoginRequest
from phalanx_auth.errors import (
    InvalidCredentials,
    LoginConflict,
    LoginError,
    UnknownLogin,
    VenueRefused,
    VenueUnavailable,
)
from phalanx_auth.logins import LoginManager
from phalanx_auth.oauth import OAuthError, OAuthFlow
from phalanx_auth.page import add_page_routes
from phalanx_auth.settings import AuthSettings
from phalanx_auth.store import AuthStore
from phalanx_auth.views import AccountOut, LoginOut, LoginViews, account_out
from phalanx_common.clock import Clock
from phalanx_common.health import Readiness, add_readiness_route
from phalanx_common.http import admin_guard
from phalanx_common.metrics import CollectorRegistry, add_metrics_route
from phalanx_common.records import LoginRecord, LoginStatus

__all__ = ["AccountOut", "LoginIn", "LoginOut", "OAuthStartIn", "OAuthStartOut", "create_app"]


class LoginIn(BaseModel):
    """Body of ``POST /admin/logins``."""

    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=256)
    app_id: str | None = None
    cid: str | None = None
    sec: str | None = None
    device_id: str | None = None
    remember_credentials: bool = Field(
        default=False,
        description="keep the credentials sealed in KV so renewal can fall back to API access",
    )


class OAuthStartIn(BaseModel):
    """Body of ``POST /admin/oauth/start``."""

    login_id: str | None = None
    browser: bool = Field(
        default=False,
        description="bind the consent to the browser that opens browser_url (ADR-0135)",
    )
    return_to: str | None = Field(
        default=None,
        max_length=512,
        pattern=r"^https?://[^\s]+$",
        description="where the callback sends the browser after success (?connected=<login>)",
    )


class OAuthStartOut(BaseModel):
    """Where to send the person who gives consent."""

    authorize_url: str
    browser_url: str | None = None


def create_app(
    settings: AuthSettings,
    manager: LoginManager,
    flow: OAuthFlow,
    *,
    store: AuthStore,
    clock: Clock,
    registry: CollectorRegistry | None = None,
    readiness: Readiness | None = None,
) -> FastAPI:
    """Build the FastAPI app of the auth service.

    Args:
        settings: auth settings (``admin_token`` guards ``/admin`` and the page).
        manager: connects logins and reads the store.
        flow: the OAuth flow.
        store: the KV projections (logins and accounts are read here).
        clock: injected time (token expiry in the views).
        registry: served at ``GET /metrics`` when given.
        readiness: served at ``GET /readyz`` when given.
    """
    app = FastAPI(
        title="Phalanx auth",
        version="0.2.0",
        description="Broker logins (OAuth or API access), tokens and accounts.",
    )
    admin = APIRouter(prefix="/admin", dependencies=[Depends(admin_guard(settings.admin_token))])
    views = LoginViews(store, clock, manager.accounts_of)
    _login_routes(admin, manager, store, views)
    _oauth_and_account_routes(admin, manager, flow, store)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    if registry is not None:
        add_metrics_route(app, registry)
    if readiness is not None:
        add_readiness_route(app, readiness)
    app.include_router(admin)
    add_page_routes(app, settings, manager, flow, views)
    return app


def _register_refusal(exc: LoginError | ValueError) -> HTTPException:
    """The HTTP answer to a registration the venue or the store refused."""
    if isinstance(exc, LoginConflict):
        return HTTPException(status.HTTP_409_CONFLICT, str(exc))
    if isinstance(exc, VenueRefused):
        return HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            str(exc),
            headers={"Retry-After": str(max(1, int(exc.retry_after_s)))},
        )
    if isinstance(exc, VenueUnavailable):
        return HTTPException(status.HTTP_502_BAD_GATEWAY, str(exc))
    return HTTPException(status.HTTP_400_BAD_REQUEST, str(exc))


async def _one_login(store: AuthStore, login_id: str) -> LoginRecord:
    login = await store.get_login(login_id)
    if login is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no login {login_id!r}")
    return login


def _login_routes(
    admin: APIRouter, manager: LoginManager, store: AuthStore, views: LoginViews
) -> None:
    """``/admin/logins``: register, list, read, disconnect, discover."""

    @admin.post("/logins", status_code=status.HTTP_201_CREATED)
    async def register_login(body: LoginIn) -> LoginOut:
        """Connect a login by API access (username/password): the fallback to OAuth."""
        try:
            login, _ = await manager.register(
                LoginRequest(
                    username=body.username,
                    password=body.password,
                    app_id=body.app_id,
                    cid=body.cid,
                    sec=body.sec,
                    device_id=body.device_id,
                    remember=body.remember_credentials,
                )
            )
        except (
            ValueError,
            InvalidCredentials,
            LoginConflict,
            VenueRefused,
            VenueUnavailable,
        ) as exc:
            raise _register_refusal(exc) from exc
        return await views.of(login)

    @admin.get("/logins")
    async def list_logins() -> list[LoginOut]:
        """Every login with status, token expiry and accounts."""
        return await views.all()

    @admin.get("/logins/{login_id}")
    async def get_login(login_id: str) -> LoginOut:
        """One login."""
        return await views.of(await _one_login(store, login_id))

    @admin.delete("/logins/{login_id}")
    async def disconnect_login(login_id: str) -> LoginOut:
        """Disconnect: forget the token and credentials, unlink the accounts."""
        try:
            login = await manager.disconnect(login_id)
        except UnknownLogin as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
        return await views.of(login)


def _oauth_and_account_routes(
    admin: APIRouter, manager: LoginManager, flow: OAuthFlow, store: AuthStore
) -> None:
    """Discovery, OAuth consent, linked accounts, counters and key rotation under ``/admin``."""

    @admin.post("/logins/{login_id}/discover")
    async def discover(login_id: str) -> list[AccountOut]:
        """List the login's accounts at the venue now and link/unlink to match."""
        login = await _one_login(store, login_id)
        if login.status != LoginStatus.ACTIVE:
            raise HTTPException(status.HTTP_409_CONFLICT, f"login {login_id!r} is {login.status}")
        found = await manager.discover(login_id)
        if found is None:
            raise HTTPException(
                status.HTTP_502_BAD_GATEWAY, "account discovery failed at the venue"
            )
        return [account_out(a) for a in found]

    @admin.post("/oauth/start")
    async def oauth_start(body: OAuthStartIn) -> OAuthStartOut:
        """Start an OAuth consent; send the person to ``authorize_url`` (valid once)."""
        try:
            if body.browser:
                handoff = await flow.hand_off(
                    login_hint=body.login_id or "", return_to=body.return_to or ""
                )
                callback = urlsplit(flow.redirect_uri)
                return OAuthStartOut(
                    authorize_url="",
                    browser_url=f"{callback.scheme}://{callback.netloc}/oauth/begin?"
                    + urlencode({"ticket": handoff.ticket}),
                )
            started = await flow.start(
                browser=False, login_hint=body.login_id or "", return_to=body.return_to or ""
            )
        except OAuthError as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
        return OAuthStartOut(authorize_url=started.authorize_url)

    @admin.get("/accounts")
    async def list_accounts() -> list[AccountOut]:
        """Every linked account."""
        return [account_out(a) for a in await store.list_accounts()]

    @admin.get("/metrics")
    async def metrics() -> dict[str, int]:
        """Counters: renewals, fallbacks to API access, token sources, discoveries..."""
        return manager.metrics.snapshot()

    @admin.post("/keys/rotate")
    async def rotate_keys() -> dict[str, int]:
        """Re-seal tokens and credentials under the primary key of ``PHALANX_TOKEN_KEYS``."""
        return {"rotated": await manager.rotate_keys()}
