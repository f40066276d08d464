"""Metrics, readiness and the dashboard against the whole running system over real NATS/Redis.

A webhook moves the counters that say what happened to it (signals, orders, permits, the
fan-out histogram with the signal's trace as exemplar); every PromQL expression of the Grafana
dashboard names only metrics some service exports (read from a real scrape of each service).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import promql_parser
import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from phalanx_bench.inprocess import RunningSystem
from phalanx_bench.seed import seed
from phalanx_testing.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(120)]

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
DASHBOARD = Path(__file__).resolve().parents[2] / "deploy/grafana/dashboards/phalanx.json"
OPENMETRICS = "application/openmetrics-text; version=1.0.0"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _urls(system: RunningSystem) -> dict[str, str]:
    return {
        "ingest": system.ingest.url,
        "auth": system.auth.url,
        "executor": system.executor.url,
        "ledger": system.ledger.url,
    }


async def _scrape(http: httpx.AsyncClient, base: str) -> Samples:
    resp = await http.get(f"{base}/metrics")
    assert resp.status_code == 200, resp.text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(resp.text)
        for s in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    """The sample's value (0 when absent: a labelled counter not yet incremented)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _sum(samples: Samples, name: str, **labels: str) -> float:
    """Sum over every sample of ``name`` whose labels include ``labels``."""
    return sum(
        v for (n, lbls), v in samples.items() if n == name and labels.items() <= dict(lbls).items()
    )


async def test_a_webhook_moves_signals_orders_permits_and_fanout_metrics(
    system: RunningSystem,
) -> None:
    seeded = await seed(system.endpoints, logins=2, accounts_per_login=2)
    pool = system.executor.pool
    assert pool is not None
    await eventually(lambda: len(pool) == 2, what="both logins connected")
    strategy = seeded.strategy_id
    body = {"ticker": "MNQ1!", "action": "buy", "quantity": 1}
    traceparent = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
    urls = _urls(system)
    async with httpx.AsyncClient(timeout=10) as http:
        before = await _scrape(http, urls["executor"])
        resp = await http.post(seeded.webhook_url, json=body, headers={"traceparent": traceparent})
        assert resp.status_code == 200, resp.text
        again = await http.post(seeded.webhook_url, json=body)  # a resend: a duplicate
        assert again.json().get("duplicate") is True
        unknown = seeded.webhook_url.replace(f"/webhooks/{strategy}/", "/webhooks/nope/")
        assert (await http.post(unknown, json=body)).status_code == 404

        async def fanned_out() -> bool:
            ledger = await _scrape(http, urls["ledger"])
            return _value(ledger, "phalanx_signal_fanout_seconds_count") == 1

        await eventually(fanned_out, what="the ledger observed the signal's fan-out")

        ingest = await _scrape(http, urls["ingest"])
        assert _value(ingest, "phalanx_signals_total", strategy=strategy, outcome="accepted") == 1
        assert _value(ingest, "phalanx_signals_total", strategy=strategy, outcome="duplicate") == 1
        # a strategy id nobody created never becomes a label value
        assert _value(ingest, "phalanx_signals_total", strategy="unknown", outcome="not-found") == 1
        assert _sum(ingest, "phalanx_signals_total", strategy="nope") == 0
        assert _value(ingest, "phalanx_webhook_seconds_count") == 3

        executor = await _scrape(http, urls["executor"])
        accounts = len(seeded.account_ids)
        assert (
            _value(executor, "phalanx_orders_total", strategy=strategy, outcome="accepted")
            == accounts
        )
        assert _value(executor, "phalanx_order_ack_seconds_count") == accounts
        for login in seeded.logins:  # each login sent its accounts' orders under permits
            sent = _value(executor, "phalanx_login_permits_total", login=login) - _value(
                before, "phalanx_login_permits_total", login=login
            )
            assert sent >= 2, (login, sent)
        assert _value(executor, "phalanx_venue_sockets_open") == 2
        assert _value(executor, "phalanx_venue_sockets_connected") == 2
        assert _value(executor, "phalanx_nats_connected") == 1
        # consumer lag, sampled in the background: the planner's durable consumer is drained
        assert (
            _value(executor, "phalanx_consumer_pending", stream="SIGNALS", consumer="planner") == 0
        )
        assert ("phalanx_consumer_pending", (("consumer", "planner"), ("stream", "SIGNALS"))) in (
            executor
        )
        ledger = await _scrape(http, urls["ledger"])
        assert ("phalanx_consumer_pending", (("consumer", "ledger"), ("stream", "ORDERS"))) in (
            ledger
        )

        async def fills_match() -> bool:
            published = _value(
                await _scrape(http, urls["executor"]), "phalanx_fills_total", result="published"
            )
            applied = _value(
                await _scrape(http, urls["ledger"]), "phalanx_ledger_fills_total", result="applied"
            )
            return published == applied >= accounts  # every entry filled, every fill applied

        await eventually(fills_match, what="the executor's published fills all applied")

        auth = await _scrape(http, urls["auth"])
        for login in seeded.logins:  # fresh tokens: minutes to go, not expired
            assert _value(auth, "phalanx_token_expiry_seconds", login=login) > 60, login
        assert _value(auth, "phalanx_auth_events_total", event="logins_connected") >= 2

        # The ledger's fan-out carries the signal's trace id as an exemplar (OpenMetrics).
        resp = await http.get(f"{urls['ledger']}/metrics", headers={"Accept": OPENMETRICS})
        assert resp.headers["content-type"].startswith("application/openmetrics-text")
        exemplars = [
            s.exemplar.labels.get("trace_id")
            for family in openmetrics_families(resp.text)  # type: ignore[no-untyped-call]
            if family.name == "phalanx_signal_fanout_seconds"
            for s in family.samples
            if s.exemplar is not None
        ]
        assert exemplars == [TRACE_ID]


