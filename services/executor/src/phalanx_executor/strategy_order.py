"""Whose turn it is: signals of one strategy are settled in stream order, across replicas.

Every planner replica pulls from one durable consumer on SIGNALS with many messages in flight,
so signals of different strategies are planned side by side. Within one signal subject
(``signals.<strategy>``) a per-subject cursor in KV holds the stream sequence of the last signal
settled (planned, parked, rejected or dead-lettered). A signal at sequence ``S`` may be settled
only when the first message of its subject after the cursor is ``S`` itself (JetStream's "next
message by subject" lookup), so a strategy's exit is never planned before its earlier entry, by
whichever replica holds either (ADR-0040).

A subject's cursor is created by its first settled signal; until then, messages the consumer
acknowledged before (its ack floor) count as settled.
"""

from __future__ import annotations

import enum
import hashlib
import re

from nats.js import JetStreamContext
from nats.js.errors import (
    KeyDeletedError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NotFoundError,
)
from nats.js.kv import KeyValue

__all__ = ["SignalCursors", "Turn"]

_KEY_OK = re.compile(r"^[-_=A-Za-z0-9.]+$")


class Turn(enum.Enum):
    """Where a signal stands in its strategy's order."""

    DONE = "done"  # already settled (a redelivery): acknowledge it
    MINE = "mine"  # every earlier signal of its subject is settled: settle it now
    WAIT = "wait"  # an earlier signal of its subject is still being settled


class SignalCursors:
    """The per-subject cursors of one consumer, and the order check built on them."""

    def __init__(self, js: JetStreamContext, kv: KeyValue, stream: str, durable: str) -> None:
        self._js = js
        self._kv = kv
        self._stream = stream
        self._durable = durable

    async def turn(self, subject: str, seq: int) -> Turn:
        """Whether the message at stream sequence ``seq`` on ``subject`` may be settled now."""
        done_to, revision = await self._read(subject)
        if done_to >= seq:
            return Turn.DONE
        head = await self._next_seq(subject, done_to + 1)
        if head is None or head >= seq:
            return Turn.MINE
        if revision is not None:
            return Turn.WAIT
        # No cursor yet: earlier messages of the subject may have been acknowledged before
        # cursors existed; the consumer's ack floor says which.
        info = await self._js.consumer_info(self._stream, self._durable)
        floor = info.ack_floor.stream_seq if info.ack_floor and info.ack_floor.stream_seq else 0
        if floor >= seq:
            return Turn.DONE
        if floor >= head:
            head = await self._next_seq(subject, floor + 1)
            if head is None or head >= seq:
                return Turn.MINE
        return Turn.WAIT

    async def advance(self, subject: str, seq: int) -> None:
        """Record that the message at ``seq`` is settled (compare-and-set, never backwards)."""
        key = _key(subject)
        while True:
            done_to, revision = await self._read(subject)
            if done_to >= seq:
                return
            try:
                if revision is None:
                    await self._kv.create(key, str(seq).encode())
                else:
                    await self._kv.update(key, str(seq).encode(), last=revision)
                return
            except KeyWrongLastSequenceError:
                continue  # another replica moved it: read again

    async def settled_to(self, subject: str) -> int:
        """The stream sequence of the last settled message of ``subject`` (0: none)."""
        done_to, _ = await self._read(subject)
        return done_to

    async def _read(self, subject: str) -> tuple[int, int | None]:
        try:
            entry = await self._kv.get(_key(subject))
        except (KeyNotFoundError, KeyDeletedError):
            return 0, None
        return int(entry.value or b"0"), entry.revision

    async def _next_seq(self, subject: str, from_seq: int) -> int | None:
        try:
            raw = await self._js.get_msg(self._stream, seq=from_seq, subject=subject, next=True)
        except NotFoundError:
            return None
        return raw.seq


def _key(subject: str) -> str:
    """The KV key of a subject's cursor (subjects outside the key alphabet are hashed)."""
    if _KEY_OK.match(subject):
        return subject
    return "h." + hashlib.sha256(subject.encode()).hexdigest()
