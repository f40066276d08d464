"""The ingest service: NATS connection, strategy directory and HTTP server, started and stopped
as one."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from phalanx_common.bus import Bus
from phalanx_common.clock import Clock, LiveClock
from phalanx_common.http import HttpServer
from phalanx_common.http_limits import HttpLimits
from phalanx_common.metrics import NatsCollector
from phalanx_common.nats_auth import NatsAuth
from phalanx_common.subjects import Buckets
from phalanx_ingest.app import create_app
from phalanx_ingest.metrics import IngestMetrics
from phalanx_ingest.outbox import Outbox
from phalanx_ingest.publisher import SignalPublisher
from phalanx_ingest.repeats import RepeatGuard
from phalanx_ingest.replayer import Replayer
from phalanx_ingest.settings import IngestSettings
from phalanx_ingest.signallog import SignalLog, SignalLogFollower
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
        publisher: The signal publisher (its outbox drainer runs while the service does).
        follower: Feeds the signal log, if it is kept.
        replayer: Carries out re-run requests from ``signals-replay.>`` (ADR-0090).
    """

    def __init__(
        self,
        settings: IngestSettings,
        bus: Bus,
        strategies: StrategyDirectory,
        app: FastAPI,
        publisher: SignalPublisher | None = None,
        follower: SignalLogFollower | None = None,
        replayer: Replayer | None = None,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.strategies = strategies
        self.app = app
        self.publisher = publisher
        self.follower = follower
        self.replayer = replayer
        # X-Forwarded-For is judged by the webhook itself (trusted_proxies), never by uvicorn.
        self._http = HttpServer(
            app,
            settings.http_host,
            settings.ingest_port,
            name="ingest",
            proxy_headers=False,
            limits=HttpLimits.from_settings(settings),
        )

    @property
    def url(self) -> str:
        """Base URL of the running HTTP server (its real port once started)."""
        return self._http.url

    async def start(self) -> None:
        """Load strategies, start the outbox drainer and the signal log, then serve HTTP;
        returns once the socket listens."""
        await self.strategies.start()
        if self.publisher is not None:
            self.publisher.start()
        if self.follower is not None:
            await self.follower.start()
        if self.replayer is not None:
            await self.replayer.start()
        await self._http.start()

    async def stop(self) -> None:
        """Stop serving, then the drainer and followers, close the outbox and NATS
        (idempotent). Unpublished outbox rows stay on disk for the next start."""
        await self._http.stop()
        if self.replayer is not None:
            await self.replayer.stop()
        if self.follower is not None:
            await self.follower.stop()
        if self.publisher is not None:
            await self.publisher.stop()
            if self.publisher.outbox is not None:
                await self.publisher.outbox.close()
        await self.strategies.stop()
        await self.bus.close()


async def build_ingest(settings: IngestSettings, clock: Clock | None = None) -> IngestService:
    """Connect to NATS, declare the topology, open the outbox and assemble the service.

    Args:
        settings: Ingest settings.
        clock: The clock (the live clock by default).

    Raises:
        DependencyUnavailable: if NATS cannot be reached.
        OutboxLockedError: if another process uses the outbox directory.
    """
    clock = clock or LiveClock()
    bus = await Bus.connect(settings.nats_url, "ingest", auth=NatsAuth.from_settings(settings))
    outbox: Outbox | None = None
    try:
        await bus.ensure_topology(settings.stream_replicas, settings.stream_byte_limits)
        strategies = StrategyDirectory(await bus.key_value(Buckets.STRATEGIES))
        subscriptions = SubscriptionStore(
            await bus.key_value(Buckets.SUBSCRIPTIONS), await bus.key_value(Buckets.ACCOUNTS)
        )
        repeats_kv = await bus.key_value(Buckets.SIGNAL_REPEATS)
        if settings.ingest_outbox_dir:
            outbox = Outbox(settings.ingest_outbox_dir, clock)
            await outbox.open()
    except BaseException:
        if outbox is not None:
            await outbox.close()
        await bus.close()
        raise
    publisher = SignalPublisher(
        bus, clock, settings.publish_timeout_s, outbox, settings.outbox_retention_s
    )
    signal_log = SignalLog(settings.signal_log_size) if settings.signal_log_size > 0 else None
    follower = SignalLogFollower(bus.js, signal_log) if signal_log is not None else None
    repeats = RepeatGuard(repeats_kv, lambda: bool(bus.nc.is_connected))
    metrics = IngestMetrics()
    metrics.registry.register(NatsCollector(bus.nc))
    app = create_app(
        settings, strategies, subscriptions, publisher, clock, signal_log, repeats, metrics
    )
    replayer = Replayer(bus, publisher, strategies, settings, clock)
    return IngestService(settings, bus, strategies, app, publisher, follower, replayer)
