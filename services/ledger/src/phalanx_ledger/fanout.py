"""Fan-out latency: webhook receipt → the last account's outcome of a signal.

The ledger sees every outcome of every account on ORDERS, and the planner's ``SignalPlanned``
(how many intents a signal became, and when its webhook was received), so it is the one place
that knows when a signal's *last* account was acknowledged, however many executor replicas
worked its shards (ADR-0075). An outcome is ``OrderAccepted``, ``OrderRejected`` or an
``IntentExpired`` before sending; an unknown outcome is not one (it is resolved later).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from phalanx_common.events import SignalPlanned

__all__ = ["FanoutTracker"]

Observe = Callable[[float], None]


@dataclass
class _Open:
    expected: int | None = None  # None until SignalPlanned is seen (outcomes may come first)
    received_ns: int = 0
    done: set[str] = field(default_factory=set)
    last_ns: int = 0


class FanoutTracker:
    """Counts each signal's outcomes and observes the fan-out once the last one arrived.

    Args:
        observe: Called with the seconds from receipt to the last outcome, in the context of
            the message that carried the last outcome (so an exemplar can name its trace).
        live: Whether observations count yet: ``False`` while the start-up replay re-reads
            history, which must not be observed a second time.
        max_open: Signals tracked at once; the oldest is forgotten beyond (a signal whose
            outcomes never all come, e.g. an intent left unknown, must not grow memory).
    """

    def __init__(self, observe: Observe, live: Callable[[], bool], max_open: int = 10_000) -> None:
        self._observe = observe
        self._live = live
        self._max_open = max_open
        self._open: OrderedDict[str, _Open] = OrderedDict()
        self.observed = 0

    def __len__(self) -> int:
        return len(self._open)

    def planned(self, event: SignalPlanned) -> None:
        """The planner's verdict: how many outcomes the signal waits for, and its receipt."""
        entry = self._entry(event.signal_id)
        entry.expected = event.intents
        entry.received_ns = event.received_ns
        self._settle(event.signal_id, entry)

    def outcome(self, signal_id: str, intent_id: str, ts_ns: int) -> None:
        """One account's outcome (a repeat of an intent's outcome counts once)."""
        entry = self._entry(signal_id)
        entry.done.add(intent_id)
        entry.last_ns = max(entry.last_ns, ts_ns)
        self._settle(signal_id, entry)

    def _entry(self, signal_id: str) -> _Open:
        entry = self._open.get(signal_id)
        if entry is None:
            entry = self._open[signal_id] = _Open()
            while len(self._open) > self._max_open:
                self._open.popitem(last=False)
        return entry

    def _settle(self, signal_id: str, entry: _Open) -> None:
        if entry.expected is None or len(entry.done) < entry.expected:
            return
        del self._open[signal_id]
        if entry.expected == 0 or not entry.received_ns or not self._live():
            return
        self.observed += 1
        self._observe(max(0.0, (entry.last_ns - entry.received_ns) / 1e9))
