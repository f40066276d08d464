"""The executor's composition root (ADR-0166), over a real nats-server and redis-server."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from phalanx_common.bus import Bus
from phalanx_common.clock import LiveClock
from phalanx_executor.metrics import ExecutorMetrics
from phalanx_executor.settings import ExecutorSettings
from phalanx_executor.wiring import build_trading

pytestmark = pytest.mark.integration


async def test_the_worker_the_pool_and_the_view_spend_one_budget_book(
    nats_url: str, redis_url: str
) -> None:
    settings = ExecutorSettings(nats_url=nats_url, redis_url=redis_url, shards=2)
    bus = await Bus.connect(nats_url, "wiring-test")
    redis = aioredis.Redis.from_url(redis_url)
    try:
        await bus.ensure_topology()
        trading = await build_trading(
            bus=bus,
            redis=redis,
            clock=LiveClock(),
            settings=settings,
            metrics=ExecutorMetrics(),
            owner="wiring-test",
            owns=lambda _login: True,
        )
        try:
            assert trading.worker.calls is trading.calls
            assert trading.calls.book is trading.book
            # the one book carries the sync-IP budget the pool's syncs spend (ADR-0056)
            sync = trading.book.for_request("login-1", "user/syncrequest")
            assert len(sync) > len(trading.book.for_request("login-1"))
        finally:
            for mirror in trading.mirrors.all():
                await mirror.stop()
            await trading.pool.close()
    finally:
        await redis.aclose()
        await bus.close()
