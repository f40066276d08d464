"""The signal log: each strategy's recent signals with every account's outcome and phase times.

Like TradersPost's signal list and trade execution panel, built from the record (ADR-0015): an
ordered consumer on SIGNALS (``SignalReceived``: received, stored) and one on ORDERS
(``SignalPlanned``: planned; ``OrderAccepted``: sent, acknowledged; ``OrderRejected``,
``OrderOutcomeUnknown``, ``IntentSkipped``, ``IntentExpired``). Each account of a signal ends in
one outcome: ``placed`` (with the broker's order id), ``rejected`` (the reason), ``skipped``
(why), ``expired`` (the signal was past its deadline), or ``unknown`` while an outcome is being
reconciled. A deliberate re-run (ADR-0090) shows ``replay_of`` (the original's id, who asked and
why) and the original lists its re-runs in ``replays``. Each signal shows its ``trace_id``
(ADR-0070): the trace to look up in Tempo or any OTLP backend. Both replay their stream from
the start when ingest
starts, so the log survives restarts; each strategy keeps its ``size`` most recent signals in
memory (older ones are evicted; the streams still hold them). Events of one signal may arrive
from the two streams in any order: whichever comes first creates the entry.
"""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import msgspec
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy
from nats.js.client import JetStreamContext

from phalanx_common import subjects
from phalanx_common.codec import decode_event
from phalanx_common.events import (
    AnyEvent,
    IntentExpired,
    IntentSkipped,
    OrderAccepted,
    OrderOutcomeUnknown,
    OrderRejected,
    SignalPlanned,
    SignalReceived,
)

__all__ = ["SignalLog", "SignalLogFollower"]

log = logging.getLogger(__name__)


def _ms(start_ns: int, end_ns: int) -> float | None:
    if not start_ns or not end_ns:
        return None
    return round((end_ns - start_ns) / 1e6, 3)


@dataclass
class _Account:
    account_id: int
    outcome: str
    reason: str = ""
    order_id: int | None = None
    sent_ns: int = 0
    acknowledged_ns: int = 0
    decided_ns: int = 0
    stage: str = ""
    text: str = ""


@dataclass
class _Entry:
    signal_id: str
    strategy_id: str
    ticker: str = ""
    action: str = ""
    received_ns: int = 0
    stored_ns: int = 0
    planned_ns: int = 0
    intents: int = 0
    planner_rejected: str = ""
    test: bool = False
    trace_id: str = ""
    due_ns: int = 0  # a delayed signal is planned at this time
    duplicate_deliveries: int = 0
    replay_of: str = ""  # a deliberate re-run of this signal id (ADR-0090)
    replay_by: str = ""
    replay_reason: str = ""
    replays: list[str] = field(default_factory=list)  # the re-runs of this signal
    accounts: dict[int, _Account] = field(default_factory=dict)

    def _intents_ended(self) -> int:
        """Planned intents with an outcome (planning-time expiries were never intents)."""
        return sum(
            1
            for a in self.accounts.values()
            if a.outcome in ("placed", "rejected", "unknown")
            or (a.outcome == "expired" and a.stage == "before-send")
        )

    def view(self) -> dict[str, Any]:
        counts = {"placed": 0, "rejected": 0, "unknown": 0, "skipped": 0, "expired": 0}
        for account in self.accounts.values():
            counts[account.outcome] = counts.get(account.outcome, 0) + 1
        acks = [a.acknowledged_ns for a in self.accounts.values() if a.acknowledged_ns]
        sends = [a.sent_ns for a in self.accounts.values() if a.sent_ns]
        if self.planner_rejected:
            status = "rejected"
        elif not self.planned_ns and self.due_ns:
            status = "delayed"  # parked until due_ns, then planned (ADR-0040)
        elif not self.planned_ns:
            status = "received"
        elif (
            self.intents
            and sum(counts[k] for k in ("placed", "rejected", "unknown"))
            + sum(
                1
                for a in self.accounts.values()
                if a.outcome == "expired" and a.stage != "planning"
            )
            < self.intents
        ):
            status = "executing"
        else:
            status = "done"
        base = self.received_ns
        return {
            "signal_id": self.signal_id,
            "strategy_id": self.strategy_id,
            "ticker": self.ticker,
            "action": self.action,
            "status": status,
            "trace_id": self.trace_id,
            "planner_rejected": self.planner_rejected,
            "test": self.test,
            "replay_of": self.replay_of,
            "replay_by": self.replay_by,
            "replay_reason": self.replay_reason,
            "replays": list(self.replays),
            "intents": self.intents,
            "counts": counts,
            "received_ns": self.received_ns,
            "due_ns": self.due_ns,
            "stored_ns": self.stored_ns,
            "planned_ns": self.planned_ns,
            "first_sent_ns": min(sends) if sends else 0,
            "last_acknowledged_ns": max(acks) if acks else 0,
            "timings_ms": {
                "stored": _ms(base, self.stored_ns),
                "planned": _ms(base, self.planned_ns),
                "first_sent": _ms(base, min(sends)) if sends else None,
                "last_acknowledged": _ms(base, max(acks)) if acks else None,
            },
            "accounts": [
                {
                    "account_id": a.account_id,
                    "outcome": a.outcome,
                    "reason": a.reason,
                    "text": a.text,
                    "order_id": a.order_id,
                    "sent_ns": a.sent_ns,
                    "acknowledged_ns": a.acknowledged_ns,
                    "sent_ms": _ms(base, a.sent_ns),
                    "acknowledged_ms": _ms(base, a.acknowledged_ns),
                    "decided_ms": _ms(base, a.decided_ns),
                }
                for a in sorted(self.accounts.values(), key=lambda x: x.account_id)
            ],
        }


