"""Which terminal outcomes this replica has already published, while their batch may come back.

A batch is nak'ed while any of its intents is unfinished, and comes back whole: its terminal
intents are found terminal again (ADR-0006). Their outcome was published when they ended; the
stream drops a second copy (``Nats-Msg-Id``), but core subscribers of ``orders.>`` saw every
copy (1,596 of 6,000 outcomes in a budget-bound benchmark). So the worker remembers the intents
whose outcome it published until their batch is acked or dead-lettered, and publishes again only
what it does not remember: after a restart, on another replica, or once the memory was trimmed,
a terminal claim's outcome is still republished (it may never have gone out), as before
(ADR-0160).

Memory is bounded: an intent is remembered only while its batch is open here, and at most
``keep_batches`` open batches are (the oldest is forgotten first; a batch that moved to another
replica is never settled here).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

__all__ = ["PublishedOutcomes"]


class PublishedOutcomes:
    """Intent ids whose terminal outcome was published here, kept per open batch."""

    def __init__(self, keep_batches: int = 10_000) -> None:
        self._keep_batches = keep_batches
        self._intents: set[str] = set()
        self._open: OrderedDict[str, tuple[str, ...]] = OrderedDict()  # batch -> its intents

    def __len__(self) -> int:
        """How many intents are remembered."""
        return len(self._intents)

    @property
    def open_batches(self) -> int:
        """How many batches that may come back are remembered."""
        return len(self._open)

    def add(self, intent_id: str) -> None:
        """The outcome of ``intent_id`` was published (the stream acked it)."""
        self._intents.add(intent_id)

    def published(self, intent_id: str) -> bool:
        """Whether this replica published the outcome of ``intent_id`` and still knows it."""
        return intent_id in self._intents

    def batch_ended(self, batch_id: str, intent_ids: Iterable[str], *, open_: bool) -> None:
        """A delivery of ``batch_id`` ended: acked or dead-lettered (``open_`` False: forget
        its intents), or nak'ed (``open_`` True: keep them until it comes back and ends)."""
        ids = tuple(intent_ids)
        if not open_:
            self._open.pop(batch_id, None)
            self._intents.difference_update(ids)
            return
        self._open[batch_id] = ids
        self._open.move_to_end(batch_id)
        while len(self._open) > self._keep_batches:
            _, forgotten = self._open.popitem(last=False)
            self._intents.difference_update(forgotten)
