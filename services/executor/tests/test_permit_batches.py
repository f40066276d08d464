"""Permit requests that arrive together go to Redis in one script call (ADR-0180), real Redis.

The batch must answer exactly as the same requests made one after another would: every window
of every budget a request draws on must have room for its cost, a denied request records
nothing, a blocked budget or an impossible cost concerns only its own request, and when Redis
fails every request of the call gets the error (fail closed).
"""

from __future__ import annotations

import asyncio
import random

import pytest
import redis.asyncio as aioredis
import redis.exceptions
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from phalanx_executor.permit_batches import MAX_KEYS, MAX_REQUESTS
from phalanx_executor.ratelimit import Budget, RateLimiter, Window
from phalanx_executor.service import connect_redis
from phalanx_testing.servers import start_redis

pytestmark = pytest.mark.integration

Request = tuple[tuple[Budget, ...], int]


async def _script_calls(client: aioredis.Redis) -> int:
    """EVAL and EVALSHA calls the server has run so far (its command statistics)."""
    stats = await client.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("eval", "evalsha"))


def _model(requests: list[Request]) -> list[bool | None]:
    """Request by request, one after another: granted (True), denied (False), or never
    grantable (None: its cost exceeds a window's limit); a denied request records nothing."""
    used: dict[tuple[str, float], int] = {}
    out: list[bool | None] = []
    for budgets, cost in requests:
        windows = [(b.key, w) for b in budgets for w in b.windows]
        if any(cost > w.limit for _, w in windows):
            out.append(None)
            continue
        room = all(used.get((k, w.seconds), 0) + cost <= w.limit for k, w in windows)
        if room:
            for k, w in windows:
                used[(k, w.seconds)] = used.get((k, w.seconds), 0) + cost
        out.append(room)
    return out


async def _outcome(limiter: RateLimiter, budgets: tuple[Budget, ...], cost: int) -> float | None:
    try:
        return await limiter.try_acquire(budgets, cost)
    except ValueError:
        return None


def _granted(outcomes: list[float | None]) -> list[bool | None]:
    return [None if o is None else o == 0.0 for o in outcomes]


async def test_two_hundred_logins_at_once_take_far_fewer_script_calls_than_requests(
    redis_url: str,
) -> None:
    client = await connect_redis(redis_url)  # the service's pool: 64 connections, blocking
    limiter = RateLimiter(client)
    budgets = [Budget(f"login:{i}", (Window(70, 60), Window(4500, 3600))) for i in range(200)]
    try:
        before = await _script_calls(client)
        waits = await asyncio.gather(*(limiter.try_acquire([b]) for b in budgets))
        calls = await _script_calls(client) - before
    finally:
        await client.aclose()
    assert waits == [0.0] * 200
    assert calls <= 4, f"{calls} script calls for 200 permits"


async def test_an_unbatched_limiter_makes_one_script_call_per_request(redis_url: str) -> None:
    # The benchmark's floor: one limiter call per intent, as the floor is defined.
    client = await connect_redis(redis_url)
    limiter = RateLimiter(client, prefix="floor", batched=False)
    budgets = [Budget(f"login:{i}", (Window(2, 60),)) for i in range(50)]
    try:
        before = await _script_calls(client)
        waits = await asyncio.gather(*(limiter.try_acquire([b]) for b in budgets * 3))
        calls = await _script_calls(client) - before
    finally:
        await client.aclose()
    assert calls == 150
    assert sorted(w == 0.0 for w in waits) == [False] * 50 + [True] * 100


@pytest.mark.parametrize(("limit", "n"), [(7, 40), (70, 300), (256, 600)])
async def test_concurrent_requests_on_one_budget_grant_exactly_its_limit(
    redis_url: str, limit: int, n: int
) -> None:
    client = aioredis.from_url(redis_url)
    limiter = RateLimiter(client)
    budget = Budget("login:one", (Window(limit, 60),))
    try:
        waits = await asyncio.gather(*(limiter.try_acquire([budget]) for _ in range(n)))
    finally:
        await client.aclose()
    # in arrival order: the first `limit` requests get the permits, the rest wait
    assert [w == 0.0 for w in waits] == [True] * limit + [False] * (n - limit)
    assert all(0 < w <= 60.001 for w in waits[limit:])


