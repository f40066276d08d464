"""Owner leases on claimed intents (ADR-0050).

A claim (ADR-0006) says an intent is being worked on; its lease says by whom and until when.
The owner writes the lease and renews it on its own task while it works on the intent (connect,
permit waits, reversal waits, reconciliation), so a slow owner is never mistaken for a dead one.
Nobody takes over a claim whose lease is alive; a lease that is not renewed runs out after
``lease_s`` and the claim may then be taken over (and reconciled by ``clOrdId``). Leases live in
their own bucket so renewals never change the claim's revision: the claim's revision is what the
owner checks just before every send.

A fresh claim is protected by its age too: nobody takes over a claim younger than the reconcile
grace, lease or no lease (``BatchWorker._resume``). So the first write of a fresh claim's lease
waits one renewal period (ADR-0181): most intents end before it and write no lease at all, one KV
request per intent less. Until the lease is written, :meth:`ClaimLeases.held` counts the claim's
age against the grace, with the same margin as a lease. A claim taken over (already older than
the grace) is leased at once, as is a fresh claim whose grace leaves too little room.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

from nats.js.errors import KeyDeletedError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from phalanx_common.clock import Clock
from phalanx_common.codec import decode, encode
from phalanx_common.records import IntentLeaseRecord
from phalanx_common.tasks import cancel_and_wait

__all__ = ["ClaimLeases"]

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Held:
    """One intent this owner works on: what protects its claim, and its lease once written."""

    protected_until_ns: int  # the claim's creation + the grace; 0: only a lease protects it
    due: float = 0.0  # monotonic time of a deferred first write (0: written at once)
    renewer: asyncio.Task[None] | None = None
    expires_ns: int = 0  # expiry of the lease this owner last wrote (0: none written)
    revision: int | None = None  # revision of that write
    ended: bool = False  # the claim is terminal: leaving deletes nothing (ADR-0145)
    lost: bool = False  # another owner wrote the lease: nothing protects this owner's claim

    def lose(self) -> None:
        """Another owner has the lease: this owner's claim is unprotected, and the lease is not
        this owner's to delete."""
        self.expires_ns = 0
        self.revision = None
        self.lost = True


