"""The events that tell the bus how an intent ended (``orders.<account>``), once each.

Accepted, rejected and expired are terminal; each carries a ``Nats-Msg-Id`` derived from the
intent, so the stream keeps one copy. An unknown outcome is published every time it is met.
:meth:`OutcomeEvents.republish` sends a terminal claim's outcome again unless this replica
knows it published it (ADR-0160, :mod:`published_outcomes`).
"""

from __future__ import annotations

from phalanx_common import subjects
from phalanx_common.bus import Bus
from phalanx_common.clock import Clock
from phalanx_common.events import OrderIntent
from phalanx_common.intent_events import (
    intent_expired,
    order_accepted,
    order_outcome_unknown,
    order_rejected,
)
from phalanx_common.records import IntentRecord
from phalanx_executor.metrics import ExecutorMetrics
from phalanx_executor.published_outcomes import PublishedOutcomes

__all__ = ["OutcomeEvents"]


class OutcomeEvents:
    """Publishes the outcome events of intents and remembers the terminal ones it published."""

    def __init__(self, bus: Bus, clock: Clock, metrics: ExecutorMetrics) -> None:
        self._bus = bus
        self._clock = clock
        self._metrics = metrics
        self.published = PublishedOutcomes()

    async def republish(self, intent: OrderIntent, record: IntentRecord) -> None:
        """Publish a terminal outcome again, unless this replica knows it published it.

        The outcome may never have gone out (the claim turns terminal first), so it is
        published again when not known here; the stream drops a copy it already has, but core
        subscribers would see it, hence the memory (ADR-0160).
        """
        if self.published.published(intent.intent_id):
            return
        if record.state == "rejected":
            await self.rejected(intent, record.reason, "")
        elif record.state == "expired":
            await self.expired(intent, record.reason)
        else:
            await self.accepted(intent, record.order_id, note=record.reason)

    async def accepted(
        self,
        intent: OrderIntent,
        order_id: int | None,
        legs: tuple[int | None, int | None] = (None, None),
        operation: str = "placeoso",
        sent_ns: int = 0,
        recovered: bool = False,
        note: str = "",
    ) -> None:
        """``OrderAccepted``."""
        event = order_accepted(
            intent,
            self._clock.time_ns(),
            order_id=order_id or 0,
            legs=legs,
            operation=operation,
            sent_ns=sent_ns,
            recovered=recovered,
            note=note,
        )
        subject = subjects.orders_subject(intent.account_id)
        await self._bus.publish(subject, event, msg_id=f"accepted-{intent.intent_id}")
        self.published.add(intent.intent_id)

    async def rejected(self, intent: OrderIntent, reason: str, text: str) -> None:
        """``OrderRejected``."""
        event = order_rejected(intent, self._clock.time_ns(), reason=reason, text=text)
        subject = subjects.orders_subject(intent.account_id)
        await self._bus.publish(subject, event, msg_id=f"rejected-{intent.intent_id}")
        self.published.add(intent.intent_id)

    async def expired(self, intent: OrderIntent, text: str) -> None:
        """``IntentExpired`` (before anything was sent)."""
        event = intent_expired(intent, self._clock.time_ns(), stage="before-send", text=text)
        subject = subjects.orders_subject(intent.account_id)
        await self._bus.publish(subject, event, msg_id=f"expired-{intent.intent_id}")
        self.published.add(intent.intent_id)

    async def unknown(self, intent: OrderIntent, reason: str) -> None:
        """``OrderOutcomeUnknown`` (counted; published each time it is met)."""
        event = order_outcome_unknown(intent, self._clock.time_ns(), reason=reason)
        self._metrics.order_outcome(intent.strategy_id, "unknown")
        subject = subjects.orders_subject(intent.account_id)
        await self._bus.publish(subject, event, msg_id=f"unknown-{event.event_id}")
