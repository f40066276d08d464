"""The ledger is not ready until its replay is done; its metrics read the projection."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from phalanx_common import subjects
from phalanx_common.bus import Bus
from phalanx_common.events import FillReceived
from phalanx_ledger.service import build_ledger
from phalanx_ledger.settings import LedgerSettings

pytestmark = pytest.mark.integration


async def test_not_ready_before_the_replay_then_ready_with_fills_counted(
    nats_url: str, bus: Bus
) -> None:
    await bus.ensure_topology()
    fill = FillReceived(
        event_id="fill-1",
        ts_event=1,
        ts_init=1,
        fill_id=1,
        order_id=10,
        account_id=11,
        contract_id=3570918,
        symbol="MNQZ5",
        action="Buy",
        qty=1,
        price=Decimal("100"),
    )
    await bus.publish(subjects.fills_subject(11), fill)
    service = await build_ledger(LedgerSettings(nats_url=nats_url, ledger_port=0))
    transport = httpx.ASGITransport(app=service.app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://ledger") as http:
            before = await http.get("/readyz")  # built, the replay not started
            assert before.status_code == 503
            assert before.json()["checks"] == {"nats": True, "replay": False}
            assert (await http.get("/healthz")).status_code == 200  # alive all the same
            await service.start()  # returns once the replay reached the stream's end
            after = await http.get("/readyz")
            assert after.status_code == 200
            assert after.json() == {"status": "ready", "checks": {"nats": True, "replay": True}}
            text = (await http.get("/metrics")).text
    finally:
        await service.stop()
    samples = {
        (s.name, s.labels.get("result", "")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("phalanx_ledger_fills_total", "applied")] == 1
    assert samples[("phalanx_ledger_fills_total", "duplicate")] == 0
