"""The auth service: NATS, the venue REST client, the admin API and the renewal loop as one."""

from __future__ import annotations

import logging

import httpx
from fastapi import FastAPI

from phalanx_auth.admin import create_app
from phalanx_auth.logins import LoginManager
from phalanx_auth.metrics import AuthCollector
from phalanx_auth.oauth import OAuthFlow
from phalanx_auth.settings import AuthSettings
from phalanx_auth.store import AuthStore
from phalanx_common.bus import Bus
from phalanx_common.clock import Clock, LiveClock
from phalanx_common.crypto import key_ring_from_settings
from phalanx_common.health import Readiness
from phalanx_common.http import HttpServer
from phalanx_common.http_limits import HttpLimits
from phalanx_common.metrics import NatsCollector, new_registry
from phalanx_common.nats_auth import NatsAuth
from phalanx_common.subjects import Buckets
from phalanx_tradovate.rest import TradovateRest

__all__ = ["AuthService", "build_auth"]

log = logging.getLogger(__name__)


class AuthService:
    """A built auth service; :meth:`start` serves HTTP and renews tokens, :meth:`stop` ends both.

    Args:
        settings: auth settings.
        bus: the connected bus (owned: closed by :meth:`stop`).
        rest: the venue REST client (owned: closed by :meth:`stop`).
        manager: registration and renewal.
        app: the FastAPI application.
    """

    def __init__(
        self,
        settings: AuthSettings,
        bus: Bus,
        rest: TradovateRest,
        manager: LoginManager,
        app: FastAPI,
        flow: OAuthFlow,
        http: httpx.AsyncClient,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.rest = rest
        self.manager = manager
        self.app = app
        self.flow = flow
        self._oauth_http = http
        self._http = HttpServer(
            app,
            settings.http_host,
            settings.auth_port,
            name="auth",
            limits=HttpLimits.from_settings(settings),
        )

    @property
    def url(self) -> str:
        """Base URL of the running admin API (its real port once started)."""
        return self._http.url

    async def start(self) -> None:
        """Load the token cache, serve the admin API, then start renewal and discovery."""
        await self.manager.open()
        await self._http.start()
        if not self.settings.oauth_redirect_uri:
            self.flow.redirect_uri = f"{self.url}/oauth/callback"
        self.manager.start()

    async def stop(self) -> None:
        """Stop renewal and HTTP, close the venue client and NATS (idempotent)."""
        await self.manager.close()
        await self._http.stop()
        await self.rest.aclose()
        await self._oauth_http.aclose()
        await self.bus.close()


async def build_auth(
    settings: AuthSettings,
    clock: Clock | None = None,
    *,
    rest: TradovateRest | None = None,
    oauth_http: httpx.AsyncClient | None = None,
) -> AuthService:
    """Connect to NATS, declare the topology and assemble the service (not yet started).

    Args:
        settings: auth settings.
        clock: the clock (the live clock by default).
        rest: a venue client to use instead of one built from ``tradovate_rest_url``.
        oauth_http: the HTTP client for the OAuth code exchange (owned by the service).

    Raises:
        DependencyUnavailable: if NATS cannot be reached.
        CryptoError: if ``PHALANX_TOKEN_KEYS`` is malformed.
    """
    clock = clock or LiveClock()
    bus = await Bus.connect(settings.nats_url, "auth", auth=NatsAuth.from_settings(settings))
    try:
        ring = key_ring_from_settings(settings.token_keys, settings.admin_token)
        await bus.ensure_topology(settings.stream_replicas, settings.stream_byte_limits)
        store = AuthStore(
            await bus.key_value(Buckets.LOGINS),
            await bus.key_value(Buckets.TOKENS),
            await bus.key_value(Buckets.ACCOUNTS),
            ring,
            credentials=await bus.key_value(Buckets.CREDENTIALS),
            oauth_states=await bus.key_value(Buckets.OAUTH_STATES),
        )
    except BaseException:
        await bus.close()
        raise
    venue = rest or TradovateRest(
        settings.tradovate_rest_url, timeout_s=settings.venue_timeout_s, sleep=clock.sleep
    )
    manager = LoginManager(settings, store, bus, venue, clock)
    http = oauth_http or httpx.AsyncClient(timeout=settings.venue_timeout_s)
    flow = OAuthFlow(settings, store, manager, http, settings.oauth_redirect_uri, clock=clock)
    registry = new_registry()  # ADR-0075: the service's own registry
    registry.register(AuthCollector(manager, clock))
    registry.register(NatsCollector(bus.nc))
    readiness = Readiness().add("nats", lambda: bool(bus.nc.is_connected))
    app = create_app(
        settings, manager, flow, store=store, clock=clock, registry=registry, readiness=readiness
    )
    return AuthService(settings, bus, venue, manager, app, flow, http)
