"""Intent claims that expire (ADR-0185), against real NATS, Redis and the simulator.

The ``intents`` bucket keeps a claim for ``INTENT_CLAIM_TTL_S`` (3 days) after its last change.
Here the bucket is created with a one-second TTL first (the rig's ``ensure_topology`` then binds
it as it is), so a claim expires within the test. The clocks are real, except the one the
account queue judges "long past its deadline" by, moved ahead by hand.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from nats.js.errors import KeyDeletedError, KeyNotFoundError
from nats.js.kv import KeyValue

from phalanx_common import subjects
from phalanx_common.bus import Bus
from phalanx_common.clock import LiveClock
from phalanx_common.events import OrderIntent
from phalanx_executor.account_order import SETTLED_S, AccountOrder
from phalanx_executor.gates import Gates
from phalanx_executor.intents import IntentStore
from phalanx_executor.ratelimit import RateLimiter
from phalanx_executor.service import build_executor
from phalanx_executor.settings import ExecutorSettings
from phalanx_executor.worker import BatchWorker, WorkerSettings
from phalanx_sim import Simulator
from phalanx_testing.clock import FakeClock
from phalanx_testing.waiting import eventually

pytestmark = pytest.mark.integration

SYMBOL = "MESZ6"  # the rig's (conftest.SYMBOL)
TTL_S = 1.0
WINDOWS = ((70, 60.0),)


@pytest_asyncio.fixture
async def rig(nats_url: str, redis_url: str, make_budget_rig: Any) -> AsyncIterator[Any]:
    bus = await Bus.connect(nats_url, "setup")
    await bus.key_value(dataclasses.replace(subjects.Buckets.INTENTS, ttl_s=TTL_S))
    await bus.close()
    async with Simulator(port=0) as sim:
        made = await make_budget_rig(nats_url, redis_url, sim, accounts=1, login_windows=WINDOWS)
        try:
            yield made
        finally:
            await made.close()


def _entry(rig: Any, seq: int, deadline_s: float) -> OrderIntent:
    account_id, spec = rig.accounts[0]
    return OrderIntent(
        intent_id=f"sig{seq}-{account_id}",
        signal_id=f"sig{seq}",
        strategy_id="strat",
        account_id=account_id,
        account_spec=spec,
        login_id=rig.login,
        kind="entry",
        action="Buy",
        symbol=SYMBOL,
        quantity=1,
        allow_add=True,
        not_after_ns=time.time_ns() + int(deadline_s * 1e9),
        signal_seq=seq,
    )


def _orders(rig: Any) -> int:
    book = rig.sim.state.books.get(rig.accounts[0][0])
    if book is None:
        return 0
    return len([r for r in book.orders.values() if getattr(r, "parentId", None) is None])


async def _claims(rig: Any) -> KeyValue:
    claims: KeyValue = await rig.bus.key_value(subjects.Buckets.INTENTS)
    return claims


async def _claim_gone(rig: Any, intent_id: str) -> bool:
    try:
        await (await _claims(rig)).get(intent_id)
    except (KeyNotFoundError, KeyDeletedError):
        return True
    return False


async def test_an_intent_delivered_again_after_its_claim_expired_sends_nothing(
    rig: Any,
) -> None:
    intent = _entry(rig, 1, deadline_s=1.5)
    assert (await rig.worker.execute(intent)).state == "accepted"
    assert _orders(rig) == 1
    await eventually(lambda: _claim_gone(rig, intent.intent_id), what="the claim expired")
    await eventually(lambda: time.time_ns() > intent.not_after_ns, what="past the deadline")

    again = await rig.worker.execute(intent)  # e.g. its batch delivered once more

    assert again.state == "expired"  # a fresh claim, but the deadline is checked first
    assert _orders(rig) == 1


async def test_an_earlier_intent_whose_claim_expired_does_not_hold_back_the_next(
    rig: Any,
) -> None:
    queues = await rig.bus.key_value(subjects.Buckets.ACCOUNT_ORDER)
    claims = await _claims(rig)
    later_clock = FakeClock(start_ns=time.time_ns())  # the queue's clock, moved ahead below
    order = AccountOrder(queues, claims=claims, clock=later_clock)
    worker = BatchWorker(
        bus=rig.bus,
        store=IntentStore(claims, "replica-2"),
        pool=rig.pool,
        limiter=RateLimiter(rig.redis),
        permits=rig.worker.permits,
        view=rig.view,
        gates=Gates(rig.mirrors[0], rig.mirrors[1], rig.view),
        clock=LiveClock(),
        settings=WorkerSettings(login_windows=WINDOWS),
        order=order,
        calls=rig.calls,
    )
    # An earlier intent of the account ended (accepted), and its replica died before it left
    # the account's queue; then its claim expired.
    earlier = _entry(rig, 1, deadline_s=1.0)
    await order.enter(earlier)
    store = IntentStore(claims, "replica-1")
    await store.move(await store.claim(earlier.intent_id, time.time_ns()), "accepted", order_id=1)
    await eventually(lambda: _claim_gone(rig, earlier.intent_id), what="the claim expired")
    await later_clock.advance(1.0 + SETTLED_S + 1)

    outcome = await worker.execute(_entry(rig, 2, deadline_s=60.0))

    assert outcome.state == "accepted"
    assert _orders(rig) == 1


async def test_a_replica_starting_on_an_intents_bucket_without_a_ttl_gives_it_one(
    nats_url: str, redis_url: str
) -> None:
    bus = await Bus.connect(nats_url, "setup")
    try:
        # The bucket as every deployment before ADR-0185 created it.
        await bus.key_value(dataclasses.replace(subjects.Buckets.INTENTS, ttl_s=0.0))
        settings = ExecutorSettings(
            nats_url=nats_url, redis_url=redis_url, shards=1, executor_port=0
        )
        replica = await build_executor(settings)
        await replica.start()
        try:
            info = await bus.js.stream_info(f"KV_{subjects.Buckets.INTENTS.name}")
        finally:
            await replica.stop()
        assert info.config.max_age == subjects.INTENT_CLAIM_TTL_S
    finally:
        await bus.close()


async def test_a_claim_older_than_the_ttl_is_gone_and_the_next_claim_is_fresh(
    rig: Any,
) -> None:
    store = IntentStore(await _claims(rig), "replica-1")
    first = await store.claim("sig9-1", time.time_ns())
    await store.move(first, "accepted", order_id=1)
    assert not (await store.claim("sig9-1", time.time_ns())).fresh  # within the TTL: kept

    await eventually(lambda: _claim_gone(rig, "sig9-1"), what="the claim expired")

    assert (await store.claim("sig9-1", time.time_ns())).fresh
