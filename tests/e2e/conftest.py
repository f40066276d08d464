"""Fixtures of the end-to-end tests: the whole system in this test's event loop."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from phalanx_bench.inprocess import RunningSystem, running_system


@pytest_asyncio.fixture
async def system(nats_url: str, redis_url: str) -> AsyncIterator[RunningSystem]:
    """Simulator, auth, ingest, executor and ledger over a fresh NATS and Redis."""
    async with running_system(nats_url, redis_url) as running:
        yield running
