"""The per-intent floor: the bare work every intent needs, measured on this machine in this run.

For ``N`` intents under ``L`` logins, all concurrent in one process (this one), each intent does
exactly four things one after the other:

1. one JetStream KV ``create`` (the intent claim; a bucket with history 1, like ``intents``);
2. one Redis Lua limiter call (the executor's own :class:`~phalanx_executor.ratelimit.RateLimiter`
   script, one login budget with the venue's two windows), one call per intent: the floor's
   limiter does not batch (``batched=False``), so the floor stays the issue's definition and
   comparable across versions, while the executor's permits share calls (ADR-0180);
3. one ``order/placeoso`` round trip over its login's authorized WebSocket to the simulator (the
   same body as the benchmark's entries, through :class:`~phalanx_tradovate.ws.TradovateSocket`);
4. one JetStream publish of an outcome-sized message (with a ``Nats-Msg-Id``, as outcomes are).

Sockets are opened and authorized before the clock starts, as the executor's are before a signal.
The floor uses its own venue users (``floorNNNN``), bucket and stream (``subjects.BENCH_FLOOR*``),
so it disturbs no scenario; each run uses fresh limiter keys, so no permit is ever refused. A
warm-up run of one intent per login precedes the measured runs. Everything a scenario does beyond
this (planning, sharding, batching, leases, the ledger, the webhook) is its overhead over the
floor: ``ratio = scenario p50 / floor p50`` for the same intent count and logins.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import msgspec
import nats
import redis.asyncio as aioredis
from nats.js.api import KeyValueConfig, StorageType, StreamConfig

from phalanx_common import subjects
from phalanx_common.bus import server_urls
from phalanx_executor.ratelimit import Budget, RateLimiter, Window
from phalanx_tradovate import wire
from phalanx_tradovate.ws import TradovateSocket

__all__ = ["FloorPool", "measure_floor"]

_CONNECTS_AT_ONCE = 25
# JetStream's request timeout for the floor's KV creates and publishes: 10,000 in flight at once
# in one process wait longer than the client's default 5 s for their acks on a busy machine, and a
# timeout there measures nothing (ADR-0172). Sockets wait up to 120 s for the same reason.
_JS_TIMEOUT_S = 120.0
# The venue's per-login windows as the executor budgets them (a little under 80/min, 5,000/h).
_WINDOWS = (Window(70, 60.0), Window(4_500, 3_600.0))


@dataclass
class _Login:
    name: str
    accounts: list[dict[str, Any]]
    socket: TradovateSocket | None = None


@dataclass
class FloorPool:
    """Venue users for the floor, one pool per accounts-per-login layout, reused across floors
    of that layout (the first ``L`` logins serve a floor with ``L`` logins)."""

    sim_url: str
    ws_url: str
    symbol: str
    pools: dict[int, list[_Login]] = field(default_factory=dict)
    created: int = 0

    async def logins(self, per_login: int, count: int) -> list[_Login]:
        """``count`` authorized logins with ``per_login`` accounts each."""
        pool = self.pools.setdefault(per_login, [])
        missing = count - len(pool)
        if missing > 0:
            pool.extend(await self._make(per_login, missing))
        return pool[:count]

    async def _make(self, per_login: int, count: int) -> list[_Login]:
        sem = asyncio.Semaphore(_CONNECTS_AT_ONCE)
        stamp = time.time_ns() // 1_000_000
        async with httpx.AsyncClient(timeout=60) as http:

            async def one(n: int) -> _Login:
                name = f"floor{per_login}x{self.created + n:05d}_{stamp}"
                password = f"pw-{name}"
                async with sem:
                    created = await http.post(
                        self.sim_url + "/admin/users",
                        json={"name": name, "password": password, "accounts": per_login},
                    )
                    created.raise_for_status()
                    token = await http.post(
                        self.sim_url + "/v1/auth/accesstokenrequest",
                        json={"name": name, "password": password, "appId": "phalanx-bench"},
                    )
                    token.raise_for_status()
                    login = _Login(name, list(created.json()["accounts"]))
                    login.socket = TradovateSocket(
                        self.ws_url, str(token.json()["accessToken"]), request_timeout_s=120.0
                    )
                    await login.socket.connect()
                return login

            made = await asyncio.gather(*(one(n) for n in range(count)))
        self.created += count
        return list(made)

    async def close(self) -> None:
        """Close every socket of the pool (again: a no-op); a later floor makes new logins."""
        for pool in self.pools.values():
            for login in pool:
                if login.socket is not None:
                    await login.socket.close()
        self.pools.clear()


def _entry(account: dict[str, Any], symbol: str, cl_ord_id: str) -> wire.PlaceOso:
    return wire.PlaceOso(
        accountSpec=str(account["name"]),
        accountId=int(account["id"]),
        action="Buy",
        symbol=symbol,
        orderQty=1,
        orderType="Limit",
        price=Decimal(21000),
        clOrdId=cl_ord_id,
        bracket1=wire.RestrainedOrderVersion(
            action="Sell", orderType="Limit", price=Decimal(21100)
        ),
        bracket2=wire.RestrainedOrderVersion(
            action="Sell", orderType="Stop", stopPrice=Decimal(20900)
        ),
    )


class _Record(msgspec.Struct):
    """About the size of an intent claim / an order outcome."""

    type: str
    intent_id: str
    signal_id: str
    account_id: int
    login_id: str
    state: str
    order_id: int = 0
    claimed_ns: int = 0
    note: str = "placeoso entry with an absolute take-profit and stop-loss bracket"


async def _run_once(
    kv: Any,
    js: Any,
    limiter: RateLimiter,
    logins: list[_Login],
    intents: int,
    symbol: str,
    tag: str,
) -> float:
    per_login = math.ceil(intents / len(logins))
    encode = msgspec.json.encode

    async def one(n: int) -> None:
        login = logins[n // per_login]
        account = login.accounts[n % per_login]
        intent_id = f"{tag}.{n}"
        record = _Record("IntentClaimed", intent_id, tag, int(account["id"]), login.name, "claimed")
        record.claimed_ns = time.time_ns()
        await kv.create(intent_id, encode(record))
        await limiter.try_acquire([Budget(f"{tag}:{login.name}", _WINDOWS)])
        assert login.socket is not None
        placed = await login.socket.place_oso(_entry(account, symbol, intent_id))
        record.type, record.state, record.order_id = "OrderAccepted", "placed", placed.orderId or 0
        await js.publish(
            f"bench-floor.{account['id']}", encode(record), headers={"Nats-Msg-Id": intent_id}
        )

    started = time.perf_counter()
    done = await asyncio.gather(*(one(n) for n in range(intents)), return_exceptions=True)
    seconds = time.perf_counter() - started
    failed = [r for r in done if isinstance(r, BaseException)]
    if failed:  # after every intent has ended: none is left running behind the error
        raise RuntimeError(f"{len(failed)} of {intents} floor intents failed: {failed[0]!r}")
    return seconds


async def measure_floor(
    pool: FloorPool, nats_url: str, redis_url: str, intents: int, logins: int, runs: int = 3
) -> dict[str, Any]:
    """Measure the floor for ``intents`` intents under ``logins`` logins; seconds per run."""
    per_login = math.ceil(intents / logins)
    users = await pool.logins(per_login, logins)
    nc = await nats.connect(server_urls(nats_url))
    # The executor's pool size (blocking, 64 connections), with time to wait for a connection
    # while thousands of intents queue for one.
    redis = aioredis.Redis(
        connection_pool=aioredis.BlockingConnectionPool.from_url(
            redis_url, max_connections=64, timeout=300
        )
    )
    cpu_before = time.process_time()
    try:
        js = nc.jetstream(timeout=_JS_TIMEOUT_S)
        bucket = subjects.BENCH_FLOOR_BUCKET
        stream = subjects.BENCH_FLOOR_STREAM
        await js.add_stream(
            StreamConfig(
                name=stream.name,
                subjects=list(stream.subjects),
                storage=StorageType.FILE,
                duplicate_window=stream.duplicate_window_s,
            )
        )
        kv = await js.create_key_value(
            KeyValueConfig(bucket=bucket.name, history=1, storage=StorageType.FILE)
        )
        limiter = RateLimiter(redis, prefix="phalanx:bench-floor", batched=False)
        stamp = time.time_ns()
        await _run_once(kv, js, limiter, users, len(users), pool.symbol, f"w{stamp}")
        cpu_before = time.process_time()
        seconds = [
            await _run_once(kv, js, limiter, users, intents, pool.symbol, f"r{run}x{stamp}")
            for run in range(runs)
        ]
        cpu = time.process_time() - cpu_before
    finally:
        await redis.aclose()
        await nc.close()
    return {
        "intents": intents,
        "logins": logins,
        "runs_s": [round(s, 4) for s in seconds],
        "p50_s": round(statistics.median(seconds), 4),
        "min_s": round(min(seconds), 4),
        "cpu_s_per_run": round(cpu / runs, 3),
    }
