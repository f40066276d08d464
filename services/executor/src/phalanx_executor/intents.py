"""The per-intent state machine and its store in KV (ADR-0006).

States and the only transitions allowed:

| from      | to                                   |
|-----------|--------------------------------------|
| (none)    | claimed                              |
| claimed   | accepted, rejected, unknown, expired, (released: deleted; nothing was sent) |
| unknown   | accepted (found by clOrdId), rejected, claimed (venue provably has no order: retry) |
| accepted  | —                                    |
| rejected  | —                                    |
| expired   | —  (past the signal's deadline before a send; ADR-0045) |

Every transition is a compare-and-set on the KV revision, so two deliveries (or two replicas)
can never both move the same intent. The store remembers the revision of every claim it holds,
and :meth:`IntentStore.verify` checks just before each venue send that the claim is still at that
revision, i.e. nobody took it over meanwhile (ADR-0050).

A claim expires ``subjects.INTENT_CLAIM_TTL_S`` (3 days) after its last change (the bucket's
TTL, ADR-0185): later than any delivery of its intent can come, and past its deadline, so a
claim found missing then is claimed afresh and expired before anything is sent.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
from nats.js.errors import KeyDeletedError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from phalanx_common.codec import decode, encode
from phalanx_common.records import IntentRecord, IntentState

__all__ = [
    "TERMINAL",
    "TRANSITIONS",
    "Claim",
    "IntentStore",
    "InvalidTransition",
    "LostRace",
]

TRANSITIONS: dict[IntentState | None, frozenset[IntentState]] = {
    None: frozenset({"claimed"}),
    "claimed": frozenset({"accepted", "rejected", "unknown", "expired"}),
    "unknown": frozenset({"accepted", "rejected", "claimed"}),
    "accepted": frozenset(),
    "rejected": frozenset(),
    "expired": frozenset(),
}
TERMINAL: frozenset[IntentState] = frozenset({"accepted", "rejected", "expired"})


class InvalidTransition(Exception):
    """A transition outside :data:`TRANSITIONS` was attempted (a bug, never a venue fact)."""


class LostRace(Exception):
    """Another delivery or replica moved the intent first (the KV revision changed)."""


@dataclass(frozen=True)
class Claim:
    """An intent record together with the KV revision it was read or written at."""

    record: IntentRecord
    revision: int
    fresh: bool  # True when this call created the claim


class IntentStore:
    """Claims and transitions of intents in the ``intents`` bucket."""

    def __init__(self, kv: KeyValue, owner: str) -> None:
        self._kv = kv
        self.owner = owner
        self._held: dict[str, int] = {}  # intent id -> revision of the claim this store holds

    async def claim(self, intent_id: str, now_ns: int) -> Claim:
        """Create the claim, or return the existing record if someone got there first."""
        record = IntentRecord(
            intent_id=intent_id, state="claimed", owner=self.owner, claimed_ns=now_ns
        )
        try:
            revision = await self._kv.create(intent_id, encode(record))
        except KeyWrongLastSequenceError:
            entry = await self._kv.get(intent_id)
            existing = decode(entry.value or b"", IntentRecord)
            return Claim(existing, entry.revision or 0, fresh=False)
        self._held[intent_id] = revision
        return Claim(record, revision, fresh=True)

    async def verify(self, intent_id: str) -> None:
        """Check that this store still holds the claim at the revision it last wrote.

        Raises:
            LostRace: if the claim was moved, deleted or never held here.
        """
        held = self._held.get(intent_id)
        try:
            entry = await self._kv.get(intent_id)
        except (KeyNotFoundError, KeyDeletedError) as exc:
            raise LostRace(f"{intent_id}: the claim is gone") from exc
        if held is None or entry.revision != held:
            raise LostRace(f"{intent_id}: the claim was taken over (revision {entry.revision})")

    async def is_terminal(self, intent_id: str) -> bool:
        """Whether the intent's claim exists and is in a terminal state."""
        try:
            entry = await self._kv.get(intent_id)
        except (KeyNotFoundError, KeyDeletedError):
            return False
        return decode(entry.value or b"", IntentRecord).state in TERMINAL

    def forget(self, intent_id: str) -> None:
        """Stop tracking an intent this store no longer works on."""
        self._held.pop(intent_id, None)

    async def move(self, claim: Claim, to: IntentState, **changes: object) -> Claim:
        """Transition ``claim`` to ``to`` (compare-and-set on its revision).

        Raises:
            InvalidTransition: if the table does not allow it.
            LostRace: if the record changed since ``claim`` was read.
        """
        if to not in TRANSITIONS[claim.record.state]:
            raise InvalidTransition(f"{claim.record.intent_id}: {claim.record.state} -> {to}")
        record = msgspec.structs.replace(claim.record, state=to, owner=self.owner, **changes)
        try:
            revision = await self._kv.update(
                claim.record.intent_id, encode(record), last=claim.revision
            )
        except KeyWrongLastSequenceError as exc:
            raise LostRace(f"{claim.record.intent_id} moved by another delivery") from exc
        if to in TERMINAL:
            self._held.pop(claim.record.intent_id, None)
        else:
            self._held[claim.record.intent_id] = revision
        return Claim(record, revision, fresh=False)

    async def release(self, claim: Claim) -> None:
        """Delete a fresh claim when nothing was sent, so a redelivery can claim it again.

        Raises:
            InvalidTransition: if the claim is not in ``claimed``.
        """
        if claim.record.state != "claimed":
            raise InvalidTransition(
                f"{claim.record.intent_id}: cannot release {claim.record.state}"
            )
        self._held.pop(claim.record.intent_id, None)
        await self._kv.delete(claim.record.intent_id, last=claim.revision)
