"""Make a signal durable: publish ``SignalReceived`` and wait for JetStream's ack.

The message id (``Nats-Msg-Id``) is the signal id, so a resent alert inside the SIGNALS stream's
duplicate window (24 h) is stored once and acknowledged as a duplicate. When NATS is not
connected the publish is refused at once instead of being buffered by the client, so a signal
that was answered 503 is never delivered late by a reconnect.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from nats.errors import Error as NatsError

from phalanx_common import ids, subjects
from phalanx_common.bus import Bus
from phalanx_common.clock import Clock
from phalanx_common.errors import PhalanxError
from phalanx_common.events import Signal, SignalReceived

__all__ = ["PublishResult", "SignalPublisher", "SignalsUnavailableError"]

log = logging.getLogger(__name__)


class SignalsUnavailableError(PhalanxError):
    """The signal could not be made durable (NATS down, timeout, stream error)."""


@dataclass(frozen=True)
class PublishResult:
    """What JetStream answered: the stream sequence and whether it was a duplicate."""

    seq: int
    duplicate: bool


class SignalPublisher:
    """Publishes accepted signals to the SIGNALS stream.

    Args:
        bus: The connected bus.
        clock: Source of ``ts_init``.
        timeout_s: How long to wait for the stream's ack.
    """

    def __init__(self, bus: Bus, clock: Clock, timeout_s: float) -> None:
        self._bus = bus
        self._clock = clock
        self._timeout_s = timeout_s

    @property
    def connected(self) -> bool:
        """Whether NATS is connected right now."""
        return bool(self._bus.nc.is_connected)

    async def publish(
        self, strategy_id: str, signal_id: str, signal: Signal, received_ns: int
    ) -> PublishResult:
        """Publish one signal and return once JetStream stored it (or already had it).

        Raises:
            SignalsUnavailableError: if NATS is not connected or the ack did not come in time.
        """
        if not self.connected:
            raise SignalsUnavailableError("NATS is not connected")
        event = SignalReceived(
            event_id=ids.new_event_id(),
            ts_event=received_ns,
            ts_init=self._clock.time_ns(),
            signal_id=signal_id,
            strategy_id=strategy_id,
            signal=signal,
        )
        try:
            ack = await self._bus.publish(
                subjects.signals_subject(strategy_id),
                event,
                msg_id=signal_id,
                timeout_s=self._timeout_s,
            )
        except (NatsError, TimeoutError, OSError) as exc:
            log.warning("signal %s not made durable: %r", signal_id, exc)
            raise SignalsUnavailableError(str(exc)) from exc
        return PublishResult(seq=ack.seq, duplicate=ack.duplicate is True)
