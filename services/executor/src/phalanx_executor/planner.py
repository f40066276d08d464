"""The planner: settles each signal, publishing its per-shard ExecBatch commands (the pure
planning is :mod:`planning`).

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
from collections.abc import Coroutine
from typing import Any

from nats.js.api import PubAck
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
from phalanx_executor.planning import PlannedBatch, PlanStream

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
            stream = self._plan(event, signal_seq)
        except Exception as exc:  # bad data or a planner bug: a retry gives the same answer
            return await self._cannot_plan(event, exc)
        if not put_back and self._clock.time_ns() < due:
            await park(self._bus, event)
            log.info("signal %s parked until %d", event.signal_id, due)
            return Outcome.PARKED
        now = self._clock.time_ns()
        try:
            batches = await self._publish_batches(event, stream, traceparent, now)
        except _PlanningFailed as failed:  # before any batch was published: as above
            return await self._cannot_plan(event, failed.cause)
        current = trace.get_current_span()
        current.set_attribute("phalanx.intents", stream.intent_count)
        current.set_attribute("phalanx.batches", batches)
        current.set_attribute("phalanx.skipped", len(stream.skipped))
        await self._publish_verdicts(event, stream, batches, now)
        return Outcome.REJECTED if stream.rejected else Outcome.PLANNED

    async def _cannot_plan(self, event: SignalReceived, exc: BaseException) -> Outcome:
        log.warning("signal %s cannot be planned", event.signal_id, exc_info=exc)
        await self.reject(
            event.strategy_id, event.signal_id, f"planning-error: {type(exc).__name__}: {exc}"
        )
        return Outcome.REJECTED

    def _plan(self, event: SignalReceived, signal_seq: int = 0) -> PlanStream:
        prefix = f"{event.strategy_id}."
        subs = [s for k, s in self._subscriptions.items().items() if k.startswith(prefix)]
        accounts = {a.account_id: a for a in self._accounts.values()}
        now = self._clock.time_ns()
        today = dt.datetime.fromtimestamp(now / 1e9, tz=dt.UTC).date()
        return PlanStream(
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

    async def _publish_batches(
        self, event: SignalReceived, stream: PlanStream, traceparent: str, now: int
    ) -> int:
        """Publish each batch as soon as it is planned (ADR-0165); return how many.

        Between two batches the event loop runs, so the first batches are on the wire (and
        their orders on the way) while the rest of a big fan-out is still being planned.

        Raises:
            _PlanningFailed: planning failed before any batch was published.
            Exception: planning failed after some were (retried, then dead-lettered, like a
                failed publish), or a publish failed.
        """
        sent: list[asyncio.Future[PubAck]] = []
        try:
            for batch in stream.batches():
                sent.append(
                    asyncio.ensure_future(self._publish_batch(event, batch, traceparent, now))
                )
                await asyncio.sleep(0)  # let this batch leave before planning the next
        except Exception as exc:
            if not sent:
                raise _PlanningFailed(exc) from exc
            await asyncio.gather(*sent, return_exceptions=True)
            raise
        for result in await asyncio.gather(*sent, return_exceptions=True):
            if isinstance(result, BaseException):
                raise result
        return len(sent)

    def _publish_batch(
        self, event: SignalReceived, batch: PlannedBatch, traceparent: str, now: int
    ) -> Coroutine[Any, Any, PubAck]:
        return self._bus.publish(
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

    async def _publish_verdicts(
        self, event: SignalReceived, stream: PlanStream, batches: int, now: int
    ) -> None:
        """The skipped and expired accounts' outcomes, then the signal's ``SignalPlanned``."""
        publishes = [
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
            for skip in stream.skipped
        ]
        late_s = (now - stream.not_after_ns) / 1e9
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
                    not_after_ns=stream.not_after_ns,
                    stage="planning",
                    text=f"planned {late_s:.1f} s after the signal's deadline; nothing was sent",
                ),
                msg_id=f"expired-{ids.intent_id(event.signal_id, account_id)}",
            )
            for account_id in stream.expired
        ]
        await asyncio.gather(*publishes)
        if stream.rejected:
            log.warning("signal %s not planned: %s", event.signal_id, stream.rejected)
        await self._bus.publish(
            subjects.planned_subject(event.strategy_id),
            SignalPlanned(
                event_id=f"planned-{event.signal_id}",
                ts_event=now,
                ts_init=now,
                signal_id=event.signal_id,
                strategy_id=event.strategy_id,
                intents=stream.intent_count,
                batches=batches,
                skipped=len(stream.skipped),
                rejected=stream.rejected,
                expired=len(stream.expired),
                received_ns=event.ts_event,
            ),
        )


class _PlanningFailed(Exception):
    """Planning raised before any batch was published: the signal is rejected with the cause."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause
