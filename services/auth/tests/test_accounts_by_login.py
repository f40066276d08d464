"""A login's accounts are kept by login: linking one login reads nothing of the others.

Seeding 2,000 logins under 10,000 accounts links one login after another; each link asks for
the login's current accounts. The book answers from its per-login index (ADR-0170): the KV
operations of a link are its own writes, however many accounts the bucket holds, and the index
follows other writers' changes (a moved account leaves its old login; a deleted one is gone).
Real nats-server with JetStream; the accounts bucket is wrapped only to count calls.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
import pytest_asyncio
from nats.js.kv import KeyValue

from phalanx_auth.accounts import AccountBook
from phalanx_auth.counters import AuthMetrics
from phalanx_auth.store import AuthStore
from phalanx_common import codec
from phalanx_common.bus import Bus
from phalanx_common.crypto import key_ring_from_settings
from phalanx_common.records import AccountRecord
from phalanx_common.subjects import Buckets
from phalanx_testing.clock import FakeClock
from phalanx_testing.waiting import eventually
from phalanx_tradovate import wire

pytestmark = pytest.mark.integration

KEYS = "k1:" + "A" * 43 + "="
COUNTED = ("get", "keys", "history", "put", "create", "update", "delete", "purge")


class CountingKv:
    """Forwards to a real bucket and counts the calls named in ``COUNTED``."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._kv, name)
        if name not in COUNTED:
            return attr

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return await attr(*args, **kwargs)

        return counted


@pytest_asyncio.fixture
async def bus(nats_url: str) -> AsyncIterator[Bus]:
    connected = await Bus.connect(nats_url, "auth-accounts-test")
    await connected.ensure_topology()
    yield connected
    await connected.close()


async def _store(bus: Bus, accounts: KeyValue) -> AuthStore:
    return AuthStore(
        await bus.key_value(Buckets.LOGINS),
        await bus.key_value(Buckets.TOKENS),
        accounts,
        key_ring_from_settings(KEYS, "unused"),
    )


def _venue_accounts(first_id: int, count: int) -> list[wire.Account]:
    return [wire.Account(id=first_id + n, name=f"ACC{first_id + n}") for n in range(count)]


async def test_linking_a_login_reads_no_account_of_other_logins(bus: Bus) -> None:
    raw = await bus.key_value(Buckets.ACCOUNTS)
    for n in range(400):  # 400 accounts under 80 other logins, written by someone else
        record = AccountRecord(
            account_id=10_000 + n, account_spec=f"O{n}", login_id=f"other{n // 5}", user_id=n // 5
        )
        await raw.put(str(record.account_id), codec.encode(record))
    counting = CountingKv(raw)
    book = AccountBook(await _store(bus, cast(KeyValue, counting)), bus, FakeClock(), AuthMetrics())
    await book.open()
    try:
        assert len(await book.accounts_of("other7")) == 5
        counting.calls.clear()
        linked = await book.sync("new", 99, _venue_accounts(1, 5), now=1)
        again = await book.sync("new", 99, _venue_accounts(1, 5), now=2)  # nothing changed
        found = await book.accounts_of("new")
    finally:
        await book.close()
    assert [a.account_id for a in found] == [1, 2, 3, 4, 5]
    assert again == linked
    # the first link's five writes, nothing read; the unchanged second link writes nothing
    assert counting.calls == Counter({"put": 5})


async def test_the_index_follows_moves_and_deletes_by_another_writer(bus: Bus) -> None:
    raw = await bus.key_value(Buckets.ACCOUNTS)
    book = AccountBook(await _store(bus, raw), bus, FakeClock(), AuthMetrics())
    await book.open()
    try:
        await book.sync("alice", 1, _venue_accounts(1, 3), now=1)
        await book.sync("bob", 2, _venue_accounts(10, 2), now=1)
        # another auth replica (or an operator) moves account 2 to bob and deletes account 3
        moved = AccountRecord(account_id=2, account_spec="ACC2", login_id="bob", user_id=2)
        await raw.put("2", codec.encode(moved))
        await raw.delete("3")

        async def ids(login: str) -> list[int]:
            return [a.account_id for a in await book.accounts_of(login)]

        async def settled() -> bool:
            return await ids("alice") == [1] and await ids("bob") == [2, 10, 11]

        await eventually(settled, 10.0, what="the index follows the bucket")
        # alice's next link must not unlink the moved account from bob
        await book.sync("alice", 1, _venue_accounts(1, 1), now=2)
        assert await ids("bob") == [2, 10, 11]
        assert await ids("carol") == []
    finally:
        await book.close()
