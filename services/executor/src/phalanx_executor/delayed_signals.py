"""TradersPost's ``delay``: a signal is planned ``delay`` seconds after it was received, durably.

A signal that is not due yet is parked by the planner in the DELAYED stream
(``delayed.<strategy>``, ``Nats-Msg-Id`` = ``<signal id>:delayed``), which acknowledges it on
SIGNALS. The :class:`DelayedSignals` consumer holds each parked message by naking it with the
time still to wait (JetStream redelivers it then, or after the ack wait when the holder died);
once due it is put back on ``signals.<strategy>`` with ``Nats-Msg-Id`` = ``<signal id>:due``, so
a second put-back is dropped by the server, and acknowledged. The signal keeps its id, so its
intent ids (and their claims) never change: however often it is parked or put back, an account
trades it at most once (ADR-0040).
"""

from __future__ import annotations

import logging

from nats.aio.msg import Msg

from phalanx_common import subjects
from phalanx_common.bus import MSG_ID, Bus, ConsumerSpec
from phalanx_common.clock import Clock
from phalanx_common.errors import Poison, Retry
from phalanx_common.events import MAX_DELAY_S, AnyEvent, SignalReceived

__all__ = [
    "MAX_DELAY_S",
    "DelayedSignals",
    "delayed_consumer_spec",
    "due_ns",
    "is_put_back",
    "park",
]

log = logging.getLogger(__name__)

_PARKED = ":delayed"
_DUE = ":due"


def due_ns(event: SignalReceived) -> int:
    """When the signal is due (:meth:`SignalReceived.due_ns`).

    Raises:
        ValueError: if the delay is not a number of seconds from 0 to :data:`MAX_DELAY_S`.
    """
    return event.due_ns()


def is_put_back(msg: Msg) -> bool:
    """Whether a SIGNALS message is a delayed signal put back when due (plan it, never park)."""
    return (msg.headers or {}).get(MSG_ID, "").endswith(_DUE)


async def park(bus: Bus, event: SignalReceived) -> None:
    """Park a signal that is not due yet (a repeat within two hours is dropped by the server)."""
    await bus.publish(
        subjects.delayed_subject(event.strategy_id), event, msg_id=event.signal_id + _PARKED
    )


def delayed_consumer_spec(ack_wait_s: float = 10.0) -> ConsumerSpec:
    """The durable consumer of parked signals every executor replica shares."""
    return ConsumerSpec(
        subjects.DELAYED.name,
        subjects.Consumers.DELAYED,
        filter_subject=subjects.DELAYED_ALL,
        # A replica that died holding parked signals hands them on after this long.
        ack_wait_s=ack_wait_s,
        # Parked signals stay pending while they wait: room for every one of them.
        max_ack_pending=100_000,
    )


class DelayedSignals:
    """The consumer of parked signals: holds each until due, then puts it back on SIGNALS.

    Args:
        recheck_s: the longest single wait; a parked signal is looked at again at least this
            often, so a clock that moved is followed.
    """

    def __init__(self, bus: Bus, clock: Clock, recheck_s: float = 60.0) -> None:
        self._bus = bus
        self._clock = clock
        self._recheck_s = recheck_s
        self.checks = 0  # how many times a parked signal was looked at (for tests and metrics)

    async def handle(self, event: AnyEvent, msg: Msg) -> None:
        """Bus handler for one parked ``SignalReceived``."""
        if not isinstance(event, SignalReceived):
            raise Poison(f"unexpected {type(event).__name__} on a delayed subject")
        self.checks += 1
        try:
            due = due_ns(event)
        except ValueError as exc:  # parked by a planner that checked it: cannot happen
            raise Poison(str(exc)) from exc
        wait_s = (due - self._clock.time_ns()) / 1e9
        if wait_s > 0:
            raise Retry("not due yet", delay_s=min(wait_s, self._recheck_s))
        await self._bus.publish(
            subjects.signals_subject(event.strategy_id), event, msg_id=event.signal_id + _DUE
        )
        log.info("delayed signal %s is due: put back on SIGNALS", event.signal_id)
