"""Per-account order of intents across naks, redeliveries and replicas (ADR-0051).

Every intent carries the SIGNALS stream sequence of its signal (``signal_seq``). The first time
a worker sees a batch it enters each intent in its account's queue (one KV key per account,
compare-and-set), and an intent may run only when no intent of an earlier signal is ahead of it
in the queue. An intent leaves the queue when it is terminal (accepted, rejected, expired,
duplicate). So an entry released because its login's socket blipped stays ahead of the exit that
follows it: the exit waits (its batch comes back) until the entry has run.

An entry ahead whose claim is already terminal (its worker died before leaving the queue) is
dropped by whoever finds it. Intents without a sequence (planned before this existed) are not
ordered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from nats.js.errors import KeyDeletedError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from phalanx_common.codec import decode, encode
from phalanx_common.events import OrderIntent
from phalanx_common.records import AccountQueueRecord

__all__ = ["AccountOrder"]

log = logging.getLogger(__name__)

_Edit = Callable[[set[tuple[int, str]]], set[tuple[int, str]]]


def _key(account_id: int) -> str:
    return f"account.{int(account_id)}"


class AccountOrder:
    """The per-account queues in the ``account_order`` bucket.

    Each change is a compare-and-set on the key's revision. The record and revision this
    object last read or wrote are kept per account and tried first (ADR-0145): when nobody else
    changed the queue since, a change is one KV write instead of a read and a write; when
    somebody did, the write is refused and the queue is read again. A change the kept record
    says is not needed is always checked against a fresh read.
    """

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv
        self._seen: dict[int, tuple[AccountQueueRecord, int | None]] = {}

    async def enter(self, intent: OrderIntent) -> None:
        """Put ``intent`` in its account's queue (idempotent)."""
        if not intent.signal_seq:
            return
        entry = (intent.signal_seq, intent.intent_id)
        await self._change(intent.account_id, lambda pending: pending | {entry})

    async def enter_and_ahead(self, intent: OrderIntent) -> list[str]:
        """Enter ``intent`` (idempotent) and list the intent ids of earlier signals of the
        account still unresolved, oldest first: one fresh read of the queue, and a write only
        when ``intent`` was not in it."""
        if not intent.signal_seq:
            return []
        entry = (intent.signal_seq, intent.intent_id)
        record, _ = await self._read(intent.account_id)
        if entry not in record.pending:
            record = await self._change(intent.account_id, lambda pending: pending | {entry})
        return _before(record, intent)

    async def leave(self, intent: OrderIntent) -> None:
        """Take ``intent`` out of its account's queue (it is resolved)."""
        if not intent.signal_seq:
            return
        await self.drop(intent.account_id, intent.intent_id)

    async def drop(self, account_id: int, intent_id: str) -> None:
        """Take ``intent_id`` out of the account's queue."""
        await self._change(account_id, lambda pending: {e for e in pending if e[1] != intent_id})

    async def _read(self, account_id: int) -> tuple[AccountQueueRecord, int | None]:
        try:
            entry = await self._kv.get(_key(account_id))
        except (KeyNotFoundError, KeyDeletedError):
            seen: tuple[AccountQueueRecord, int | None] = (
                AccountQueueRecord(account_id=account_id),
                None,
            )
        else:
            record = (
                decode(entry.value, AccountQueueRecord)
                if entry.value
                else AccountQueueRecord(account_id=account_id)
            )
            seen = (record, entry.revision)
        self._seen[account_id] = seen
        return seen

    async def _change(self, account_id: int, edit: _Edit) -> AccountQueueRecord:
        """Apply ``edit`` to the queue; return the queue as written (or as read, unchanged)."""
        kept = self._seen.get(account_id)
        fresh = kept is None
        record, revision = kept if kept is not None else await self._read(account_id)
        while True:
            before = set(record.pending)
            after = edit(before)
            if after == before:
                if fresh:
                    return record
                record, revision = await self._read(account_id)  # the kept copy may be stale
                fresh = True
                continue
            changed = AccountQueueRecord(account_id=account_id, pending=tuple(sorted(after)))
            value = encode(changed)
            try:
                if revision is None:
                    written = await self._kv.create(_key(account_id), value)
                else:
                    written = await self._kv.update(_key(account_id), value, last=revision)
            except KeyWrongLastSequenceError:
                # another worker changed the queue (or the kept copy was stale): read it again
                record, revision = await self._read(account_id)
                fresh = True
                continue
            self._seen[account_id] = (changed, written)
            return changed


def _before(record: AccountQueueRecord, intent: OrderIntent) -> list[str]:
    mine = (intent.signal_seq, intent.intent_id)
    return [i for seq, i in sorted(record.pending) if (seq, i) < mine]
