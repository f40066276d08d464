"""Fixtures: a real ledger service on a free port over a real nats-server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from phalanx_common.bus import Bus


@pytest_asyncio.fixture
async def bus(nats_url: str) -> AsyncIterator[Bus]:
    """A NATS connection for the test to publish fills and orders with."""
    connection = await Bus.connect(nats_url, "test")
    await connection.ensure_topology()
    try:
        yield connection
    finally:
        await connection.close()
