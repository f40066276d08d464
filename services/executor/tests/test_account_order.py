"""The per-account queues (ADR-0051) with the kept copy of each queue (ADR-0145), on real NATS.

Two :class:`AccountOrder` objects on one bucket stand for two replicas (or two workers); each
keeps the queue as it last read or wrote it and may be behind the other's changes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from nats.js.errors import KeyDeletedError, KeyNotFoundError
from nats.js.kv import KeyValue

from phalanx_common import subjects
from phalanx_common.bus import Bus
from phalanx_common.codec import decode, encode
from phalanx_common.events import OrderIntent
from phalanx_common.records import AccountQueueRecord
from phalanx_executor.account_order import SETTLED_S, AccountOrder
from phalanx_executor.intents import IntentStore
from phalanx_testing.clock import FakeClock
from phalanx_testing.waiting import eventually

pytestmark = pytest.mark.integration

ACCOUNT = 7


class CountingKv:
    """The bucket, counting the requests made through it."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv
        self.reads = 0
        self.writes = 0

    async def get(self, *args: Any, **kwargs: Any) -> KeyValue.Entry:
        self.reads += 1
        return await self._kv.get(*args, **kwargs)

    async def create(self, *args: Any, **kwargs: Any) -> int:
        self.writes += 1
        return int(await self._kv.create(*args, **kwargs))

    async def update(self, *args: Any, **kwargs: Any) -> int:
        self.writes += 1
        return int(await self._kv.update(*args, **kwargs))


def _intent(seq: int, not_after_ns: int = 0) -> OrderIntent:
    return OrderIntent(
        intent_id=f"sig{seq}-{ACCOUNT}",
        signal_id=f"sig{seq}",
        strategy_id="strat",
        account_id=ACCOUNT,
        account_spec="acct",
        login_id="trader",
        kind="entry",
        action="Buy",
        symbol="MESZ6",
        quantity=1,
        signal_seq=seq,
        not_after_ns=not_after_ns,
    )


@pytest_asyncio.fixture
async def kv(nats_url: str) -> AsyncIterator[KeyValue]:
    bus = await Bus.connect(nats_url, "t")
    try:
        await bus.ensure_topology()
        yield await bus.key_value(subjects.Buckets.ACCOUNT_ORDER)
    finally:
        await bus.close()


async def _pending(kv: KeyValue) -> set[str]:
    entry = await kv.get(f"account.{ACCOUNT}")
    return {i for _, i in decode(entry.value or b"", AccountQueueRecord).pending}


async def test_a_change_from_a_stale_copy_loses_no_entry_of_another_replica(kv: KeyValue) -> None:
    a, b = AccountOrder(kv), AccountOrder(kv)
    first, second = _intent(1), _intent(2)
    await a.enter(first)  # a keeps the queue {first}
    await b.enter(second)  # the queue is {first, second}; a's copy is behind
    await a.leave(first)  # from a's stale copy: refused, read again, written
    assert await _pending(kv) == {second.intent_id}
    assert await b.enter_and_ahead(second) == []


async def test_a_stale_copy_that_shows_an_entry_still_there_is_checked_against_a_read(
    kv: KeyValue,
) -> None:
    a, b = AccountOrder(kv), AccountOrder(kv)
    first = _intent(1)
    await a.enter(first)
    await b.drop(ACCOUNT, first.intent_id)  # e.g. another worker found it terminal
    await a.enter(first)  # a's copy still shows it: a must not take that for done
    assert await _pending(kv) == {first.intent_id}


async def test_enter_and_ahead_lists_the_earlier_signals_and_enters_the_later_one(
    kv: KeyValue,
) -> None:
    order = AccountOrder(kv)
    first, second, third = _intent(1), _intent(2), _intent(3)
    await order.enter(first)
    await order.enter(third)
    assert await order.enter_and_ahead(second) == [first.intent_id]
    assert await _pending(kv) == {first.intent_id, second.intent_id, third.intent_id}
    assert await AccountOrder(kv).enter_and_ahead(third) == [first.intent_id, second.intent_id]


async def test_changes_nobody_else_raced_are_one_write_each(kv: KeyValue) -> None:
    counting = CountingKv(kv)
    order = AccountOrder(counting)  # type: ignore[arg-type]
    await order.enter(_intent(1))  # nothing kept yet: a read, then the write
    assert (counting.reads, counting.writes) == (1, 1)
    await order.leave(_intent(1))
    await order.enter(_intent(2))
    assert (counting.reads, counting.writes) == (1, 3)
    assert await order.enter_and_ahead(_intent(2)) == []  # the turn check reads afresh
    assert (counting.reads, counting.writes) == (2, 3)


# -- claims that expire (ADR-0185) ----------------------------------------------------------------

SHORT_TTL_S = 1.0  # the intents bucket's TTL in these tests (3 days in service)


