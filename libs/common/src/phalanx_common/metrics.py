"""Prometheus metrics shared by every service: the ``/metrics`` route, NATS connection metrics,
JetStream consumer lag, and trace exemplars.

Each service builds its metrics on its **own** :class:`CollectorRegistry` (never the process-wide
default), so several services in one process (the tests, ``phalanx_bench.inprocess``) do not
clash and each ``/metrics`` shows only its service (ADR-0075). Every metric is named
``phalanx_*`` and listed in ``docs/metrics.md``. Services import the client's types from here,
so only this package depends on ``prometheus-client``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator

from fastapi import FastAPI, Request
from fastapi.responses import Response
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from opentelemetry import trace
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from phalanx_common.tasks import OwnedTasks, every

__all__ = [
    "LATENCY_BUCKETS_S",
    "CollectorRegistry",
    "ConsumerLag",
    "Counter",
    "CounterMetricFamily",
    "Gauge",
    "GaugeMetricFamily",
    "Histogram",
    "Metric",
    "NatsCollector",
    "add_metrics_route",
    "new_registry",
    "trace_exemplar",
]

log = logging.getLogger(__name__)

#: Seconds; from a few milliseconds (one order) to the minutes a budget-bound login can wait.
LATENCY_BUCKETS_S = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
)


def new_registry(process: bool = True) -> CollectorRegistry:
    """A fresh registry for one service (with the ``process_*`` metrics when ``process``)."""
    registry = CollectorRegistry(auto_describe=True)
    if process:
        ProcessCollector(registry=registry)
    return registry


def add_metrics_route(app: FastAPI, registry: CollectorRegistry) -> None:
    """Serve ``GET /metrics`` from ``registry``.

    The Prometheus text format by default; OpenMetrics (which carries exemplars, i.e. the trace
    id of a slow signal) when the scraper asks for it in ``Accept``, as Prometheus does with
    exemplar storage on.
    """

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(content=encoder(registry), media_type=content_type)


def trace_exemplar() -> dict[str, str] | None:
    """``{"trace_id": <32 hex>}`` of the current span, for a histogram observation; ``None``
    when no trace is current."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return {"trace_id": format(ctx.trace_id, "032x")}


class NatsCollector(Collector):
    """``phalanx_nats_connected`` and ``phalanx_nats_reconnects_total``, read at scrape time."""

    def __init__(self, nc: NatsClient) -> None:
        self._nc = nc

    def collect(self) -> Iterator[Metric]:
        connected = GaugeMetricFamily(
            "phalanx_nats_connected", "1 while the service's NATS connection is up"
        )
        connected.add_metric([], 1.0 if self._nc.is_connected else 0.0)
        yield connected
        reconnects = CounterMetricFamily(
            "phalanx_nats_reconnects", "Times the NATS connection was re-established"
        )
        reconnects.add_metric([], float(self._nc.stats.get("reconnects", 0)))
        yield reconnects


class ConsumerLag:
    """``phalanx_consumer_pending{stream,consumer}`` (messages not yet delivered) and
    ``phalanx_consumer_ack_pending{stream,consumer}`` (delivered, not yet acked) of every
    **durable** consumer of the given streams, sampled every ``interval_s`` in the background
    (a scrape never waits on NATS). Ephemeral consumers are left out: their names are random.

    Args:
        js: The JetStream context.
        streams: Stream names to sample.
        registry: Where the gauges are registered.
        interval_s: Sampling period.
    """

    def __init__(
        self,
        js: JetStreamContext,
        streams: Iterable[str],
        registry: CollectorRegistry,
        interval_s: float = 5.0,
    ) -> None:
        self._js = js
        self._streams = tuple(streams)
        self._interval_s = interval_s
        self.pending = Gauge(
            "phalanx_consumer_pending",
            "Messages of the stream the durable consumer has not delivered yet",
            ["stream", "consumer"],
            registry=registry,
        )
        self.ack_pending = Gauge(
            "phalanx_consumer_ack_pending",
            "Messages the durable consumer delivered and nobody acknowledged yet",
            ["stream", "consumer"],
            registry=registry,
        )
        self._tasks = OwnedTasks("consumer-lag-metrics")
        self._seen: set[tuple[str, str]] = set()

    async def sample(self) -> None:
        """Read every durable consumer's state once (consumers gone since are dropped)."""
        seen: set[tuple[str, str]] = set()
        for stream in self._streams:
            for info in await self._js.consumers_info(stream):
                durable = info.config.durable_name
                if not durable:
                    continue
                self.pending.labels(stream, durable).set(info.num_pending or 0)
                self.ack_pending.labels(stream, durable).set(info.num_ack_pending or 0)
                seen.add((stream, durable))
        for stream, durable in self._seen - seen:
            with contextlib.suppress(KeyError):
                self.pending.remove(stream, durable)
                self.ack_pending.remove(stream, durable)
        self._seen = seen

    def start(self) -> None:
        """Sample now and then every ``interval_s`` until :meth:`stop` (NATS away: the last
        values stay, and the next sample tries again)."""
        if not self._tasks:
            sampling = every(self._interval_s, self.sample, _not_sampled("consumer lag"))
            self._tasks.spawn(sampling, "metrics:consumer-lag")

    async def stop(self) -> None:
        """Stop sampling (idempotent)."""
        await self._tasks.stop()


def _not_sampled(what: str) -> Callable[[Exception], None]:
    def failed(exc: Exception) -> None:
        log.debug("%s not sampled: %s", what, exc)

    return failed
