"""Ingest's metrics and readiness across a NATS outage with the outbox (real nats-server)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from phalanx_ingest.service import IngestService, build_ingest
from phalanx_ingest.settings import IngestSettings
from phalanx_testing.servers import ServerProcess, start_nats
from phalanx_testing.waiting import eventually

pytestmark = pytest.mark.integration

ADMIN = {"Authorization": "Bearer metrics-token"}


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A nats-server whose store survives stop/restart."""
    server = start_nats(store_dir=str(tmp_path / "nats"))
    try:
        yield server
    finally:
        server.stop()


async def _metrics(client: httpx.AsyncClient) -> dict[tuple[str, str, str], float]:
    """``{(name, strategy, outcome): value}`` of one scrape."""
    text = (await client.get("/metrics")).text
    return {
        (s.name, s.labels.get("strategy", ""), s.labels.get("outcome", "")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_outbox_backlog_queued_signals_and_readiness_across_a_nats_outage(
    nats_server: ServerProcess, tmp_path: Path
) -> None:
    settings = IngestSettings(
        nats_url=nats_server.url,
        ingest_port=0,
        admin_token="metrics-token",
        ingest_outbox_dir=str(tmp_path / "outbox"),
        publish_timeout_s=1.0,
        webhook_rate_per_min=0,
    )
    service: IngestService = await build_ingest(settings)
    await service.start()
    try:
        async with httpx.AsyncClient(base_url=service.url, timeout=10.0) as client:
            created = (
                await client.post("/admin/strategies", json={"name": "m"}, headers=ADMIN)
            ).json()
            strategy = created["strategy_id"]
            hook = f"/webhooks/{strategy}/{created['secret']}"
            wrong = f"/webhooks/{strategy}/not-the-secret"
            assert (await client.post(wrong, json={"ticker": "MNQ1!"})).status_code == 403
            nats_server.stop()
            for n in range(3):
                body = json.dumps({"ticker": "MNQ1!", "action": "buy", "time": f"t-{n}"})
                assert (await client.post(hook, content=body)).status_code == 202
            during = await _metrics(client)
            assert during[("phalanx_outbox_pending", "", "")] == 3
            assert during[("phalanx_signals_total", strategy, "queued")] == 3
            assert during[("phalanx_signals_total", strategy, "invalid-password")] == 1
            assert during[("phalanx_nats_connected", "", "")] == 0
            ready = await client.get("/readyz")  # the outbox keeps accepting: still ready
            assert ready.status_code == 200
            assert ready.json()["checks"] == {"nats": False}
            nats_server.restart()

            async def drained() -> bool:
                now = await _metrics(client)
                return now[("phalanx_outbox_pending", "", "")] == 0

            await eventually(drained, timeout=30, what="the outbox drained")
            after = await _metrics(client)
            assert after[("phalanx_nats_connected", "", "")] == 1
            assert after[("phalanx_nats_reconnects_total", "", "")] >= 1
    finally:
        await service.stop()
