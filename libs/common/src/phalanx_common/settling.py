"""Settling a JetStream message: ack/nak/term that may fail, dead-lettering, keeping it alive.

Shared by the bus's :class:`~phalanx_common.consumer_loop.ConsumerLoop` and by consumers that
run their own pull loop (ingest's replayer, the executor's signal consumer), so a poison
message is terminated and recorded the same way everywhere (ADR-0040, ADR-0156):

- :func:`settle` awaits an ack, nak or term and logs a failure with the subject (no consumer
  leader during a failover): the message then comes back after its ack wait (ADR-0100);
- :func:`terminate` stops redelivery with ``term`` and records a ``MessageTerminated`` event
  with the reason on ``control.terminated`` (:func:`record_terminated` records it alone, for
  a consumer that settles the message itself later: the planner's signal consumer);
- :func:`keep_alive` sends ``in_progress`` every ``interval_s`` until it is cancelled, so slow
  work is not redelivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable
from typing import Any, Protocol

from nats.aio.msg import Msg

from phalanx_common import ids, subjects
from phalanx_common.events import MessageTerminated

__all__ = [
    "EventPublisher",
    "keep_alive",
    "keep_alive_interval",
    "record_terminated",
    "settle",
    "terminate",
]

log = logging.getLogger(__name__)

_REASON_LIMIT = 500


class EventPublisher(Protocol):
    """What :func:`terminate` needs of the bus: publish one event with a ``Nats-Msg-Id``."""

    async def publish(
        self, subject: str, event: MessageTerminated, msg_id: str | None = None
    ) -> Any:
        """Publish ``event`` on ``subject`` and wait for the stream's ack."""


async def settle(msg: Msg, what: str, settling: Awaitable[object]) -> None:
    """Ack, nak or term a message; a failure (no consumer leader to confirm a double ack
    during a failover, a connection being re-established) is logged with the subject: the
    message then comes back after its ack wait, and handlers are idempotent (ADR-0100)."""
    try:
        await settling
    except Exception as exc:
        log.warning("%s of %s failed (redelivered after the ack wait): %r", what, msg.subject, exc)


async def terminate(
    msg: Msg, reason: str, *, stream: str, consumer: str, bus: EventPublisher | None
) -> None:
    """Stop redelivery of a message (``term``) and record it on ``control.terminated``.

    The ``MessageTerminated`` event names the stream, the consumer, the subject, the stream
    sequence and the reason (cut to 500 characters); its ``Nats-Msg-Id`` depends only on the
    stream, the consumer and the sequence, so a redelivered poison message is recorded once.
    Without a ``bus`` only the ``term`` is sent. A publish that fails is logged, not raised.
    """
    await settle(msg, "term", msg.term())
    if bus is None:
        return
    try:
        await record_terminated(msg, reason, stream=stream, consumer=consumer, bus=bus)
    except Exception:
        log.exception("could not record the terminated message %s", msg.subject)


async def record_terminated(
    msg: Msg, reason: str, *, stream: str, consumer: str, bus: EventPublisher
) -> None:
    """Record on ``control.terminated`` that a message ends here, without settling it (the
    caller terms or acks it when its own bookkeeping is done, e.g. the planner advances its
    strategy's cursor first). Same event and ``Nats-Msg-Id`` as :func:`terminate`.

    Raises:
        Exception: whatever the publish raised (the caller decides: retry or log).
    """
    seq = msg.metadata.sequence.stream if msg.metadata and msg.metadata.sequence else 0
    now = time.time_ns()
    event = MessageTerminated(
        event_id=ids.new_event_id(),
        ts_event=now,
        ts_init=now,
        stream=stream,
        consumer=consumer,
        subject=msg.subject,
        stream_seq=seq,
        reason=reason[:_REASON_LIMIT],
    )
    await bus.publish(subjects.DEAD_LETTERS, event, msg_id=f"terminated-{stream}-{consumer}-{seq}")


def keep_alive_interval(ack_wait_s: float, floor_s: float) -> float:
    """How often to send ``in_progress``: a third of the ack wait, at least ``floor_s``."""
    return max(floor_s, ack_wait_s / 3)


async def keep_alive(msg: Msg, interval_s: float) -> None:
    """Send ``in_progress`` every ``interval_s`` until cancelled; a failure ends it quietly
    (the message then comes back after its ack wait)."""
    with contextlib.suppress(Exception):
        while True:
            await asyncio.sleep(interval_s)
            await msg.in_progress()
