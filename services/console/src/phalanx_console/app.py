"""The console's web application: every page, the static files and the error pages."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from phalanx_common.clock import Clock, LiveClock
from phalanx_common.health import Readiness, add_readiness_route
from phalanx_common.metrics import add_metrics_route
from phalanx_console.backends import AdminApis, BackendError
from phalanx_console.guards import Forbidden, SignInNeeded, signed_in
from phalanx_console.login_pages import login_router
from phalanx_console.metrics import ConsoleMetrics
from phalanx_console.positions_pages import positions_router
from phalanx_console.render import STATIC_DIR, Renderer
from phalanx_console.sessions import SessionStore
from phalanx_console.settings import ConsoleSettings
from phalanx_console.signal_pages import signal_router
from phalanx_console.strategy_pages import strategy_router
from phalanx_console.throttle import SignInThrottle
from phalanx_console.trading_pages import trading_router
from phalanx_console.users import Users

__all__ = ["create_app"]


def create_app(
    settings: ConsoleSettings,
    apis: AdminApis,
    users: Users,
    sessions: SessionStore,
    closing: asyncio.Event,
    metrics: ConsoleMetrics | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    """Assemble the console over the admin APIs it calls.

    Args:
        settings: Console settings.
        apis: The other services' admin APIs.
        users: Who may sign in.
        sessions: Where sessions live.
        closing: Set when the console stops (ends the live streams).
        metrics: Served at ``/metrics`` when given.
        clock: Source of time of the sign-in throttle.
    """
    clock = clock or LiveClock()
    app = FastAPI(title="Phalanx console", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.sessions = sessions
    renderer = Renderer(settings.trace_url)

    @app.exception_handler(SignInNeeded)
    async def sign_in(request: Request, exc: SignInNeeded) -> Response:
        if request.method == "GET" and "hx-request" not in request.headers:
            return RedirectResponse("/login", 303)
        return Response("sign in first", 401, headers={"HX-Redirect": "/login"})

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        return renderer.page("error.html", status_code=403, session=None, message=exc.reason)

    @app.exception_handler(BackendError)
    async def backend(request: Request, exc: BackendError) -> Response:
        status = 404 if exc.status == 404 else 502
        message = f"{exc.service} answered {exc.status}: {exc.detail}"
        return renderer.page("error.html", status_code=status, session=None, message=message)

    @app.get("/")
    async def home(request: Request) -> Response:
        signed_in(request)
        return RedirectResponse("/strategies", 303)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    # ready once someone can sign in; the services behind are their own readiness
    add_readiness_route(app, Readiness().add("users", lambda: len(users) > 0))
    if metrics is not None:
        add_metrics_route(app, metrics.registry)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(
        login_router(
            apis,
            renderer,
            users,
            sessions,
            settings.cookie_secure,
            settings.session_ttl_s,
            SignInThrottle(clock),
            metrics.sign_in if metrics is not None else lambda ok: None,
            public_url=settings.console_public_url,
        )
    )
    app.include_router(strategy_router(apis, renderer))
    app.include_router(signal_router(apis, renderer, settings.live_poll_s, closing))
    app.include_router(trading_router(apis, renderer))
    app.include_router(positions_router(apis, renderer, settings.console_reconcile_timeout_s))
    return app
