"""Fixtures: a real ingest service on a free port over a real nats-server, and HTTP clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from phalanx_common.bus import Bus
from phalanx_ingest.service import IngestService, build_ingest
from phalanx_ingest.settings import IngestSettings

ADMIN_TOKEN = "test-admin-token"
PUBLIC_BASE_URL = "https://hooks.example.test"


def ingest_settings(nats_url: str, outbox_dir: Path | None = None, **extra: Any) -> IngestSettings:
    """Settings for a test ingest service on a free port (with an outbox when a dir is given)."""
    return IngestSettings(
        nats_url=nats_url,
        ingest_port=0,
        admin_token=ADMIN_TOKEN,
        public_base_url=PUBLIC_BASE_URL,
        publish_timeout_s=2.0,
        ingest_outbox_dir=str(outbox_dir) if outbox_dir is not None else "",
        **extra,
    )


@pytest_asyncio.fixture
async def ingest(nats_url: str, tmp_path: Path) -> AsyncIterator[IngestService]:
    """A started ingest service, configured as deployed: with a durable outbox."""
    service = await build_ingest(ingest_settings(nats_url, tmp_path / "outbox"))
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


@pytest_asyncio.fixture
async def client(ingest: IngestService) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the service, without credentials."""
    async with httpx.AsyncClient(base_url=ingest.url, timeout=10.0) as http:
        yield http


@pytest.fixture
def admin_headers() -> dict[str, str]:
    """The admin bearer header."""
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest_asyncio.fixture
async def bus(nats_url: str) -> AsyncIterator[Bus]:
    """A separate NATS connection for the test to inspect streams and KV."""
    connection = await Bus.connect(nats_url, "test")
    await connection.ensure_topology()
    try:
        yield connection
    finally:
        await connection.close()


StrategyFactory = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def make_strategy(client: httpx.AsyncClient) -> StrategyFactory:
    """Create strategies through the admin API; each call returns the 201 body."""

    async def _create(
        allowed_tickers: list[str] | None = None, name: str = "trend"
    ) -> dict[str, Any]:
        response = await client.post(
            "/admin/strategies",
            json={"name": name, "allowed_tickers": allowed_tickers or []},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    return _create


@pytest_asyncio.fixture
async def strategy(make_strategy: StrategyFactory) -> dict[str, Any]:
    """A strategy that allows any ticker (the 201 body: id, secret, webhook_url)."""
    return await make_strategy()


@pytest.fixture
def hook(strategy: dict[str, Any]) -> str:
    """Path of the ``strategy`` fixture's webhook."""
    return f"/webhooks/{strategy['strategy_id']}/{strategy['secret']}"