@dataclasses.dataclass
class Buckets:
    queues: KeyValue
    claims: KeyValue  # the intents bucket, its claims living SHORT_TTL_S
    kept: KeyValue  # a claims bucket that keeps its keys


@pytest_asyncio.fixture
async def buckets(nats_url: str) -> AsyncIterator[Buckets]:
    bus = await Bus.connect(nats_url, "t")
    try:
        await bus.key_value(dataclasses.replace(subjects.Buckets.INTENTS, ttl_s=SHORT_TTL_S))
        await bus.ensure_topology()
        yield Buckets(
            await bus.key_value(subjects.Buckets.ACCOUNT_ORDER),
            await bus.key_value(subjects.Buckets.INTENTS),
            await bus.key_value(subjects.Bucket("claims-kept")),
        )
    finally:
        await bus.close()


async def _gone(claims: KeyValue, intent_id: str) -> bool:
    try:
        await claims.get(intent_id)
    except (KeyNotFoundError, KeyDeletedError):
        return True
    return False


async def test_an_entry_whose_claim_expired_after_its_deadline_does_not_block_its_account(
    buckets: Buckets, fake_clock: FakeClock
) -> None:
    queues, claims = buckets.queues, buckets.claims
    clock = fake_clock
    order = AccountOrder(queues, claims=claims, clock=clock)
    earlier = _intent(1, not_after_ns=clock.time_ns() + 5 * 10**9)
    await order.enter(earlier)
    store = IntentStore(claims, "w1")
    claim = await store.claim(earlier.intent_id, clock.time_ns())
    await store.move(claim, "accepted", order_id=1)  # ...and its worker died before leaving
    await eventually(lambda: _gone(claims, earlier.intent_id), what="the claim expired")
    await clock.advance(5 + SETTLED_S + 1)

    later = _intent(2, not_after_ns=clock.time_ns() + 60 * 10**9)
    assert await order.enter_and_ahead(later) == []
    assert await _pending(queues) == {later.intent_id}


async def test_an_entry_without_a_claim_still_blocks_its_account_until_past_its_deadline(
    buckets: Buckets, fake_clock: FakeClock
) -> None:
    # ADR-0051's case: an entry released (nothing sent, claim deleted) may still run; the
    # exit after it waits, until no delivery of the entry can send any more.
    queues, claims = buckets.queues, buckets.claims
    clock = fake_clock
    order = AccountOrder(queues, claims=claims, clock=clock)
    entry = _intent(1, not_after_ns=clock.time_ns() + 60 * 10**9)
    exit_ = _intent(2, not_after_ns=clock.time_ns() + 300 * 10**9)
    await order.enter(entry)
    assert await order.enter_and_ahead(exit_) == [entry.intent_id]
    await clock.advance(60 + SETTLED_S - 1)  # past its deadline, not yet by the margin
    assert await order.enter_and_ahead(exit_) == [entry.intent_id]
    await clock.advance(2)
    assert await order.enter_and_ahead(exit_) == []


async def test_an_entry_with_a_claim_past_its_deadline_stays_ahead(
    buckets: Buckets, fake_clock: FakeClock
) -> None:
    # An outcome unknown (maybe at the venue) keeps the account's later intents waiting
    # (ADR-0051) as long as its claim is there.
    queues, claims = buckets.queues, buckets.kept
    clock = fake_clock
    order = AccountOrder(queues, claims=claims, clock=clock)
    earlier = _intent(1, not_after_ns=clock.time_ns() + 10**9)
    await order.enter(earlier)
    store = IntentStore(claims, "w1")
    claim = await store.claim(earlier.intent_id, clock.time_ns())
    await store.move(claim, "unknown", reason="timeout")
    await clock.advance(3600)
    assert await order.enter_and_ahead(_intent(2)) == [earlier.intent_id]


async def test_an_entry_written_before_deadlines_were_kept_gets_the_claims_ttl(
    buckets: Buckets, fake_clock: FakeClock
) -> None:
    queues, claims = buckets.queues, buckets.claims
    clock = fake_clock
    old = AccountQueueRecord(account_id=ACCOUNT, pending=((1, "sig1-7"),))
    await queues.create(f"account.{ACCOUNT}", encode(old))
    order = AccountOrder(queues, claims=claims, clock=clock)
    await order.enter(_intent(2, not_after_ns=clock.time_ns() + 10**9))  # a change: stamped
    await clock.advance(subjects.INTENT_CLAIM_TTL_S - 1)
    # sig2-7 (deadline known, long past, no claim) is dropped; sig1-7 has days still
    assert await order.enter_and_ahead(_intent(3)) == ["sig1-7"]
    await clock.advance(SETTLED_S + 2)
    assert await order.enter_and_ahead(_intent(3)) == []
