"""The FastAPI application of the ingest service: webhook, admin API, health and OpenAPI."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse, Response

from phalanx_common.clock import Clock
from phalanx_common.health import Readiness, add_readiness_route
from phalanx_common.metrics import add_metrics_route
from phalanx_ingest.admin import admin_router
from phalanx_ingest.metrics import IngestMetrics
from phalanx_ingest.publisher import SignalPublisher
from phalanx_ingest.repeats import RepeatGuard
from phalanx_ingest.responses import MessageCode
from phalanx_ingest.settings import IngestSettings
from phalanx_ingest.signallog import SignalLog
from phalanx_ingest.strategies import StrategyDirectory
from phalanx_ingest.subscriptions import SubscriptionStore
from phalanx_ingest.webhook import webhook_router

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def create_app(
    settings: IngestSettings,
    strategies: StrategyDirectory,
    subscriptions: SubscriptionStore,
    publisher: SignalPublisher,
    clock: Clock,
    signal_log: SignalLog | None = None,
    repeats: RepeatGuard | None = None,
    metrics: IngestMetrics | None = None,
    readiness: Readiness | None = None,
) -> FastAPI:
    """Assemble the ingest API from its collaborators.

    The OpenAPI document is served at ``/openapi.json`` (and ``/docs``). Unexpected errors
    answer ``500 {"success": false, "messageCode": "internal-error", ...}`` without internals.

    Args:
        settings: Ingest settings (admin token, public URL, body limit).
        strategies: The strategy directory.
        subscriptions: Subscription and account storage.
        publisher: Makes accepted signals durable.
        clock: The clock.
        signal_log: The signal log, if it is kept.
        repeats: Tells resends of an id-less body from repeats (memory only when ``None``).
        metrics: The service's metrics (``GET /metrics``; a private registry when ``None``).
        readiness: What ``GET /readyz`` checks. By default NATS connected, which is required
            only without an outbox: with one, webhooks are still made durable (202) while NATS
            is away, so the service stays ready (ADR-0077).
    """
    metrics = metrics or IngestMetrics()
    metrics.watch_outbox(lambda: publisher.outbox_pending)
    readiness = readiness or Readiness().add(
        "nats", lambda: publisher.connected, required=publisher.outbox is None
    )
    app = FastAPI(
        title="Phalanx ingest",
        version="0.1.0",
        description="TradersPost-compatible webhook for trading signals; strategies and "
        "subscriptions admin API.",
    )
    app.include_router(
        webhook_router(strategies, publisher, clock, settings, repeats=repeats, metrics=metrics)
    )
    app.include_router(
        admin_router(
            strategies,
            subscriptions,
            settings.admin_token,
            settings.public_base_url,
            clock,
            settings.secret_grace_s,
            signal_log,
            settings,
        )
    )

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, object]:
        """Liveness, whether NATS is connected right now, and the outbox backlog."""
        return {
            "status": "ok",
            "nats_connected": publisher.connected,
            "outbox": publisher.outbox is not None,
            "outbox_pending": publisher.outbox_pending,
        }

    add_metrics_route(app, metrics.registry)
    add_readiness_route(app, readiness)

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, exc: Exception) -> Response:
        # The route template, never the URL: a webhook URL carries its secret.
        route = getattr(request.scope.get("route"), "path", "?")
        log.error("unhandled error on %s %s", request.method, route, exc_info=exc)
        return JSONResponse(
            {
                "success": False,
                "messageCode": MessageCode.INTERNAL_ERROR,
                "message": "Internal error; the request was not processed. Try again, and "
                "report it if it persists.",
            },
            status_code=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )

    return app
