"""No cyclic garbage collection while the book is built at start (ADR-0122).

Building a book of 10^6 fills creates tens of millions of objects that all stay alive; the
cyclic collector, triggered by every few hundred allocations, walks them again and again
(measured: 75 % of a replay's time, and of a snapshot's decoding). None of them form cycles
that need the collector (fills, positions and index entries are freed by reference counts, if
ever). So the collector is paused while the snapshot loads and the streams replay, and
resumed after; cycles made meanwhile (few: the NATS client's) are collected then.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collector_paused"]


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic collector (resumed on exit if it was running)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
