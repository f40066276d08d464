"""Prometheus metrics of reconciliation with the broker (read at scrape time; ADR-0125)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from phalanx_common.metrics import CounterMetricFamily, GaugeMetricFamily, Metric
from phalanx_ledger.reconciler import Reconciler

__all__ = ["ReconciliationCollector"]

_STATUSES = ("ok", "drift", "unknown")


class ReconciliationCollector:
    """Accounts by their latest outcome, rounds, and what reconciliation recorded."""

    def __init__(self, reconciler: Reconciler) -> None:
        self._reconciler = reconciler

    def collect(self) -> Iterator[Metric]:
        r = self._reconciler
        accounts = GaugeMetricFamily(
            "phalanx_ledger_reconciled_accounts",
            "Accounts by the outcome of their latest check with the broker: ok, drift, unknown",
            labels=["status"],
        )
        counts: Counter[str] = Counter(outcome.status for outcome in r.latest.values())
        for status in _STATUSES:
            accounts.add_metric([status], float(counts.get(status, 0)))
        yield accounts
        yield CounterMetricFamily(
            "phalanx_ledger_reconciliation_rounds",
            "Reconciliation rounds run (scheduled and on demand)",
            value=float(r.rounds),
        )
        yield CounterMetricFamily(
            "phalanx_ledger_drift_reports",
            "PositionDrift events published",
            value=float(r.drift_reports),
        )
        recorded = CounterMetricFamily(
            "phalanx_ledger_reconciliation_recorded",
            "What reconciliation fetched from the broker and recorded: fills the ledger lacked, "
            "fees of fills",
            labels=["kind"],
        )
        recorded.add_metric(["fills"], float(r.fetched_fills))
        recorded.add_metric(["fees"], float(r.fetched_fees))
        yield recorded
