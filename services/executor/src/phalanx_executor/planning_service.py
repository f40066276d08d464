"""The planner's publishing side: one signal in, per-shard ExecBatch commands out.

:meth:`Planner.settle` ends one signal in exactly one of three ways: planned (batches, skips and
a ``SignalPlanned``), parked until its delay has passed (:mod:`delayed_signals`), or rejected
with a recorded reason (``SignalPlanned(rejected=...)``) when planning it fails in a way a retry
cannot change. Publishing failures are raised: the caller (:mod:`signal_consumer`) retries them
within a bound. Every id is deterministic, so settling a signal twice publishes nothing new.
Each settling is a ``plan signal`` span (ADR-0070).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import logging

from opentelemetry import trace

from phalanx_common import ids, subjects
from phalanx_common.bus import Bus
from phalanx_common.clock import Clock
from phalanx_common.contracts import ContractBook
from phalanx_common.events import (
    ExecBatch,
    IntentExpired,
    IntentSkipped,
    SignalPlanned,
    SignalReceived,
)
from phalanx_common.kvmirror import KvMirror
from phalanx_common.records import AccountRecord, SubscriptionRecord
from phalanx_common.telemetry import SpanAttributes, span
from phalanx_executor.delayed_signals import due_ns, park
from phalanx_executor.planner import Plan, plan

__all__ = ["Outcome", "Planner"]

log = logging.getLogger(__name__)


class Outcome(enum.Enum):
    """How :meth:`Planner.settle` ended a signal."""

    PLANNED = "planned"
    PARKED = "parked"
    REJECTED = "rejected"


class Planner:
    """Settles signals: publishes deterministic batches (ids from the signal id) or a verdict."""

    def __init__(
        self,
        *,
        bus: Bus,
        clock: Clock,
        book: ContractBook,
        subscriptions: KvMirror[SubscriptionRecord],
        accounts: KvMirror[AccountRecord],
        shards: int,
        batch_size: int,
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._book = book
        self._subscriptions = subscriptions
        self._accounts = accounts
        self._shards = shards
        self._batch_size = batch_size

    async def settle(
        self,
        event: SignalReceived,
        *,
        traceparent: str = "",
        put_back: bool = False,
        signal_seq: int = 0,
    ) -> Outcome:
        """Plan one signal, park it if its delay has not passed, or reject it with the reason.

        ``put_back``: the signal comes back from the delay stream, so it is due whatever this
        replica's clock says.

        Raises:
            Exception: whatever publishing raised (bus timeouts, NATS errors): retry later.
        """
        attributes: SpanAttributes = {
            "phalanx.signal_id": event.signal_id,
            "phalanx.strategy_id": event.strategy_id,
            "phalanx.put_back": put_back,
        }
        with span("plan signal", attributes) as current:
            outcome = await self._settle(event, traceparent, put_back, signal_seq)
            current.set_attribute("phalanx.outcome", outcome.value)
            return outcome

    async def _settle(
        self, event: SignalReceived, traceparent: str, put_back: bool, signal_seq: int
    ) -> Outcome:
        try:
            due = due_ns(event)
            result = self._plan(event, signal_seq)
        except Exception as exc:  # bad data or a planner bug: a retry gives the same answer
            log.warning("signal %s cannot be planned", event.signal_id, exc_info=True)
            await self.reject(
                event.strategy_id, event.signal_id, f"planning-error: {type(exc).__name__}: {exc}"
            )
            return Outcome.REJECTED
        if not put_back and self._clock.time_ns() < due:
            await park(self._bus, event)
            log.info("signal %s parked until %d", event.signal_id, due)
            return Outcome.PARKED
        current = trace.get_current_span()
        current.set_attribute("phalanx.intents", result.intent_count)
        current.set_attribute("phalanx.batches", len(result.batches))
        current.set_attribute("phalanx.skipped", len(result.skipped))
        await self._publish(event, result, traceparent)
        return Outcome.REJECTED if result.rejected else Outcome.PLANNED

    def _plan(self, event: SignalReceived, signal_seq: int = 0) -> Plan:
        prefix = f"{event.strategy_id}."
        subs = [s for k, s in self._subscriptions.items().items() if k.startswith(prefix)]
        accounts = {a.account_id: a for a in self._accounts.values()}
        now = self._clock.time_ns()
        today = dt.datetime.fromtimestamp(now / 1e9, tz=dt.UTC).date()
        return plan(
            event,
            subs,
            accounts,
            self._book,
            self._shards,
            self._batch_size,
            today,
            now,
            signal_seq,
        )

    async def reject(self, strategy_id: str, signal_id: str, reason: str) -> None:
        """Record that a signal ends without orders, and why (the signal log shows it)."""
        now = self._clock.time_ns()
        await self._bus.publish(
            subjects.planned_subject(strategy_id),
            SignalPlanned(
                event_id=f"planned-{signal_id}",
                ts_event=now,
                ts_init=now,
                signal_id=signal_id,
                strategy_id=strategy_id,
                intents=0,
                batches=0,
                rejected=reason[:500],
            ),
        )

    async def _publish(self, event: SignalReceived, result: Plan, traceparent: str) -> None:
        now = self._clock.time_ns()

        publishes = [
            self._bus.publish(
                subjects.exec_subject(batch.shard),
                ExecBatch(
                    event_id=batch.batch_id,
                    ts_event=event.ts_event,
                    ts_init=now,
                    batch_id=batch.batch_id,
                    signal_id=event.signal_id,
                    strategy_id=event.strategy_id,
                    shard=batch.shard,
                    intents=batch.intents,
                    traceparent=traceparent,
                ),
                msg_id=batch.batch_id,
            )
            for batch in result.batches
        ]
        publishes += [
            self._bus.publish(
                subjects.orders_subject(skip.account_id),
                IntentSkipped(
                    event_id=ids.new_event_id(),
                    ts_event=now,
                    ts_init=now,
                    signal_id=event.signal_id,
                    strategy_id=event.strategy_id,
                    account_id=skip.account_id,
                    reason=skip.reason,
                    text=skip.text,
                ),
                msg_id=f"skip-{ids.intent_id(event.signal_id, skip.account_id)}",
            )
            for skip in result.skipped
        ]
        late_s = (now - result.not_after_ns) / 1e9
        publishes += [
            self._bus.publish(
                subjects.orders_subject(account_id),
                IntentExpired(
                    event_id=ids.new_event_id(),
                    ts_event=now,
                    ts_init=now,
                    intent_id=ids.intent_id(event.signal_id, account_id),
                    signal_id=event.signal_id,
                    strategy_id=event.strategy_id,
                    account_id=account_id,
                    not_after_ns=result.not_after_ns,
                    stage="planning",
                    text=f"planned {late_s:.1f} s after the signal's deadline; nothing was sent",
                ),
                msg_id=f"expired-{ids.intent_id(event.signal_id, account_id)}",
            )
            for account_id in result.expired
        ]
        await asyncio.gather(*publishes)
        if result.rejected:
            log.warning("signal %s not planned: %s", event.signal_id, result.rejected)
        await self._bus.publish(
            subjects.planned_subject(event.strategy_id),
            SignalPlanned(
                event_id=f"planned-{event.signal_id}",
                ts_event=now,
                ts_init=now,
                signal_id=event.signal_id,
                strategy_id=event.strategy_id,
                intents=result.intent_count,
                batches=len(result.batches),
                skipped=len(result.skipped),
                rejected=result.rejected,
                expired=len(result.expired),
                received_ns=event.ts_event,
            ),
        )
