"""Where the ledger keeps its latest snapshot: the ``ledger_snapshots`` KV bucket (ADR-0122).

A snapshot is larger than a NATS message may be (about 100 bytes a fill, compressed), so it is
cut into chunks of ``chunk_bytes`` stored under ``<slot>.<n>``; key ``head`` names the slot,
the chunk count, the size and the SHA-256 of the whole, and the stream sequences it covers.
There are two slots, ``a`` and ``b``, written in turn: a new snapshot goes into the slot the
head does not name, and only once all its chunks are stored does the head move to it. A ledger
that dies while writing leaves the previous snapshot whole. Chunks beyond a head's count are
leftovers of an earlier, longer snapshot in that slot and are never read. Nothing is deleted,
so the ledger needs only ``$KV.ledger_snapshots.>`` (ADR-0117), no purge rights.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Literal

import msgspec
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from phalanx_common.codec import decode, encode
from phalanx_ledger.book_state import Covered, SnapshotUnreadable

__all__ = ["SnapshotHead", "SnapshotStore"]

log = logging.getLogger(__name__)

HEAD = "head"
Slot = Literal["a", "b"]


class SnapshotHead(msgspec.Struct, frozen=True, kw_only=True):
    """Which slot holds the latest snapshot, how to check it, and what it covers."""

    slot: Slot
    chunks: int
    size: int
    sha256: str
    covered: Covered
    taken_ns: int


class SnapshotStore:
    """Save and load the latest snapshot's bytes in a KV bucket.

    Args:
        kv: The bound ``Buckets.LEDGER_SNAPSHOTS`` bucket.
        chunk_bytes: Size of each chunk (below the server's max payload, 1 MiB by default).
    """

    def __init__(self, kv: KeyValue, chunk_bytes: int = 512 * 1024) -> None:
        self._kv = kv
        self._chunk_bytes = chunk_bytes

    async def head(self) -> SnapshotHead | None:
        """The head, ``None`` when no snapshot was ever saved.

        Raises:
            SnapshotUnreadable: a head that does not decode.
        """
        try:
            entry = await self._kv.get(HEAD)
        except KeyNotFoundError:
            return None
        try:
            return decode(entry.value or b"", SnapshotHead)
        except msgspec.DecodeError as exc:
            raise SnapshotUnreadable(f"head does not decode: {exc}") from exc

    async def save(self, data: bytes, covered: Covered, taken_ns: int) -> SnapshotHead:
        """Store ``data`` in the free slot, then point the head at it."""
        current = await self._readable_head()
        slot: Slot = "b" if current is not None and current.slot == "a" else "a"
        chunks = 0
        for start in range(0, len(data), self._chunk_bytes):
            await self._kv.put(f"{slot}.{chunks}", data[start : start + self._chunk_bytes])
            chunks += 1
        head = SnapshotHead(
            slot=slot,
            chunks=chunks,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            covered=covered,
            taken_ns=taken_ns,
        )
        await self._kv.put(HEAD, encode(head))
        return head

    async def load(self) -> tuple[SnapshotHead, bytes] | None:
        """The latest snapshot's head and bytes, ``None`` when there is none.

        Raises:
            SnapshotUnreadable: a missing chunk, or bytes whose size or digest differ from the
                head's.
        """
        head = await self.head()
        if head is None:
            return None
        parts: list[bytes] = []
        for n in range(head.chunks):
            try:
                entry = await self._kv.get(f"{head.slot}.{n}")
            except KeyNotFoundError as exc:
                raise SnapshotUnreadable(f"chunk {head.slot}.{n} is missing") from exc
            parts.append(entry.value or b"")
        data = b"".join(parts)
        if len(data) != head.size or hashlib.sha256(data).hexdigest() != head.sha256:
            raise SnapshotUnreadable(
                f"slot {head.slot}: {len(data)} bytes whose digest differs from the head's"
            )
        return head, data

    async def _readable_head(self) -> SnapshotHead | None:
        try:
            return await self.head()
        except SnapshotUnreadable as exc:
            log.warning("overwriting an unreadable snapshot head: %s", exc)
            return None
