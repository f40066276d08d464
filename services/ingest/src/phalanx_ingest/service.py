"""The ingest service: NATS connection, strategy directory and HTTP server, started and stopped
as one."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from phalanx_common.bus import Bus
from phalanx_common.clock import Clock, LiveClock
from phalanx_common.http import HttpServer
from phalanx_common.subjects import Buckets
from phalanx_ingest.app import create_app
from phalanx_ingest.publisher import SignalPublisher
from phalanx_ingest.settings import IngestSettings
from phalanx_ingest.strategies import StrategyDirectory
from phalanx_ingest.subscriptions import SubscriptionStore

__all__ = ["IngestService", "build_ingest"]

log = logging.getLogger(__name__)


class IngestService:
    """A built ingest service; :meth:`start` serves HTTP, :meth:`stop` releases everything.

    Args:
        settings: Ingest settings.
        bus: The connected bus (owned: closed by :meth:`stop`).
        strategies: The strategy directory (started by :meth:`start`).
        app: The FastAPI application.
    """

    def __init__(
        self,
        settings: IngestSettings,
        bus: Bus,
        strategies: StrategyDirectory,
        app: FastAPI,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.strategies = strategies
        self.app = app
        self._http = HttpServer(app, settings.http_host, settings.ingest_port, name="ingest")

    @property
    def url(self) -> str:
        """Base URL of the running HTTP server (its real port once started)."""
        return self._http.url

    async def start(self) -> None:
        """Load strategies, then serve HTTP; returns once the socket listens."""
        await self.strategies.start()
        await self._http.start()

    async def stop(self) -> None:
        """Stop serving, stop following strategies, close NATS (idempotent)."""
        await self._http.stop()
        await self.strategies.stop()
        await self.bus.close()


async def build_ingest(settings: IngestSettings, clock: Clock | None = None) -> IngestService:
    """Connect to NATS, declare the topology and assemble the service (not yet started).

    Args:
        settings: Ingest settings.
        clock: The clock (the live clock by default).

    Raises:
        DependencyUnavailable: if NATS cannot be reached.
    """
    clock = clock or LiveClock()
    bus = await Bus.connect(settings.nats_url, "ingest")
    try:
        await bus.ensure_topology()
        strategies = StrategyDirectory(await bus.key_value(Buckets.STRATEGIES))
        subscriptions = SubscriptionStore(
            await bus.key_value(Buckets.SUBSCRIPTIONS), await bus.key_value(Buckets.ACCOUNTS)
        )
    except BaseException:
        await bus.close()
        raise
    publisher = SignalPublisher(bus, clock, settings.publish_timeout_s)
    app = create_app(settings, strategies, subscriptions, publisher, clock)
    return IngestService(settings, bus, strategies, app)