async def test_dropped_venue_sockets_are_counted_per_login_and_their_reconnects(
    system: RunningSystem,
) -> None:
    seeded = await seed(system.endpoints, logins=2, accounts_per_login=1)
    pool = system.executor.pool
    assert pool is not None
    await eventually(lambda: pool.connected_count() == 2, what="both logins connected")
    url = system.executor.url
    async with httpx.AsyncClient(timeout=10) as http:
        dropped = await http.post(f"{system.sim.url}/admin/sockets/drop", json={})
        assert dropped.json()["dropped"] == 2

        async def reconnected() -> bool:
            samples = await _scrape(http, url)
            return _sum(samples, "phalanx_venue_reconnects_total", result="ok") == 2

        await eventually(reconnected, timeout=30, what="both sockets reconnected")
        samples = await _scrape(http, url)
    for login in seeded.logins:
        assert _value(samples, "phalanx_venue_socket_drops_total", login=login) == 1
        assert _value(samples, "phalanx_venue_reconnects_total", login=login, result="ok") == 1
    assert _value(samples, "phalanx_venue_sockets_connected") == 2


async def test_readiness_says_ready_and_liveness_keeps_its_bodies(system: RunningSystem) -> None:
    urls = _urls(system)
    async with httpx.AsyncClient(timeout=10) as http:
        for name, base in urls.items():
            ready = await http.get(f"{base}/readyz")
            assert ready.status_code == 200, (name, ready.text)
            assert ready.json()["status"] == "ready"
            assert all(ready.json()["checks"].values()), (name, ready.json())
        assert (await http.get(f"{urls['auth']}/healthz")).json() == {"status": "ok"}
        assert (await http.get(f"{urls['ledger']}/healthz")).json()["status"] == "ok"
        assert (await http.get(f"{urls['ingest']}/healthz")).json()["nats_connected"] is True
        assert "shards" in (await http.get(f"{urls['executor']}/healthz")).json()
        assert set((await http.get(f"{urls['ledger']}/readyz")).json()["checks"]) == {
            "nats",
            "replay",
        }
        assert set((await http.get(f"{urls['executor']}/readyz")).json()["checks"]) >= {
            "nats",
            "redis",
        }


def _exposed_names(text: str) -> set[str]:
    """Every series name a scrape exposes, including those of families with no sample yet."""
    names: set[str] = set()
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "gauge": ("",),
    }
    for family in text_string_to_metric_families(text):
        names.update(family.name + s for s in suffixes.get(family.type, ("",)))
        names.update(s.name for s in family.samples)
    return names


def _dashboard_metrics() -> dict[str, set[str]]:
    """``{expr: phalanx_* metric names it selects}`` for every Prometheus target."""
    dashboard = json.loads(DASHBOARD.read_text())
    found: dict[str, set[str]] = {}
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            if target.get("datasource", panel.get("datasource", {})).get("uid") != "prometheus":
                continue
            expr = target["expr"]
            # Grafana's variables are not PromQL: stand in a duration for the parser.
            parsed = promql_parser.parse(re.sub(r"\$__(rate_)?interval", "5m", expr))
            selected: set[str] = set()

            def visit(node: promql_parser.Expr, out: set[str] = selected) -> None:
                if isinstance(node, promql_parser.VectorSelector) and node.name:
                    out.add(node.name)

            promql_parser.walk(parsed, visit)
            found[expr] = {name for name in selected if name.startswith("phalanx_")}
    return found


async def test_the_dashboard_references_only_exported_metrics(system: RunningSystem) -> None:
    exprs = _dashboard_metrics()
    referenced = set().union(*exprs.values())
    assert len(exprs) >= 10  # the dashboard is really parsed
    assert len(referenced) >= 12
    exported: set[str] = set()
    async with httpx.AsyncClient(timeout=10) as http:
        for base in _urls(system).values():
            resp = await http.get(f"{base}/metrics")
            assert resp.status_code == 200
            exported |= _exposed_names(resp.text)
    missing = {expr: names - exported for expr, names in exprs.items() if names - exported}
    assert not missing, missing
    datasources = {
        t.get("datasource", {}).get("uid")
        for p in json.loads(DASHBOARD.read_text())["panels"]
        for t in p.get("targets", [])
    }
    assert datasources == {"prometheus", "tempo"}
