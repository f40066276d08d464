"""The console's Prometheus metrics (``GET /metrics``, ADR-0075): the process, open sessions
and sign-ins by result."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from phalanx_common.metrics import new_registry
from phalanx_console.sessions import SessionStore

__all__ = ["ConsoleMetrics"]


class ConsoleMetrics:
    """The console's registry and its instruments.

    Args:
        sessions: The session store (its size is a gauge).
    """

    def __init__(self, sessions: SessionStore) -> None:
        self.registry: CollectorRegistry = new_registry()
        gauge = Gauge(
            "phalanx_console_sessions",
            "Signed-in console sessions not yet expired or signed out.",
            registry=self.registry,
        )
        gauge.set_function(lambda: float(len(sessions)))
        self._sign_ins = Counter(
            "phalanx_console_sign_ins",
            "Console sign-in attempts by result (ok, refused).",
            ["result"],
            registry=self.registry,
        )

    def sign_in(self, ok: bool) -> None:
        """Count one sign-in attempt."""
        self._sign_ins.labels("ok" if ok else "refused").inc()
