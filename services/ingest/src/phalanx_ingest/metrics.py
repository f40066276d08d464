"""The ingest service's Prometheus metrics (``GET /metrics``; docs/metrics.md)."""

from __future__ import annotations

from collections.abc import Callable

from phalanx_common.metrics import (
    LATENCY_BUCKETS_S,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    new_registry,
)

__all__ = ["UNKNOWN_STRATEGY", "IngestMetrics"]

UNKNOWN_STRATEGY = "unknown"
"""The ``strategy`` label of webhooks for no known strategy: a URL's strategy id is anyone's
choice, so it never becomes a label value by itself."""


class IngestMetrics:
    """Every metric ingest exports, on one registry (a fresh one when none is given)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or new_registry()
        r = self.registry
        self.signals = Counter(
            "phalanx_signals",
            "Webhooks by strategy and outcome: accepted, queued (in the outbox), duplicate, or "
            "the messageCode of the refusal",
            ["strategy", "outcome"],
            registry=r,
        )
        self.webhook_seconds = Histogram(
            "phalanx_webhook_seconds",
            "Time to answer a webhook (read, check, make durable)",
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.outbox_pending = Gauge(
            "phalanx_outbox_pending",
            "Accepted signals waiting in the local outbox for JetStream",
            registry=r,
        )

    def watch_outbox(self, pending: Callable[[], int]) -> None:
        """Read the outbox backlog at scrape time."""
        self.outbox_pending.set_function(lambda: float(pending()))
