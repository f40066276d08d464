"""NATS down: the webhook answers 503 ``service-unavailable``, stores nothing, and recovers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from phalanx_common import subjects
from phalanx_common.bus import Bus
from phalanx_ingest.service import build_ingest
from phalanx_ingest.settings import IngestSettings
from phalanx_testing.servers import ServerProcess, start_nats
from phalanx_testing.waiting import eventually

pytestmark = pytest.mark.integration

ADMIN = {"Authorization": "Bearer outage-token"}


@pytest.fixture
def durable_nats(tmp_path: Path) -> Iterator[ServerProcess]:
    """A nats-server whose store survives stop/restart (it lives in ``tmp_path``)."""
    server = start_nats(store_dir=str(tmp_path / "nats"))
    try:
        yield server
    finally:
        server.stop()


async def _stored(url: str) -> int:
    bus = await Bus.connect(url, "test-inspect")
    try:
        info = await bus.js.stream_info(subjects.SIGNALS.name)
        return int(info.state.messages)
    finally:
        await bus.close()


async def test_nats_stopped_gives_503_nothing_stored_then_recovers(
    durable_nats: ServerProcess,
) -> None:
    settings = IngestSettings(
        nats_url=durable_nats.url, ingest_port=0, admin_token="outage-token", publish_timeout_s=1.0
    )
    service = await build_ingest(settings)
    await service.start()
    try:
        async with httpx.AsyncClient(base_url=service.url, timeout=10.0) as client:
            created = (
                await client.post("/admin/strategies", json={"name": "s"}, headers=ADMIN)
            ).json()
            hook = f"/webhooks/{created['strategy_id']}/{created['secret']}"
            before = await client.post(hook, json={"ticker": "MNQ1!", "action": "buy"})
            assert before.status_code == 200

            durable_nats.stop()

            async def disconnected() -> bool:
                health = await client.get("/healthz")
                return health.json()["nats_connected"] is False

            gone: bool = await eventually(disconnected, what="ingest notices NATS is gone")
            assert gone
            during = await client.post(hook, json={"ticker": "MNQ1!", "action": "sell"})

            assert during.status_code == 503
            assert during.headers["retry-after"] == "5"
            answer = during.json()
            assert answer["success"] is False
            assert answer["messageCode"] == "service-unavailable"
            assert "nothing will be traded" in answer["message"]
            assert "nats://" not in during.text
            assert "Error" not in during.text

            # A strategy not in memory cannot be ruled unknown while KV is unreachable: 503, not
            # 404, so TradingView resends instead of dropping it.
            uncached = await client.post(
                "/webhooks/not-in-memory/secret", json={"ticker": "MNQ1!", "action": "buy"}
            )
            assert uncached.status_code == 503
            assert uncached.json()["messageCode"] == "service-unavailable"

            durable_nats.restart()

            async def connected() -> bool:
                health = await client.get("/healthz")
                return health.json()["nats_connected"] is True

            back: bool = await eventually(connected, what="ingest reconnects to NATS")
            assert back
            assert await _stored(durable_nats.url) == 1  # the refused signal never arrived

            resent = await client.post(hook, json={"ticker": "MNQ1!", "action": "sell"})
            assert resent.status_code == 200
            assert "duplicate" not in resent.json()
            assert await _stored(durable_nats.url) == 2
    finally:
        await service.stop()
