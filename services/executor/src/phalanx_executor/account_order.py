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

Claims do not live for ever (ADR-0185): a claim is gone days after its last change, and an entry
left behind by a worker that died before leaving the queue would then block its account for
ever (no claim, so never found terminal). Each entry therefore carries its intent's deadline,
and an entry ahead whose intent is past that deadline by :data:`SETTLED_S` and has no claim is
dropped: no delivery of that intent can send anything any more (every send is checked against
the deadline first), so nothing of it can still come after the later intent. An entry of
unknown deadline (written before this, or by an intent without one) is given the claims' time to
live from the queue's next change, which outlasts every delivery of its intent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from nats.js.errors import KeyDeletedError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from phalanx_common.clock import Clock, LiveClock
from phalanx_common.codec import decode, encode
from phalanx_common.events import OrderIntent
from phalanx_common.records import AccountQueueRecord
from phalanx_common.subjects import INTENT_CLAIM_TTL_S

__all__ = ["SETTLED_S", "AccountOrder"]

log = logging.getLogger(__name__)

#: how long past its deadline an intent must be before its missing claim proves it can never
#: send: far more than clocks of two replicas differ, or a request checked against the deadline
#: takes to leave
SETTLED_S = 60.0

_Entry = tuple[int, str]  # (signal stream sequence, intent id)
_Pending = dict[_Entry, int]  # entry -> its intent's deadline in ns (0: not known)
_Edit = Callable[[_Pending], _Pending]


def _key(account_id: int) -> str:
    return f"account.{int(account_id)}"


def _pending(record: AccountQueueRecord) -> _Pending:
    deadlines = dict(record.not_after)
    return {entry: deadlines.get(entry[1], 0) for entry in record.pending}


def _record(account_id: int, pending: _Pending, unknown_ns: int) -> AccountQueueRecord:
    """The queue to write; a deadline not known becomes ``unknown_ns``."""
    return AccountQueueRecord(
        account_id=account_id,
        pending=tuple(sorted(pending)),
        not_after=tuple(sorted((i, ns or unknown_ns) for (_, i), ns in pending.items())),
    )


class AccountOrder:
    """The per-account queues in the ``account_order`` bucket.

    Each change is a compare-and-set on the key's revision. The record and revision this
    object last read or wrote are kept per account and tried first (ADR-0145): when nobody else
    changed the queue since, a change is one KV write instead of a read and a write; when
    somebody did, the write is refused and the queue is read again. A change the kept record
    says is not needed is always checked against a fresh read.
    """

    def __init__(
        self, kv: KeyValue, claims: KeyValue | None = None, clock: Clock | None = None
    ) -> None:
        """``claims``: the ``intents`` bucket, read to drop entries whose claim is gone long
        after their deadline (none: such entries stay)."""
        self._kv = kv
        self._claims = claims
        self._clock: Clock = clock or LiveClock()
        self._seen: dict[int, tuple[AccountQueueRecord, int | None]] = {}

    async def enter(self, intent: OrderIntent) -> None:
        """Put ``intent`` in its account's queue (idempotent)."""
        if not intent.signal_seq:
            return
        await self._change(intent.account_id, _adding(intent))

    async def enter_and_ahead(self, intent: OrderIntent) -> list[str]:
        """Enter ``intent`` (idempotent) and list the intent ids of earlier signals of the
        account still unresolved, oldest first: one fresh read of the queue, and a write only
        when ``intent`` was not in it (or an entry ahead is dropped because its claim is gone
        after its deadline)."""
        if not intent.signal_seq:
            return []
        entry = (intent.signal_seq, intent.intent_id)
        record, _ = await self._read(intent.account_id)
        if entry not in record.pending:
            record = await self._change(intent.account_id, _adding(intent))
        ahead = _before(record, intent)
        gone = await self._settled_without_claim(record, ahead)
        if gone:
            log.info("account %s: dropped %s (no claim, past deadline)", intent.account_id, gone)
            await self._change(
                intent.account_id,
                lambda pending: {e: d for e, d in pending.items() if e[1] not in gone},
            )
            ahead = [i for i in ahead if i not in gone]
        return ahead

    async def leave(self, intent: OrderIntent) -> None:
        """Take ``intent`` out of its account's queue (it is resolved)."""
        if not intent.signal_seq:
            return
        await self.drop(intent.account_id, intent.intent_id)

    async def drop(self, account_id: int, intent_id: str) -> None:
        """Take ``intent_id`` out of the account's queue."""
        await self._change(
            account_id, lambda pending: {e: d for e, d in pending.items() if e[1] != intent_id}
        )

    async def _settled_without_claim(
        self, record: AccountQueueRecord, ahead: list[str]
    ) -> set[str]:
        """The intents of ``ahead`` past their deadline by :data:`SETTLED_S` whose claim is
        gone (released or expired): none of them can ever send (ADR-0185)."""
        if self._claims is None or not ahead:
            return set()
        settled_ns = self._clock.time_ns() - int(SETTLED_S * 1e9)
        deadlines = dict(record.not_after)
        gone: set[str] = set()
        for intent_id in ahead:
            deadline = deadlines.get(intent_id, 0)
            if not deadline or deadline >= settled_ns:
                continue
            try:
                await self._claims.get(intent_id)
            except (KeyNotFoundError, KeyDeletedError):
                gone.add(intent_id)
        return gone

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
            before = _pending(record)
            after = edit(dict(before))
            if after.keys() == before.keys():
                if fresh:
                    return record
                record, revision = await self._read(account_id)  # the kept copy may be stale
                fresh = True
                continue
            unknown_ns = self._clock.time_ns() + int(INTENT_CLAIM_TTL_S * 1e9)
            changed = _record(account_id, after, unknown_ns)
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


def _adding(intent: OrderIntent) -> _Edit:
    """The edit that enters ``intent`` (keeping the deadline an entry of it has already)."""
    entry = (intent.signal_seq, intent.intent_id)

    def edit(pending: _Pending) -> _Pending:
        pending.setdefault(entry, intent.not_after_ns)
        return pending

    return edit


def _before(record: AccountQueueRecord, intent: OrderIntent) -> list[str]:
    mine = (intent.signal_seq, intent.intent_id)
    return [i for seq, i in sorted(record.pending) if (seq, i) < mine]
