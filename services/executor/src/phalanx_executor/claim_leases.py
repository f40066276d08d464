"""Owner leases on claimed intents (ADR-0050).

A claim (ADR-0006) says an intent is being worked on; its lease says by whom and until when.
The owner writes the lease right after claiming and renews it on its own task while it works on
the intent (connect, permit waits, reversal waits, reconciliation), so a slow owner is never
mistaken for a dead one. Nobody takes over a claim whose lease is alive; a lease that is not
renewed runs out after ``lease_s`` and the claim may then be taken over (and reconciled by
``clOrdId``). Leases live in their own bucket so renewals never change the claim's revision:
the claim's revision is what the owner checks just before every send.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from nats.js.errors import KeyDeletedError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from phalanx_common.clock import Clock
from phalanx_common.codec import decode, encode
from phalanx_common.records import IntentLeaseRecord
from phalanx_common.tasks import cancel_and_wait

__all__ = ["ClaimLeases"]

log = logging.getLogger(__name__)


class ClaimLeases:
    """Writes, renews and reads intent leases of one owner."""

    def __init__(self, kv: KeyValue, owner: str, clock: Clock, lease_s: float) -> None:
        self._kv = kv
        self.owner = owner
        self._clock = clock
        self._lease_ns = int(lease_s * 1e9)
        self._renew_s = lease_s / 4
        self._expires: dict[str, int] = {}  # intent id -> expiry this owner last wrote
        self._revisions: dict[str, int] = {}  # intent id -> revision of that write
        self._ended: set[str] = set()  # intents whose claim this owner made terminal

    async def holder(self, intent_id: str) -> IntentLeaseRecord | None:
        """The live lease of another owner on ``intent_id``, if there is one."""
        try:
            entry = await self._kv.get(intent_id)
        except (KeyNotFoundError, KeyDeletedError):
            return None
        if not entry.value:
            return None
        record = decode(entry.value, IntentLeaseRecord)
        if record.owner == self.owner or record.expires_ns <= self._clock.time_ns():
            return None
        return record

    def held(self, intent_id: str) -> bool:
        """Whether this owner's lease on ``intent_id`` has at least a renewal period left."""
        expires = self._expires.get(intent_id)
        margin_ns = int(self._renew_s * 1e9)
        return expires is not None and expires - self._clock.time_ns() > margin_ns

    @contextlib.asynccontextmanager
    async def hold(self, intent_id: str) -> AsyncIterator[None]:
        """Hold the lease on ``intent_id`` while the block runs, then give it up."""
        await self._write(intent_id)
        renewer = asyncio.create_task(self._renew(intent_id), name=f"lease:{intent_id}")
        try:
            yield
        finally:
            # A cancellation can be lost inside a KV request (Python 3.11 wait_for): a plain
            # cancel-and-await then waited forever while the renewer kept the lease alive.
            await cancel_and_wait(renewer)
            self._expires.pop(intent_id, None)
            revision = self._revisions.pop(intent_id, None)
            if intent_id in self._ended:
                self._ended.discard(intent_id)
            else:
                with contextlib.suppress(Exception):  # never delete a lease written since
                    await self._kv.delete(intent_id, last=revision)

    def ended(self, intent_id: str) -> None:
        """The claim on ``intent_id`` is terminal: leaving its lease deletes nothing.

        Nobody reads the lease of a terminal claim (a delivery that finds one republishes its
        outcome), and the lease runs out by itself; the delete was one more request per intent
        on the way to the batch's ack (ADR-0145).
        """
        self._ended.add(intent_id)

    async def _write(self, intent_id: str) -> None:
        expires = self._clock.time_ns() + self._lease_ns
        record = IntentLeaseRecord(intent_id=intent_id, owner=self.owner, expires_ns=expires)
        self._revisions[intent_id] = await self._kv.put(intent_id, encode(record))
        self._expires[intent_id] = expires

    async def _renew(self, intent_id: str) -> None:
        while True:
            await self._clock.sleep(self._renew_s)
            expires = self._clock.time_ns() + self._lease_ns
            record = IntentLeaseRecord(intent_id=intent_id, owner=self.owner, expires_ns=expires)
            try:
                self._revisions[intent_id] = await self._kv.update(
                    intent_id, encode(record), last=self._revisions.get(intent_id)
                )
            except KeyWrongLastSequenceError:
                log.warning("lease on %s was taken over; no longer renewed", intent_id)
                self._expires.pop(intent_id, None)
                return
            except Exception as exc:  # the owner's next send check sees the lease running out
                log.warning("lease on %s not renewed: %s", intent_id, exc)
                continue
            self._expires[intent_id] = expires
