"""Fills on their way to the FILLS stream: published in order, retried until JetStream has them.

A fill the venue reported must reach the ledger (ADR-0061). A publish that fails (NATS down, no
ack in time) is retried with a capped backoff, the fill staying at the head of the queue, so
fills keep their order; each failure is logged and counted. The queue lives in memory: fills
still queued when the process dies are re-published from the next sync snapshot (the venue's
fill id is the message id, so a repeat is dropped by the stream). The queue is bounded; beyond
``max_pending`` a fill is refused loudly (an error log and ``refused``), never silently.
Each fill keeps the trace context it was queued in: its publish is a child of it (ADR-0070).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass

from opentelemetry import context as otel_context

from phalanx_common.bus import Bus
from phalanx_common.events import FillReceived
from phalanx_common.tasks import cancel_and_wait

__all__ = ["FillOutbox"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Pending:
    subject: str
    event: FillReceived
    msg_id: str
    context: otel_context.Context | None = None


class FillOutbox:
    """An ordered, retrying publisher of :class:`FillReceived` events."""

    def __init__(
        self,
        bus: Bus,
        max_pending: int = 100_000,
        backoff_s: float = 0.2,
        backoff_max_s: float = 5.0,
        publish_timeout_s: float = 2.0,
    ) -> None:
        self._bus = bus
        self._queue: deque[_Pending] = deque()
        self._max_pending = max_pending
        self._backoff_s = backoff_s
        self._backoff_max_s = backoff_max_s
        self._timeout_s = publish_timeout_s
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.published = 0
        self.failures = 0  # publish attempts that failed (each retried)
        self.refused = 0  # fills refused because the queue was full (logged as errors)

    @property
    def pending(self) -> int:
        """Fills not yet acknowledged by the stream."""
        return len(self._queue)

    def put(
        self,
        subject: str,
        event: FillReceived,
        msg_id: str,
        context: otel_context.Context | None = None,
    ) -> None:
        """Queue a fill for publishing (in the trace of ``context``, if given)."""
        if len(self._queue) >= self._max_pending:
            self.refused += 1
            log.error(
                "fill outbox full (%d): fill %s of account %s NOT queued; the next sync "
                "snapshot re-publishes it",
                len(self._queue),
                event.fill_id,
                event.account_id,
            )
            return
        self._queue.append(_Pending(subject, event, msg_id, context))
        self._wake.set()

    def start(self) -> None:
        """Start publishing in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="fill-outbox")

    async def stop(self, drain_s: float = 5.0) -> None:
        """Publish what is queued (for at most ``drain_s``), then stop."""
        if self._task is None:
            return
        if self._queue:
            self._drained.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), drain_s)
        if self._queue:
            log.error("fill outbox stopped with %d fills unpublished", len(self._queue))
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        delay = self._backoff_s
        while True:
            if not self._queue:
                self._drained.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            head = self._queue[0]
            try:
                await self._bus.publish(
                    head.subject,
                    head.event,
                    msg_id=head.msg_id,
                    timeout_s=self._timeout_s,
                    parent=head.context,
                )
            except Exception as exc:
                self.failures += 1
                log.warning(
                    "fill %s: publish failed (%r); %d fills queued, retrying in %.1fs",
                    head.event.fill_id,
                    exc,
                    len(self._queue),
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._backoff_max_s)
                continue
            self._queue.popleft()
            self.published += 1
            delay = self._backoff_s
