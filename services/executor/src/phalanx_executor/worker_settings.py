"""The worker's knobs and what one delivery did to one intent."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["IntentOutcome", "WorkerSettings"]


@dataclass(frozen=True)
class IntentOutcome:
    """What happened to one intent in this delivery.

    ``state`` is accepted | rejected | duplicate (terminal) or not-ready | pending | unresolved
    (the batch comes back later).
    """

    intent_id: str
    state: str


@dataclass(frozen=True)
class WorkerSettings:
    """Knobs of the worker (from ExecutorSettings)."""

    login_windows: tuple[tuple[int, float], ...] = ((70, 61.0), (4500, 3601.0))
    ip_windows: tuple[tuple[int, float], ...] = ()
    egress_ip: str = "default"
    reversal_wait_s: float = 10.0
    reconcile_grace_s: float = 12.0
    reconcile_deadline_s: float = 60.0
    lockout_s: float = 3600.0
    settle_s: float = 2.0
    position_wait_s: float = 5.0
    batch_pause_s: float = 0.0
    # ADR-0050: a permit wait longer than this hands the unsent intent back (its batch comes
    # back later), so one budget-bound or locked-out login never holds a shard's slots (0: never).
    permit_handback_s: float = 10.0
    # ADR-0062: a request not sent within this long of its permit takes another (0: never);
    # below the margin of the executor's windows over the venue's (1 s by default).
    permit_max_age_s: float = 0.5
    # ADR-0050: a batch still open on its last delivery is dead-lettered with an outcome per
    # intent (0: redelivered without bound).
    max_deliveries: int = 0
