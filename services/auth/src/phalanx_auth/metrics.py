"""The auth service's Prometheus metrics (``GET /metrics``; docs/metrics.md), read at scrape time
from the login manager: token time-to-expiry per login and the service's counters."""

from __future__ import annotations

from collections.abc import Iterator

from phalanx_auth.logins import LoginManager
from phalanx_auth.tokens import expiry_ns
from phalanx_common.clock import Clock
from phalanx_common.metrics import CounterMetricFamily, GaugeMetricFamily, Metric

__all__ = ["AuthCollector"]


class AuthCollector:
    """``phalanx_token_expiry_seconds{login}``, ``phalanx_auth_events_total{event}`` and
    ``phalanx_token_renewals_total{login}``.

    Args:
        manager: The login manager (its in-memory token cache and counters; no I/O).
        clock: The clock the expiry is measured against.
    """

    def __init__(self, manager: LoginManager, clock: Clock) -> None:
        self._manager = manager
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        """One family each, read from memory."""
        now = self._clock.time_ns()
        expiry = GaugeMetricFamily(
            "phalanx_token_expiry_seconds",
            "Seconds until the login's current access token expires (negative: expired)",
            labels=["login"],
        )
        for login_id, token in sorted(self._manager.cached_tokens().items()):
            expires = expiry_ns(token.expiration_time)
            if expires is not None:
                expiry.add_metric([login_id], (expires - now) / 1e9)
        yield expiry
        counts = self._manager.metrics
        events = CounterMetricFamily(
            "phalanx_auth_events",
            "Auth service events: renewals, renewal failures, re-authentication required, "
            "fallbacks to API access, OAuth connects, accounts linked and unlinked, ...",
            labels=["event"],
        )
        for name, value in sorted(counts.snapshot().items()):
            events.add_metric([name], float(value))
        yield events
        renewals = CounterMetricFamily(
            "phalanx_token_renewals", "Token renewals per login", labels=["login"]
        )
        for login_id, value in sorted(counts.by_login_renewals.items()):
            renewals.add_metric([login_id], float(value))
        yield renewals
