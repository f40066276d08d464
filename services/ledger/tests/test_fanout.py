"""Fan-out latency is observed once per signal, when its last account's outcome arrives."""

from __future__ import annotations

from phalanx_common.events import SignalPlanned
from phalanx_ledger.fanout import FanoutTracker

S = 1_000_000_000


def _planned(signal_id: str, intents: int, received_ns: int) -> SignalPlanned:
    return SignalPlanned(
        event_id=f"planned-{signal_id}",
        ts_event=received_ns + S // 10,
        ts_init=received_ns + S // 10,
        signal_id=signal_id,
        strategy_id="st",
        intents=intents,
        batches=1,
        received_ns=received_ns,
    )


def test_observes_receipt_to_the_last_outcome_once() -> None:
    seen: list[float] = []
    tracker = FanoutTracker(seen.append, live=lambda: True)
    tracker.planned(_planned("sig", 3, 100 * S))
    tracker.outcome("sig", "i1", 101 * S)
    tracker.outcome("sig", "i3", 103 * S)
    tracker.outcome("sig", "i1", 104 * S)  # a repeat of i1's outcome is not a new account
    assert seen == []
    tracker.outcome("sig", "i2", 102 * S)
    assert seen == [4.0]  # the latest outcome seen, 104 s, minus receipt at 100 s
    tracker.outcome("sig", "i2", 105 * S)  # after the signal settled: a new, incomplete entry
    assert seen == [4.0]


def test_outcomes_before_the_plan_count_too() -> None:
    seen: list[float] = []
    tracker = FanoutTracker(seen.append, live=lambda: True)
    tracker.outcome("sig", "i1", 102 * S)
    tracker.outcome("sig", "i2", 101 * S)
    tracker.planned(_planned("sig", 2, 100 * S))
    assert seen == [2.0]
    assert len(tracker) == 0


def test_history_replayed_at_start_is_not_observed() -> None:
    seen: list[float] = []
    live = False
    tracker = FanoutTracker(seen.append, live=lambda: live)
    tracker.planned(_planned("old", 1, 100 * S))
    tracker.outcome("old", "i1", 101 * S)
    live = True
    tracker.planned(_planned("new", 1, 200 * S))
    tracker.outcome("new", "i1", 203 * S)
    assert seen == [3.0]


def test_signals_without_orders_or_receipt_are_not_observed_and_memory_is_bounded() -> None:
    seen: list[float] = []
    tracker = FanoutTracker(seen.append, live=lambda: True, max_open=2)
    tracker.planned(_planned("none", 0, 100 * S))
    tracker.planned(_planned("legacy", 1, 0))
    tracker.outcome("legacy", "i1", 101 * S)
    assert seen == []
    for n in range(5):
        tracker.outcome(f"lost-{n}", "i1", 101 * S)
    assert len(tracker) == 2
