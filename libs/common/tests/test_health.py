"""Readiness over real NATS and Redis: 503 naming the missing dependency, 200 once it is back."""

from __future__ import annotations

import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI

from phalanx_common.bus import Bus
from phalanx_common.health import Readiness, add_readiness_route, redis_check
from phalanx_testing.servers import ServerProcess, free_port
from phalanx_testing.waiting import eventually

pytestmark = pytest.mark.integration


def _client(readiness: Readiness) -> httpx.AsyncClient:
    app = FastAPI()
    add_readiness_route(app, readiness)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_readyz_follows_the_nats_connection(nats_server: ServerProcess) -> None:
    bus = await Bus.connect(nats_server.url, "readiness-test")
    readiness = Readiness().add("nats", lambda: bool(bus.nc.is_connected))
    try:
        async with _client(readiness) as http:
            ready = await http.get("/readyz")
            assert ready.status_code == 200
            assert ready.json() == {"status": "ready", "checks": {"nats": True}}
            nats_server.proc.terminate()  # the server goes away; its data stays for restart
            nats_server.proc.wait(timeout=10)

            async def unready() -> bool:
                return (await http.get("/readyz")).status_code == 503

            await eventually(unready, what="503 once NATS is gone")
            assert (await http.get("/readyz")).json() == {
                "status": "not-ready",
                "checks": {"nats": False},
            }
            nats_server.restart()

            async def ready_again() -> bool:
                return (await http.get("/readyz")).status_code == 200

            await eventually(ready_again, timeout=20, what="200 once NATS is back")
    finally:
        await bus.close()


async def test_redis_check_needs_an_answering_redis(redis_url: str) -> None:
    up = aioredis.from_url(redis_url)
    down = aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    readiness = Readiness().add("redis", redis_check(up)).add("other", redis_check(down))
    try:
        async with _client(readiness) as http:
            resp = await http.get("/readyz")
        assert resp.status_code == 503
        assert resp.json()["checks"] == {"redis": True, "other": False}
    finally:
        await up.aclose()
        await down.aclose()


async def test_an_optional_check_is_reported_without_making_the_service_unready() -> None:
    readiness = Readiness().add("core", lambda: True).add("extra", lambda: False, required=False)
    async with _client(readiness) as http:
        resp = await http.get("/readyz")
    assert resp.status_code == 200
    assert resp.json()["checks"] == {"core": True, "extra": False}
