"""Make a signal durable: JetStream first, the local outbox when JetStream cannot answer.

The message id (``Nats-Msg-Id``) is the signal id, so a resent alert inside the SIGNALS stream's
duplicate window (24 h) is stored once and acknowledged as a duplicate.

With an outbox (ADR-0010) a signal is durable when *either* JetStream acknowledged it (200) *or*
it was committed and fsync'd to the outbox (202, ``queued``), which the drainer publishes with the
same message id once NATS is back. While the outbox holds unpublished rows every new signal goes
to it too, so signals reach the stream in the order they were accepted (a ``buy`` then an
``exit`` never arrive swapped). Without an outbox, a signal that JetStream did not acknowledge is
refused (503): the client never buffers it, so a refused signal is never delivered late.

Each publish is a PRODUCER span in the webhook's trace; a signal that waits in the outbox keeps
the trace context it was accepted in, and its late publish is a child of it (ADR-0070).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from nats.errors import Error as NatsError

from phalanx_common import ids, subjects
from phalanx_common.bus import Bus
from phalanx_common.clock import Clock
from phalanx_common.codec import encode
from phalanx_common.errors import PhalanxError
from phalanx_common.events import Signal, SignalReceived
from phalanx_common.telemetry import current_trace_id, extract_context, inject_headers
from phalanx_ingest.outbox import Outbox, OutboxDrainer, OutboxRow

__all__ = ["PublishResult", "SignalPublisher", "SignalsUnavailableError"]

log = logging.getLogger(__name__)


class SignalsUnavailableError(PhalanxError):
    """The signal could not be made durable (NATS down and no outbox, or the outbox failed)."""


@dataclass(frozen=True)
class PublishResult:
    """How the signal was made durable, and whether it was already known."""

    duplicate: bool
    queued: bool = False


class SignalPublisher:
    """Publishes accepted signals to the SIGNALS stream, through the outbox when needed.

    Args:
        bus: The connected bus.
        clock: Source of ``ts_init``.
        timeout_s: How long to wait for the stream's ack.
        outbox: The open outbox, or ``None`` (then: 503 when JetStream cannot answer).
        retention_s: Retention of published outbox rows.
    """

    def __init__(
        self,
        bus: Bus,
        clock: Clock,
        timeout_s: float,
        outbox: Outbox | None = None,
        retention_s: float = 24 * 3600.0,
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._timeout_s = timeout_s
        self.outbox = outbox
        self.drainer: OutboxDrainer | None = None
        if outbox is not None:
            self.drainer = OutboxDrainer(
                outbox, self._publish_row, lambda: self.connected, clock, retention_s
            )

    @property
    def connected(self) -> bool:
        """Whether NATS is connected right now."""
        return bool(self._bus.nc.is_connected)

    @property
    def outbox_pending(self) -> int:
        """Signals in the outbox not yet acknowledged by JetStream."""
        return self.outbox.pending if self.outbox is not None else 0

    def start(self) -> None:
        """Start the outbox drainer (if there is an outbox)."""
        if self.drainer is not None:
            self.drainer.start()

    async def stop(self) -> None:
        """Stop the drainer; unpublished rows stay for the next start."""
        if self.drainer is not None:
            await self.drainer.stop()

    async def publish(
        self,
        strategy_id: str,
        signal_id: str,
        signal: Signal,
        received_ns: int,
        *,
        not_after_ns: int = 0,
        max_quantity: int = 0,
        contract: str = "",
        replay_of: str = "",
        replay_by: str = "",
        replay_reason: str = "",
    ) -> PublishResult:
        """Make one signal durable and say how; it records the current trace's id, and
        ``replay_*`` mark a deliberate re-run (ADR-0090).

        Raises:
            SignalsUnavailableError: if it could be made durable neither in JetStream nor in
                the outbox.
        """
        event = SignalReceived(
            event_id=ids.new_event_id(),
            ts_event=received_ns,
            ts_init=self._clock.time_ns(),
            signal_id=signal_id,
            strategy_id=strategy_id,
            signal=signal,
            not_after_ns=not_after_ns,
            max_quantity=max_quantity,
            contract=contract,
            replay_of=replay_of,
            replay_by=replay_by,
            replay_reason=replay_reason,
            trace_id=current_trace_id(),
        )
        subject = subjects.signals_subject(strategy_id)
        data = encode(event)
        if self.outbox is not None and (self.outbox.pending or not self.connected):
            return await self._queue(signal_id, subject, data)
        if not self.connected:
            raise SignalsUnavailableError("NATS is not connected")
        try:
            ack = await self._bus.publish_bytes(subject, data, signal_id, self._timeout_s)
        except (NatsError, TimeoutError, OSError) as exc:
            log.warning("signal %s not acknowledged by JetStream: %r", signal_id, exc)
            if self.outbox is None:
                raise SignalsUnavailableError(str(exc)) from exc
            return await self._queue(signal_id, subject, data)
        return PublishResult(duplicate=ack.duplicate is True)

    async def _queue(self, signal_id: str, subject: str, data: bytes) -> PublishResult:
        assert self.outbox is not None
        try:
            inserted = await self.outbox.add(signal_id, subject, data, inject_headers({}))
        except Exception as exc:  # a full or broken disk: not durable, so not a 2xx
            log.error("outbox write failed for %s: %r", signal_id, exc)
            raise SignalsUnavailableError("outbox write failed") from exc
        if self.drainer is not None:
            self.drainer.wake()
        return PublishResult(duplicate=not inserted, queued=True)

    async def _publish_row(self, row: OutboxRow) -> None:
        await self._bus.publish_bytes(
            row.subject,
            row.data,
            row.signal_id,
            self._timeout_s,
            parent=extract_context(row.headers),
        )
