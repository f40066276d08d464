"""Taking and loading snapshots of the ledger's book (ADR-0122).

- **Load** (:func:`load_snapshot`, at start): the latest snapshot is restored into the fresh
  projection and the followers start after the sequences it covers. A snapshot that cannot be
  used — another format version, a corrupt or missing chunk, a head that does not decode, or
  sequences beyond a stream's end (the stream was recreated) — is logged and ignored: the
  ledger rebuilds from the streams' first messages, as without snapshots.
- **Take** (:class:`Snapshotter`, once the start-up replay is done): after
  ``every_fills`` new fills, or ``interval_s`` after the last snapshot when anything changed,
  and once right after the start-up replay when that replay applied anything. The book is
  captured between two events (the followers' handlers are synchronous, so no event is half
  applied), then encoded off the event loop and stored. A failed save is logged and retried at
  the next turn; the previous snapshot stays whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec

from phalanx_common.tasks import OwnedTasks
from phalanx_ledger.book_state import (
    Covered,
    SnapshotUnreadable,
    capture,
    decode_book,
    encode_book,
    restore,
)
from phalanx_ledger.follower import StreamFollower
from phalanx_ledger.projection import PositionsProjection
from phalanx_ledger.snapshot_store import SnapshotHead, SnapshotStore

__all__ = ["Snapshotter", "load_snapshot"]

log = logging.getLogger(__name__)


async def load_snapshot(
    store: SnapshotStore, projection: PositionsProjection, stream_ends: dict[str, int]
) -> SnapshotHead | None:
    """Restore the latest usable snapshot into ``projection``; ``None`` when there is none.

    Args:
        store: Where snapshots are.
        projection: A fresh projection.
        stream_ends: The last sequence of FILLS and ORDERS now (a snapshot covering more than
            a stream holds belongs to an earlier incarnation of that stream).
    """
    try:
        found = await store.load()
        if found is None:
            log.info("no ledger snapshot: rebuilding from the streams' first messages")
            return None
        head, data = found
        state = decode_book(data)
    except SnapshotUnreadable as exc:
        log.error("ledger snapshot unusable (%s): rebuilding from the streams", exc)
        return None
    covered = state.covered
    beyond = {
        name: seq
        for name, seq in (("FILLS", covered.fills_seq), ("ORDERS", covered.orders_seq))
        if seq > stream_ends.get(name, 0)
    }
    if beyond:
        log.error(
            "ledger snapshot covers %s beyond the streams' ends %s (streams recreated?): "
            "rebuilding from the streams",
            beyond,
            stream_ends,
        )
        return None
    restore(state, projection)
    head = msgspec.structs.replace(head, covered=covered)  # the payload's word is final
    log.info(
        "ledger snapshot of %s loaded: %d fills, FILLS up to #%d, ORDERS up to #%d",
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(head.taken_ns / 1e9)),
        projection.fills_applied,
        covered.fills_seq,
        covered.orders_seq,
    )
    return head


class Snapshotter:
    """Takes a snapshot after ``every_fills`` fills or ``interval_s`` seconds of changes.

    Args:
        store: Where snapshots go.
        projection: The live projection.
        fills: The FILLS follower; orders: the ORDERS follower (their ``last_seq`` is what a
            snapshot covers).
        every_fills: New fills that trigger a snapshot.
        interval_s: Seconds after which any change triggers one.
        clock_ns: Wall clock for ``taken_ns`` (tests may pass their own).
        on_first_save: Awaited once, after the first snapshot of this process is stored (or
            found covering the book): the streams' age limit is applied then (ADR-0122). A
            failure is logged and tried again after the next snapshot.
    """

    def __init__(
        self,
        store: SnapshotStore,
        projection: PositionsProjection,
        followers: Sequence[StreamFollower],
        every_fills: int,
        interval_s: float,
        clock_ns: Callable[[], int] = time.time_ns,
        on_first_save: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.store = store
        self._projection = projection
        self._fills, self._orders = followers
        self._every_fills = every_fills
        self._interval_s = interval_s
        self._clock_ns = clock_ns
        self._on_first_save = on_first_save
        self._tasks = OwnedTasks("ledger-snapshots")
        self._lock = asyncio.Lock()
        self.covered = Covered()
        self._fills_at_last = 0
        self._last_monotonic = time.monotonic()
        self.saved = 0
        self.failures = 0
        self.last: SnapshotHead | None = None

    def since(self, head: SnapshotHead | None) -> None:
        """Note the snapshot the book was loaded from (nothing new to save until it changes)."""
        if head is not None:
            self.covered = head.covered
            self.last = head
            self._fills_at_last = self._projection.fills_applied

    def _now_covered(self) -> Covered:
        return Covered(fills_seq=self._fills.last_seq, orders_seq=self._orders.last_seq)

    def _due(self) -> bool:
        if self._now_covered() == self.covered:
            return False
        if self._projection.fills_applied - self._fills_at_last >= self._every_fills:
            return True
        return time.monotonic() - self._last_monotonic >= self._interval_s

    async def take(self) -> SnapshotHead | None:
        """The head of a snapshot covering the book now: saved now if the book changed since
        the last one; ``None`` if saving failed, or for a book that never held anything."""
        async with self._lock:
            covered = self._now_covered()
            if covered == self.covered:
                return self.last
            state = capture(self._projection, covered, self._clock_ns())
            fills = self._projection.fills_applied
            self._last_monotonic = time.monotonic()
            try:
                data = await asyncio.to_thread(encode_book, state)
                head = await self.store.save(data, covered, state.taken_ns)
            except Exception:
                self.failures += 1
                log.exception("ledger snapshot not saved; the previous one stays")
                return None
            self.covered = covered
            self._fills_at_last = fills
            self.saved += 1
            self.last = head
            log.info(
                "ledger snapshot saved: %d fills, %d bytes in %d chunks, FILLS #%d, ORDERS #%d",
                fills,
                head.size,
                head.chunks,
                covered.fills_seq,
                covered.orders_seq,
            )
            return head

    def start(self) -> None:
        """Start taking snapshots in the background."""
        self._tasks.spawn(self._run(), "ledger-snapshots")

    async def stop(self) -> None:
        """Stop (a snapshot being written is abandoned; the previous one stays whole)."""
        await self._tasks.stop()

    async def _run(self) -> None:
        await self._take_and_notify()  # what the start-up replay added
        tick = min(1.0, self._interval_s)
        while True:
            await asyncio.sleep(tick)
            if self._due():
                await self._take_and_notify()

    async def _take_and_notify(self) -> None:
        with contextlib.suppress(Exception):
            head = await self.take()
            if head is not None and self._on_first_save is not None:
                try:
                    await self._on_first_save()
                except Exception:
                    log.exception("applying the streams' age limit failed; retried later")
                else:
                    self._on_first_save = None

    def status(self) -> dict[str, Any]:
        """For ``/healthz``: what the last snapshot covers, how many were saved and failed."""
        return {
            "covered": {"FILLS": self.covered.fills_seq, "ORDERS": self.covered.orders_seq},
            "saved": self.saved,
            "failures": self.failures,
            "last_taken_ns": self.last.taken_ns if self.last is not None else None,
        }
