"""The executor's Prometheus metrics (``GET /metrics`` of each replica; docs/metrics.md).

Per-login labels are deliberate: a login is the unit of the venue's budgets, penalties and
sockets, and there are at most as many as sockets. Nothing is labelled per account (ADR-0075).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from phalanx_common.metrics import (
    LATENCY_BUCKETS_S,
    CollectorRegistry,
    Counter,
    CounterMetricFamily,
    Gauge,
    GaugeMetricFamily,
    Histogram,
    Metric,
    trace_exemplar,
)

__all__ = ["ExecutorMetrics", "FillsCollector"]

_FILL_COUNTERS = ("published", "publish_failures", "refused", "unattributed")


class FillsCollector:
    """``phalanx_fills_total{result}`` and ``phalanx_fills_pending`` from the fill outbox's
    counters (ADR-0061), read at scrape time.

    Args:
        source: The counters, as ``/healthz`` reports them under ``fills`` (empty before start).
    """

    def __init__(self, source: Callable[[], dict[str, int]]) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        """The two families."""
        counts = self._source()
        fills = CounterMetricFamily(
            "phalanx_fills",
            "Venue fills by result: published to FILLS, publish failures (retried), refused "
            "(outbox full), unattributed (account unknown)",
            labels=["result"],
        )
        for name in _FILL_COUNTERS:
            fills.add_metric([name], float(counts.get(name, 0)))
        yield fills
        yield GaugeMetricFamily(
            "phalanx_fills_pending",
            "Fills waiting in the executor's outbox for JetStream",
            value=float(counts.get("pending", 0)),
        )


class ExecutorMetrics:
    """Every metric the executor exports, on one registry (a fresh one when none is given)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.orders = Counter(
            "phalanx_orders",
            "Order intents by terminal outcome (accepted, rejected, expired) and unknown "
            "outcomes met",
            ["strategy", "outcome"],
            registry=r,
        )
        self.order_ack = Histogram(
            "phalanx_order_ack_seconds",
            "Webhook receipt to one account's order outcome (accepted, rejected or expired)",
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.permit_wait = Histogram(
            "phalanx_permit_wait_seconds",
            "Wait for a permit of the shared rate limiter, per venue request",
            ["priority"],
            buckets=(0.0, *LATENCY_BUCKETS_S),
            registry=r,
        )
        self.login_permits = Counter(
            "phalanx_login_permits",
            "Permits taken per login (venue requests sent or about to be)",
            ["login"],
            registry=r,
        )
        self.login_permit_wait = Counter(
            "phalanx_login_permit_wait_seconds",
            "Seconds spent waiting for permits per login (rate: the login's budget pressure)",
            ["login"],
            registry=r,
        )
        self.penalties = Counter(
            "phalanx_venue_penalties",
            "Penalty answers (p-ticket, p-time) of the venue per login",
            ["login"],
            registry=r,
        )
        self.lockouts = Counter(
            "phalanx_venue_lockouts",
            "Lockouts (HTTP 423/429, captcha) of the venue per login",
            ["login"],
            registry=r,
        )
        self.stale_permits = Counter(
            "phalanx_stale_permits",
            "Requests that could not go soon enough after their permit and took another (ADR-0062)",
            ["login"],
            registry=r,
        )
        self.sockets_open = Gauge(
            "phalanx_venue_sockets_open",
            "Venue WebSockets this replica holds (one per login it works)",
            registry=r,
        )
        self.sockets_connected = Gauge(
            "phalanx_venue_sockets_connected",
            "Venue WebSockets open and authorized right now",
            registry=r,
        )
        self.socket_drops = Counter(
            "phalanx_venue_socket_drops",
            "Venue WebSockets that closed unasked (each starts a reconnect)",
            ["login"],
            registry=r,
        )
        self.reconnects = Counter(
            "phalanx_venue_reconnects",
            "Reconnects of dropped venue WebSockets, by result (ok, failed)",
            ["login", "result"],
            registry=r,
        )
        # labelled children of the per-request metrics, by priority and by login
        self._permit_wait_of: dict[str, Histogram] = {}
        self._login_permits_of: dict[str, tuple[Counter, Counter]] = {}

    def order_outcome(self, strategy_id: str, outcome: str) -> None:
        """Count one intent's outcome (``accepted``, ``rejected``, ``expired``, ``unknown``)."""
        self.orders.labels(strategy_id, outcome).inc()

    def acknowledged(self, seconds: float) -> None:
        """Observe receipt → one account's outcome, with the current trace as exemplar."""
        self.order_ack.observe(max(0.0, seconds), exemplar=trace_exemplar())

    def permit_waited(self, login_id: str, priority: str, seconds: float) -> None:
        """Record one permit and how long it took.

        The labelled children are looked up once per login and priority (a ``labels()`` call
        validates and locks each time; this runs for every venue request, ADR-0160).
        """
        waited = self._permit_wait_of.get(priority)
        if waited is None:
            waited = self._permit_wait_of[priority] = self.permit_wait.labels(priority)
        login = self._login_permits_of.get(login_id)
        if login is None:
            login = self._login_permits_of[login_id] = (
                self.login_permits.labels(login_id),
                self.login_permit_wait.labels(login_id),
            )
        waited.observe(seconds)
        login[0].inc()
        login[1].inc(seconds)

    def stale_permit(self, login_id: str) -> None:
        """Count a permit spent without its request (too old by the time it could go)."""
        self.stale_permits.labels(login_id).inc()

    def blocked(self, login_id: str, reason: str) -> None:
        """Count a block the venue imposed on a login (``venue-penalty`` or a lockout)."""
        if reason == "venue-penalty":
            self.penalties.labels(login_id).inc()
        else:
            self.lockouts.labels(login_id).inc()

    def watch_sockets(self, held: Callable[[], int], connected: Callable[[], int]) -> None:
        """Read the socket gauges from the pool at scrape time."""
        self.sockets_open.set_function(lambda: float(held()))
        self.sockets_connected.set_function(lambda: float(connected()))
