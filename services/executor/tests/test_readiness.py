"""An executor replica is ready only while NATS is connected and Redis answers (real servers)."""

from __future__ import annotations

import httpx
import pytest

from phalanx_executor.service import build_executor
from phalanx_executor.settings import ExecutorSettings
from phalanx_testing.servers import start_redis
from phalanx_testing.waiting import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


async def test_readyz_turns_503_while_redis_is_away_and_healthz_stays_200(nats_url: str) -> None:
    redis_server = start_redis()
    try:
        settings = ExecutorSettings(
            nats_url=nats_url, redis_url=redis_server.url + "/0", executor_port=0, shards=2
        )
        service = await build_executor(settings)
        await service.start()
        try:
            async with httpx.AsyncClient(base_url=service.url, timeout=10) as http:
                ready = await http.get("/readyz")
                assert ready.status_code == 200, ready.text
                assert ready.json()["checks"] == {"nats": True, "redis": True, "started": True}
                redis_server.proc.terminate()
                redis_server.proc.wait(timeout=5)

                async def unready() -> bool:
                    return (await http.get("/readyz")).status_code == 503

                await eventually(unready, what="503 while Redis is away")
                body = (await http.get("/readyz")).json()
                assert body["status"] == "not-ready"
                assert body["checks"]["redis"] is False
                assert body["checks"]["nats"] is True
                assert (await http.get("/healthz")).status_code == 200  # alive all the same
                redis_server.restart()

                async def ready_again() -> bool:
                    return (await http.get("/readyz")).status_code == 200

                await eventually(ready_again, timeout=20, what="200 once Redis is back")
        finally:
            await service.stop()
    finally:
        redis_server.stop()
