"""The ledger's Prometheus metrics (``GET /metrics``; docs/metrics.md): fan-out latency of
signals, fills applied, and how far each followed stream is behind."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

from phalanx_common.bus import Bus
from phalanx_common.metrics import (
    LATENCY_BUCKETS_S,
    CollectorRegistry,
    CounterMetricFamily,
    Gauge,
    Histogram,
    Metric,
    NatsCollector,
    new_registry,
    trace_exemplar,
)
from phalanx_common.tasks import OwnedTasks, every
from phalanx_ledger.follower import StreamFollower
from phalanx_ledger.projection import PositionsProjection

__all__ = ["LEDGER_CONSUMER", "LedgerMetrics"]

log = logging.getLogger(__name__)

LEDGER_CONSUMER = "ledger"
"""The ``consumer`` label of the ledger's lag (its consumers are ephemeral, ordered ones)."""


class _ProjectionCollector:
    def __init__(self, projection: PositionsProjection) -> None:
        self._projection = projection

    def collect(self) -> Iterator[Metric]:
        fills = CounterMetricFamily(
            "phalanx_ledger_fills",
            "Fills the ledger read, by result: applied, duplicate, unattributed",
            labels=["result"],
        )
        p = self._projection
        fills.add_metric(["applied"], float(p.fills_applied))
        fills.add_metric(["duplicate"], float(p.duplicate_fills))
        fills.add_metric(["unattributed"], float(p.unattributed_fills))
        yield fills


class LedgerMetrics:
    """Every metric the ledger exports, on its own registry.

    Args:
        bus: The connected bus (NATS metrics; stream ends for the lag).
        projection: Read at scrape time.
        followers: Their positions, against the stream ends sampled every ``interval_s``.
        registry: A fresh one when ``None``.
        interval_s: Lag sampling period.
    """

    def __init__(
        self,
        bus: Bus,
        projection: PositionsProjection,
        followers: Sequence[StreamFollower],
        registry: CollectorRegistry | None = None,
        interval_s: float = 5.0,
    ) -> None:
        self.registry = registry or new_registry()
        self._bus = bus
        self._followers = followers  # read at each sample (the service fills the list later)
        self._interval_s = interval_s
        self._tasks = OwnedTasks("ledger-metrics")
        self.fanout = Histogram(
            "phalanx_signal_fanout_seconds",
            "Webhook receipt to the last account's order outcome of a signal (with the "
            "trace id of the last outcome as exemplar)",
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.pending = Gauge(
            "phalanx_consumer_pending",
            "Messages of the stream the consumer has not delivered yet",
            ["stream", "consumer"],
            registry=self.registry,
        )
        self.registry.register(_ProjectionCollector(projection))
        self.registry.register(NatsCollector(bus.nc))

    def observe_fanout(self, seconds: float) -> None:
        """Observe one signal's fan-out, with the current trace as exemplar."""
        self.fanout.observe(seconds, exemplar=trace_exemplar())

    async def sample(self) -> None:
        """How many messages each followed stream holds beyond what the ledger applied."""
        for follower in self._followers:
            info = await self._bus.js.stream_info(follower.name)
            behind = max(0, int(info.state.last_seq) - follower.last_seq)
            self.pending.labels(follower.name, LEDGER_CONSUMER).set(behind)

    def start(self) -> None:
        """Sample the lag now and every ``interval_s`` until :meth:`stop`."""
        if not self._tasks:
            sampling = every(self._interval_s, self.sample, self._not_sampled)
            self._tasks.spawn(sampling, "metrics:ledger-lag")

    async def stop(self) -> None:
        """Stop sampling (idempotent)."""
        await self._tasks.stop()

    @staticmethod
    def _not_sampled(exc: Exception) -> None:
        log.debug("ledger lag not sampled: %s", exc)
