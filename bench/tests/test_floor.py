"""The floor does its four operations once per intent, against a real simulator, NATS and Redis."""

from __future__ import annotations

import httpx
import nats
from redis.asyncio import Redis

from phalanx_bench.floor import FloorPool, measure_floor
from phalanx_bench.seed import front_month
from phalanx_common import subjects
from phalanx_sim import running_simulator


async def test_every_intent_claims_permits_places_and_publishes(
    nats_url: str, redis_url: str
) -> None:
    async with running_simulator() as sim, httpx.AsyncClient(base_url=sim.url) as http:
        await http.post("/admin/prices", json={"symbol": front_month(), "price": 21000})
        pool = FloorPool(sim.url, sim.ws_url, front_month())
        try:
            floor = await measure_floor(pool, nats_url, redis_url, intents=6, logins=3, runs=2)
            reused = [login.name for login in await pool.logins(2, 3)]
            first = [login.name for login in pool.pools[2]]
        finally:
            await pool.close()
        stats = (await http.get("/admin/stats")).json()
        cl_ord_ids = [rec.new_command.command.clOrdId for rec in sim.state.orders.values()]

    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        kv = await js.key_value(subjects.BENCH_FLOOR_BUCKET.name)
        keys = await kv.keys()
        published = (await js.stream_info(subjects.BENCH_FLOOR_STREAM.name)).state.messages
    finally:
        await nc.close()
    redis = Redis.from_url(redis_url)
    try:
        windows = [k async for k in redis.scan_iter("phalanx:bench-floor:{r*")]
    finally:
        await redis.aclose()

    measured = [k for k in keys if k.startswith("r")]
    assert floor["intents"] == 6
    assert floor["logins"] == 3
    assert len(floor["runs_s"]) == 2
    assert floor["p50_s"] > 0
    assert len(measured) == 12  # 2 runs x 6 intents, each claimed once
    assert len(keys) == 12 + 3  # plus the warm-up: one intent per login
    assert published == 15
    assert stats["byEndpoint"]["order/placeoso"] == 15
    assert sorted(c for c in cl_ord_ids if c and c.startswith("r")) == sorted(measured)
    # 2 runs x 3 logins, each login budget with its minute and hour window
    assert len(windows) == 2 * 3 * 2
    assert reused == first  # a second floor of the layout reuses the logins