class SignalLog:
    """In-memory projection of recent signals per strategy.

    Args:
        size: Signals kept per strategy (the most recent by arrival).
    """

    def __init__(self, size: int) -> None:
        self._size = max(1, size)
        self._by_strategy: dict[str, OrderedDict[str, _Entry]] = {}
        self._index: dict[str, _Entry] = {}

    def _entry(self, signal_id: str, strategy_id: str) -> _Entry:
        entry = self._index.get(signal_id)
        if entry is not None:
            return entry
        entry = _Entry(signal_id=signal_id, strategy_id=strategy_id)
        bucket = self._by_strategy.setdefault(strategy_id, OrderedDict())
        bucket[signal_id] = entry
        self._index[signal_id] = entry
        while len(bucket) > self._size:
            evicted, _ = bucket.popitem(last=False)
            self._index.pop(evicted, None)
        return entry

    def apply(self, event: AnyEvent) -> None:
        """Fold one event into the log (events of other kinds are ignored)."""
        if isinstance(event, SignalReceived):
            self._received(event)
        elif isinstance(event, SignalPlanned):
            entry = self._entry(event.signal_id, event.strategy_id)
            entry.planned_ns = event.ts_event
            entry.intents = event.intents
            entry.planner_rejected = event.rejected
        elif isinstance(event, OrderAccepted):
            account = self._account(event.signal_id, event.strategy_id, event.account_id)
            account.outcome = "placed"
            account.order_id = event.order_id
            account.text = event.note
            account.sent_ns = event.sent_ns
            account.acknowledged_ns = event.ts_event
            account.decided_ns = event.ts_event
        elif isinstance(event, IntentExpired):
            self._expired(event)
        elif isinstance(event, OrderRejected | OrderOutcomeUnknown | IntentSkipped):
            self._not_placed(event)

    def _received(self, event: SignalReceived) -> None:
        entry = self._entry(event.signal_id, event.strategy_id)
        if entry.received_ns:
            entry.duplicate_deliveries += 1
            return
        entry.ticker = event.signal.ticker
        entry.action = event.signal.action
        entry.test = event.signal.test
        entry.trace_id = event.trace_id
        if event.signal.delay_s:
            with contextlib.suppress(ValueError):  # refused at the door; old events aside
                entry.due_ns = event.due_ns()
        entry.received_ns = event.ts_event
        entry.stored_ns = event.ts_init
        if event.replay_of:
            entry.replay_of = event.replay_of
            entry.replay_by = event.replay_by
            entry.replay_reason = event.replay_reason
            original = self._index.get(event.replay_of)
            if original is not None and event.signal_id not in original.replays:
                original.replays.append(event.signal_id)

    def _expired(self, event: IntentExpired) -> None:
        account = self._account(event.signal_id, event.strategy_id, event.account_id)
        if account.outcome == "placed":
            return
        account.outcome = "expired"
        account.stage = event.stage
        account.reason = event.text or "past the signal's deadline"
        account.decided_ns = event.ts_event

    def _not_placed(self, event: OrderRejected | OrderOutcomeUnknown | IntentSkipped) -> None:
        account = self._account(event.signal_id, event.strategy_id, event.account_id)
        if account.outcome == "placed":
            return  # a later doubt never hides a venue's acknowledgement
        account.outcome = {
            OrderRejected: "rejected",
            OrderOutcomeUnknown: "unknown",
            IntentSkipped: "skipped",
        }[type(event)]
        account.reason = event.reason
        if isinstance(event, OrderRejected | IntentSkipped) and event.text:
            account.text = event.text
        account.decided_ns = event.ts_event

    def _account(self, signal_id: str, strategy_id: str, account_id: int) -> _Account:
        entry = self._entry(signal_id, strategy_id)
        account = entry.accounts.get(account_id)
        if account is None:
            account = entry.accounts[account_id] = _Account(account_id, "pending")
        return account

    def signals(self, strategy_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """The strategy's most recent signals, newest first."""
        bucket = self._by_strategy.get(strategy_id)
        if not bucket:
            return []
        entries = list(bucket.values())[-limit:]
        return [e.view() for e in reversed(entries)]

    def signal(self, signal_id: str) -> dict[str, Any] | None:
        """One signal, or ``None`` if it is not (or no longer) in the log."""
        entry = self._index.get(signal_id)
        return entry.view() if entry is not None else None


class SignalLogFollower:
    """Feeds a :class:`SignalLog` from SIGNALS and ORDERS (ordered consumers, from the start)."""

    def __init__(self, js: JetStreamContext, signal_log: SignalLog) -> None:
        self._js = js
        self._log = signal_log
        self._subs: list[JetStreamContext.PushSubscription] = []

    async def start(self) -> None:
        """Subscribe to both streams from their first message."""
        for stream in (subjects.SIGNALS, subjects.ORDERS):
            (subject,) = stream.subjects
            self._subs.append(
                await self._js.subscribe(
                    subject,
                    stream=stream.name,
                    ordered_consumer=True,
                    deliver_policy=DeliverPolicy.ALL,
                    cb=self._on_message,
                )
            )

    async def stop(self) -> None:
        """Unsubscribe (idempotent)."""
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subs.clear()

    async def _on_message(self, msg: Msg) -> None:
        try:
            event = decode_event(msg.data)
        except msgspec.DecodeError as exc:
            log.debug("signal log skips an undecodable message on %s: %s", msg.subject, exc)
            return
        try:
            self._log.apply(event)
        except Exception:
            log.exception("signal log failed on %s; event skipped", msg.subject)
