"""Subscriptions (``Buckets.SUBSCRIPTIONS``, key ``<strategy>.<account>``) and account checks.

Accounts are written to ``Buckets.ACCOUNTS`` (key ``str(account_id)``) by the auth service;
ingest only checks that an account exists before subscribing it to a strategy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence

from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from phalanx_common.codec import decode, encode
from phalanx_common.records import SubscriptionRecord

__all__ = ["SubscriptionStore", "subscription_key"]

_CONCURRENCY = 100


def subscription_key(strategy_id: str, account_id: int) -> str:
    """KV key of one account's subscription to one strategy."""
    return f"{strategy_id}.{int(account_id)}"


class SubscriptionStore:
    """Reads and writes subscriptions; checks accounts.

    Args:
        subscriptions: The bound ``Buckets.SUBSCRIPTIONS`` bucket.
        accounts: The bound ``Buckets.ACCOUNTS`` bucket.
    """

    def __init__(self, subscriptions: KeyValue, accounts: KeyValue) -> None:
        self._subscriptions = subscriptions
        self._accounts = accounts
        self._sem = asyncio.Semaphore(_CONCURRENCY)

    async def missing_accounts(self, account_ids: Iterable[int]) -> list[int]:
        """The ids among ``account_ids`` that are not in the accounts bucket, sorted."""
        unique = sorted(set(account_ids))
        found = await asyncio.gather(*(self._account_exists(a) for a in unique))
        return [a for a, ok in zip(unique, found, strict=True) if not ok]

    async def put(self, records: Sequence[SubscriptionRecord]) -> None:
        """Write (create or replace) subscriptions."""
        await asyncio.gather(*(self._put_one(r) for r in records))

    async def for_strategy(
        self, strategy_id: str, timeout_s: float = 5.0
    ) -> list[SubscriptionRecord]:
        """Every subscription of a strategy, by account id."""
        watcher = await self._subscriptions.watch(f"{strategy_id}.*", ignore_deletes=True)
        records: list[SubscriptionRecord] = []
        try:
            while True:
                entry = await watcher.updates(timeout=timeout_s)  # type: ignore[no-untyped-call]
                if entry is None:
                    break
                if entry.value:
                    records.append(decode(entry.value, SubscriptionRecord))
        finally:
            await watcher.stop()  # type: ignore[no-untyped-call]
        return sorted(records, key=lambda r: r.account_id)

    async def _account_exists(self, account_id: int) -> bool:
        async with self._sem:
            try:
                entry = await self._accounts.get(str(int(account_id)))
            except KeyNotFoundError:
                return False
            return bool(entry.value)

    async def _put_one(self, record: SubscriptionRecord) -> None:
        async with self._sem:
            await self._subscriptions.put(
                subscription_key(record.strategy_id, record.account_id), encode(record)
            )
