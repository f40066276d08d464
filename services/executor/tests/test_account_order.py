"""The per-account queues (ADR-0051) with the kept copy of each queue (ADR-0145), on real NATS.

Two :class:`AccountOrder` objects on one bucket stand for two replicas (or two workers); each
keeps the queue as it last read or wrote it and may be behind the other's changes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from nats.js.kv import KeyValue

from phalanx_common import subjects
from phalanx_common.bus import Bus
from phalanx_common.codec import decode
from phalanx_common.events import OrderIntent
from phalanx_common.records import AccountQueueRecord
from phalanx_executor.account_order import AccountOrder

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


def _intent(seq: int) -> OrderIntent:
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