LOGINS = [Budget(f"login:{i}", (Window(3 + i, 60), Window(5 + 2 * i, 3600))) for i in range(5)]
IP = Budget("ip:shared", (Window(25, 120),))


def _mix(seed: int, n: int) -> list[Request]:
    """Logins alone or with the shared IP budget (in either order), costs 1-3."""
    rng = random.Random(seed)
    out: list[Request] = []
    for _ in range(n):
        login = rng.choice(LOGINS)
        budgets = rng.choice([(login,), (login, IP), (IP, login)])
        out.append((budgets, rng.choice([1, 1, 1, 2, 3])))
    return out


@pytest.mark.parametrize("seed", range(6))
async def test_a_concurrent_mix_of_shared_and_separate_budgets_matches_sequential_calls(
    redis_url: str, seed: int
) -> None:
    requests = _mix(seed, 300)  # more than one call's worth: the order holds across calls
    concurrent = aioredis.from_url(redis_url)
    sequential = aioredis.from_url(redis_url)
    batched = RateLimiter(concurrent, prefix="rl:batched")
    one_by_one = RateLimiter(sequential, prefix="rl:sequential")
    try:
        before = await _script_calls(concurrent)
        together = await asyncio.gather(*(_outcome(batched, b, c) for b, c in requests))
        calls = await _script_calls(concurrent) - before
        alone = [await _outcome(one_by_one, b, c) for b, c in requests]
    finally:
        await concurrent.aclose()
        await sequential.aclose()
    assert calls < len(requests) / 10
    assert _granted(together) == _granted(alone) == _model(requests)
    assert True in _granted(together)
    assert False in _granted(together)
    assert all(0 < w <= 3600.001 for w in together if w)


async def test_a_blocked_budget_and_an_impossible_cost_in_a_batch_concern_only_their_request(
    redis_url: str,
) -> None:
    client = aioredis.from_url(redis_url)
    other_replica = aioredis.from_url(redis_url)
    limiter = RateLimiter(client)
    blocked = Budget("login:blocked", (Window(10, 60),))
    small = Budget("login:small", (Window(2, 60),))
    free = Budget("login:free", (Window(10, 60),))
    ip = Budget("ip:x", (Window(3, 60),))
    try:
        # a block this replica does not know of (no local shortcut): the batch must see it
        await RateLimiter(other_replica).block(blocked, 30)
        assert await limiter.try_acquire([free]) == 0.0  # the script is loaded: one call next
        before = await _script_calls(client)
        outcomes = await asyncio.gather(
            _outcome(limiter, (ip, blocked), 1),  # blocked: takes nothing from the IP
            _outcome(limiter, (small,), 3),  # never grantable
            _outcome(limiter, (small,), 2),
            _outcome(limiter, (ip, free), 1),
            _outcome(limiter, (ip, blocked), 1),
            _outcome(limiter, (free, ip), 2),
            _outcome(limiter, (ip, free), 1),  # the IP's 3 are taken
            _outcome(limiter, (small,), 1),  # the minute's 2 are taken
        )
        calls = await _script_calls(client) - before
    finally:
        await client.aclose()
        await other_replica.aclose()
    assert calls == 1
    assert _granted(outcomes) == [False, None, True, True, False, True, False, False]
    blocked_waits = [outcomes[0], outcomes[4]]
    full_waits = [outcomes[6], outcomes[7]]
    assert all(o is not None and 25 < o <= 30 for o in blocked_waits), blocked_waits
    assert all(o is not None and 50 < o <= 60.001 for o in full_waits), full_waits


async def test_when_redis_is_down_every_waiter_gets_the_error_and_later_calls_work_again() -> None:
    server = start_redis()
    client = aioredis.from_url(server.url + "/0", socket_connect_timeout=0.5)
    limiter = RateLimiter(client)
    budgets = [Budget(f"login:{i}", (Window(5, 60),)) for i in range(50)]
    try:
        assert await limiter.try_acquire([budgets[0]]) == 0.0
        server.halt()
        outcomes = await asyncio.gather(
            *(limiter.try_acquire([b]) for b in budgets), return_exceptions=True
        )
        assert all(isinstance(o, redis.exceptions.ConnectionError) for o in outcomes), outcomes
        server.start_again()
        # the limiter is not stuck: the next requests are answered again, by a Redis that came
        # back empty, so every window counts as full until it has passed (ADR-0056)
        waits = await asyncio.gather(*(limiter.try_acquire([b]) for b in budgets))
        assert all(0 < w <= 60.001 for w in waits), waits
    finally:
        await client.aclose()
        server.stop()