class ClaimLeases:
    """Writes, renews and reads intent leases of one owner.

    ``grace_s`` is the age below which nobody takes over a claim (the worker's reconcile grace);
    0 writes every lease at once.
    """

    def __init__(
        self, kv: KeyValue, owner: str, clock: Clock, lease_s: float, grace_s: float = 0.0
    ) -> None:
        self._kv = kv
        self.owner = owner
        self._clock = clock
        self._lease_ns = int(lease_s * 1e9)
        self._renew_s = lease_s / 4
        self._margin_ns = int(self._renew_s * 1e9)
        self._grace_ns = int(grace_s * 1e9)
        self._held: dict[str, _Held] = {}
        self._deferred: deque[tuple[str, _Held]] = deque()  # first writes, in the order due
        self._keeper: asyncio.Task[None] | None = None

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
        """Whether this owner's lease on ``intent_id``, or the youth of the claim it created,
        protects the claim for at least a renewal period more."""
        held = self._held.get(intent_id)
        if held is None or held.lost:
            return False
        expires = max(held.expires_ns, held.protected_until_ns)
        return expires - self._clock.time_ns() > self._margin_ns

    def written(self, intent_id: str) -> bool:
        """Whether this owner has written a lease on ``intent_id`` it still holds."""
        held = self._held.get(intent_id)
        return held is not None and held.revision is not None

    @contextlib.asynccontextmanager
    async def hold(self, intent_id: str, claimed_ns: int | None = None) -> AsyncIterator[None]:
        """Hold the lease on ``intent_id`` while the block runs, then give it up.

        ``claimed_ns``: when this owner created the claim; the first write may then wait a
        renewal period. ``None`` (a claim taken over): the lease is written at once.
        """
        held = self._start(intent_id, claimed_ns)
        if not held.due:
            await self._write(intent_id, held)
            held.renewer = asyncio.create_task(
                self._renew(intent_id, held), name=f"lease:{intent_id}"
            )
        try:
            yield
        finally:
            await self._leave(intent_id, held)

    def ended(self, intent_id: str) -> None:
        """The claim on ``intent_id`` is terminal: leaving its lease deletes nothing.

        Nobody reads the lease of a terminal claim (a delivery that finds one republishes its
        outcome), and the lease runs out by itself; the delete was one more request per intent
        on the way to the batch's ack (ADR-0145).
        """
        held = self._held.get(intent_id)
        if held is not None:
            held.ended = True

    def _start(self, intent_id: str, claimed_ns: int | None) -> _Held:
        protected = 0 if claimed_ns is None else claimed_ns + self._grace_ns
        held = _Held(protected_until_ns=protected)
        self._held[intent_id] = held
        # Deferred only when the claim's youth outlasts the deferred write and one retry.
        if protected - self._clock.time_ns() >= 3 * self._margin_ns:
            held.due = self._clock.monotonic() + self._renew_s
            self._deferred.append((intent_id, held))
            if self._keeper is None:
                self._keeper = asyncio.create_task(self._keep(), name=f"leases:{self.owner}")
        return held

    async def _leave(self, intent_id: str, held: _Held) -> None:
        if self._held.get(intent_id) is held:
            del self._held[intent_id]
        if held.renewer is not None:
            # A cancellation can be lost inside a KV request (Python 3.11 wait_for): a plain
            # cancel-and-await then waited forever while the renewer kept the lease alive.
            await cancel_and_wait(held.renewer)
        if held.revision is not None and not held.ended:
            with contextlib.suppress(Exception):  # never delete a lease written since
                await self._kv.delete(intent_id, last=held.revision)
        if not self._held and self._keeper is not None:
            self._keeper.cancel()  # it makes no request of its own: nothing is left half-done
            self._keeper = None
            self._deferred.clear()

    async def _keep(self) -> None:
        """Start the renewer (which writes first) of each deferred lease when it falls due."""
        while self._deferred:
            intent_id, held = self._deferred[0]
            wait = held.due - self._clock.monotonic()
            if wait > 0:
                await self._clock.sleep(wait)
                continue
            self._deferred.popleft()
            if self._held.get(intent_id) is held and held.renewer is None:
                held.renewer = asyncio.create_task(
                    self._renew(intent_id, held, write_first=True), name=f"lease:{intent_id}"
                )
        self._keeper = None

    async def _write(self, intent_id: str, held: _Held) -> None:
        expires = self._clock.time_ns() + self._lease_ns
        record = IntentLeaseRecord(intent_id=intent_id, owner=self.owner, expires_ns=expires)
        held.revision = await self._kv.put(intent_id, encode(record))
        held.expires_ns = expires

    async def _renew(self, intent_id: str, held: _Held, write_first: bool = False) -> None:
        if write_first:
            await self._first_write(intent_id, held)
        while not held.lost:
            await self._clock.sleep(self._renew_s)
            if held.revision is None:  # the first write failed: try it again
                await self._first_write(intent_id, held)
                continue
            expires = self._clock.time_ns() + self._lease_ns
            record = IntentLeaseRecord(intent_id=intent_id, owner=self.owner, expires_ns=expires)
            try:
                held.revision = await self._kv.update(intent_id, encode(record), last=held.revision)
            except KeyWrongLastSequenceError:
                log.warning("lease on %s was taken over; no longer renewed", intent_id)
                held.lose()
            except Exception as exc:  # the owner's next send check sees the lease running out
                log.warning("lease on %s not renewed: %s", intent_id, exc)
            else:
                held.expires_ns = expires

    async def _first_write(self, intent_id: str, held: _Held) -> None:
        """A deferred lease's first write: created, never written over another owner's."""
        expires = self._clock.time_ns() + self._lease_ns
        value = encode(IntentLeaseRecord(intent_id=intent_id, owner=self.owner, expires_ns=expires))
        try:
            try:
                revision = await self._kv.create(intent_id, value)
            except KeyWrongLastSequenceError:  # a lease is there: ours left over, or a taker's
                entry = await self._kv.get(intent_id)
                if decode(entry.value or b"", IntentLeaseRecord).owner != self.owner:
                    log.warning("lease on %s is another owner's; claim not protected", intent_id)
                    held.lose()
                    return
                revision = await self._kv.update(intent_id, value, last=entry.revision)
        except Exception as exc:  # tried again at the next renewal; the claim's youth holds
            log.warning("lease on %s not written: %s", intent_id, exc)
            return
        held.revision = revision
        held.expires_ns = expires
