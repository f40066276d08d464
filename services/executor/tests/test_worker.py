"""The batch worker over real NATS KV, a real simulator, and real (or really absent) Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from nats.js.errors import KeyNotFoundError
from redis.exceptions import ConnectionError as RedisConnectionError

from phalanx_common import ids, subjects
from phalanx_common.bus import Bus
from phalanx_common.clock import LiveClock
from phalanx_common.codec import decode
from phalanx_common.events import OrderIntent
from phalanx_common.records import IntentRecord, TokenRecord
from phalanx_executor.pool import ConnectionPool
from phalanx_executor.ratelimit import RateLimiter
from phalanx_executor.venue_events import VenueEventSink
from phalanx_executor.worker import BatchWorker
from phalanx_sim import Simulator
from phalanx_testing.servers import free_port

pytestmark = pytest.mark.integration


@dataclass
class Venue:
    sim: Simulator
    token: TokenRecord
    account_id: int
    account_spec: str


@pytest_asyncio.fixture
async def venue() -> AsyncIterator[Venue]:
    async with Simulator(port=0) as sim:
        user = sim.create_user("trader", "pw", accounts=1)
        sim.set_price("MESZ6", 6000)
        async with httpx.AsyncClient() as http:
            resp = await http.post(
                sim.rest_url + "/auth/accesstokenrequest", json={"name": "trader", "password": "pw"}
            )
            body = resp.json()
        token = TokenRecord(
            login_id="trader",
            user_id=user.userId,
            access_token=body["accessToken"],
            expiration_time=body["expirationTime"],
        )
        account = user.accounts[0]
        yield Venue(sim, token, int(account["id"]), str(account["name"]))


def _intent(venue: Venue, signal: str = "s1") -> OrderIntent:
    return OrderIntent(
        intent_id=ids.intent_id(signal, venue.account_id),
        signal_id=signal,
        strategy_id="strat",
        account_id=venue.account_id,
        account_spec=venue.account_spec,
        login_id="trader",
        kind="entry",
        action="Buy",
        symbol="MESZ6",
        quantity=1,
    )


async def _worker(bus: Bus, venue: Venue, redis_url: str) -> tuple[BatchWorker, ConnectionPool]:
    sink = VenueEventSink(bus, LiveClock(), lambda login: pool.get(login))
    pool = ConnectionPool(
        venue.sim.ws_url,
        token_for=lambda login: venue.token if login == "trader" else None,
        on_props=sink.submit,
        on_snapshot=sink.ingest_snapshot,
        max_sockets=10,
    )
    worker = BatchWorker(
        bus=bus,
        intents=await bus.key_value(subjects.Buckets.INTENTS),
        pool=pool,
        limiter=RateLimiter(aioredis.from_url(redis_url, socket_connect_timeout=0.5)),
        sink=sink,
        clock=LiveClock(),
        owner="test",
        login_windows=((70, 60),),
        ip_windows=(),
        egress_ip="default",
    )
    return worker, pool


async def test_an_intent_is_placed_once_even_when_executed_twice(
    nats_url: str, redis_url: str, venue: Venue
) -> None:
    bus = await Bus.connect(nats_url, "t")
    await bus.ensure_topology()
    worker, pool = await _worker(bus, venue, redis_url)
    try:
        first = await worker.execute(_intent(venue))
        second = await worker.execute(_intent(venue))
        assert (first.state, second.state) == ("accepted", "duplicate")
        assert venue.sim.state.counters["placeorder"] + venue.sim.state.counters["placeoso"] == 1
        entry = await (await bus.key_value(subjects.Buckets.INTENTS)).get(_intent(venue).intent_id)
        record = decode(entry.value or b"", IntentRecord)
        assert record.state == "accepted"
        assert record.order_id is not None
    finally:
        await pool.close()
        await bus.close()


async def test_without_redis_nothing_is_sent_and_the_claim_is_released(
    nats_url: str, venue: Venue
) -> None:
    bus = await Bus.connect(nats_url, "t")
    await bus.ensure_topology()
    worker, pool = await _worker(bus, venue, f"redis://127.0.0.1:{free_port()}/0")
    intents = await bus.key_value(subjects.Buckets.INTENTS)
    try:
        with pytest.raises(RedisConnectionError):
            await worker.execute(_intent(venue))
        assert venue.sim.state.counters["placeorder"] == 0
        assert venue.sim.state.counters["placeoso"] == 0
        with pytest.raises(KeyNotFoundError):  # released: a redelivery may claim it again
            await intents.get(_intent(venue).intent_id)
    finally:
        await pool.close()
        await bus.close()