async def test_a_waiter_that_gives_up_leaves_the_others_of_its_batch_answered(
    redis_url: str,
) -> None:
    client = aioredis.from_url(redis_url)
    limiter = RateLimiter(client)
    budget = Budget("login:patient", (Window(2, 60),))
    try:
        impatient = asyncio.ensure_future(limiter.try_acquire([budget]))
        patient = [asyncio.ensure_future(limiter.try_acquire([budget])) for _ in range(3)]
        await asyncio.sleep(0)  # both are queued
        impatient.cancel()
        waits = await asyncio.gather(*patient)
    finally:
        await client.aclose()
    # the cancelled request was dropped before the call went out: it took nothing
    assert [w == 0.0 for w in waits] == [True, True, False]


@pytest.mark.parametrize(("budgets_each", "n"), [(1, 600), (12, 200)])
async def test_a_burst_goes_out_in_calls_of_at_most_the_cap_in_requests_and_keys(
    redis_url: str, budgets_each: int, n: int
) -> None:
    client = aioredis.from_url(redis_url)
    limiter = RateLimiter(client)
    window = (Window(5, 60), Window(100, 3600))
    requests = [[Budget(f"login:{i}:{j}", window) for j in range(budgets_each)] for i in range(n)]
    keys_each = budgets_each * (len(window) + 1)  # its windows and its blocks
    per_call = min(MAX_REQUESTS, MAX_KEYS // keys_each)
    try:
        assert await limiter.try_acquire([Budget("warm", window)]) == 0.0
        before = await _script_calls(client)
        waits = await asyncio.gather(*(limiter.try_acquire(r) for r in requests))
        calls = await _script_calls(client) - before
    finally:
        await client.aclose()
    assert waits == [0.0] * n
    assert calls == -(-n // per_call)  # every call full but the last


async def test_after_redis_lost_its_data_every_request_of_a_batch_counts_the_unseen_requests(
    redis_url: str,
) -> None:
    client = aioredis.from_url(redis_url)
    limiter = RateLimiter(client)
    seen = Budget("login:seen", (Window(5, 60),))
    try:
        assert await limiter.try_acquire([seen]) == 0.0  # the limiter knows this Redis
        await client.flushall()  # ...which restarts empty
        budgets = [seen] + [Budget(f"login:{i}", (Window(5, 60),)) for i in range(30)]
        waits = await asyncio.gather(*(limiter.try_acquire([b]) for b in budgets))
        again = await asyncio.gather(*(limiter.try_acquire([b]) for b in budgets))
    finally:
        await client.aclose()
    # the generation check is once per call, and the loss it finds holds for every request
    assert all(55 < w <= 60.001 for w in waits + again), waits + again


async def test_a_batch_s_redis_call_is_in_no_caller_s_trace(redis_url: str) -> None:
    """The call serves many callers: it must not show up under whichever asked first (nor its
    later calls under that caller's span, long after it ended)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    client = aioredis.from_url(redis_url)
    RedisInstrumentor().instrument_client(client, tracer_provider=provider)
    limiter = RateLimiter(client)
    budgets = [Budget(f"login:{i}", (Window(5, 60),)) for i in range(300)]

    async def take(budget: Budget) -> float:
        with tracer.start_as_current_span(f"permit wait {budget.key}"):
            return await limiter.try_acquire([budget])

    try:
        waits = await asyncio.gather(*(take(b) for b in budgets))
    finally:
        RedisInstrumentor().uninstrument_client(client)
        await client.aclose()
        provider.shutdown()
    assert waits == [0.0] * 300
    spans = exporter.get_finished_spans()
    callers = {s.context.span_id for s in spans if s.name.startswith("permit wait")}
    redis_calls = [s for s in spans if not s.name.startswith("permit wait")]
    assert len(callers) == 300
    assert redis_calls  # the instrumented client did trace its calls
    assert [s.name for s in redis_calls if s.parent and s.parent.span_id in callers] == []
