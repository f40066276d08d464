"""Replay a stream from its first message, then follow it: the ledger's only input.

Choice (see the package docstring): an **ordered push consumer with DeliverPolicy.ALL**, created
afresh by every process. It is ephemeral (no durable state on the server to clean up or to
share by mistake between replicas), needs no acks, delivers strictly in stream order, and
nats-py re-creates it from the last seen sequence after a gap or missed heartbeats, so a NATS
blip neither skips nor repeats events. The price is a full replay at every start, which is what
"events are the record" asks for; snapshots can shorten it later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import msgspec
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from opentelemetry import context as otel_context

from phalanx_common.bus import Bus
from phalanx_common.codec import decode_event
from phalanx_common.events import AnyEvent
from phalanx_common.subjects import StreamSpec
from phalanx_common.telemetry import extract_context

__all__ = ["StreamFollower"]

log = logging.getLogger(__name__)


class StreamFollower:
    """Feeds every event of one stream, in order, to a synchronous handler.

    Args:
        bus: The connected bus.
        stream: The stream to follow (its subjects are filtered on).
        handler: Called with each decoded event; it must not block.
    """

    def __init__(self, bus: Bus, stream: StreamSpec, handler: Callable[[AnyEvent], None]) -> None:
        self._bus = bus
        self._stream = stream
        self._handler = handler
        self._sub: JetStreamContext.PushSubscription | None = None
        self._target_seq = 0
        self._caught_up = asyncio.Event()
        self.last_seq = 0
        self.undecodable = 0

    @property
    def name(self) -> str:
        """The stream's name."""
        return self._stream.name

    @property
    def caught_up(self) -> bool:
        """Whether every message that was in the stream at start has been applied."""
        return self._caught_up.is_set()

    async def start(self) -> None:
        """Note where the stream ends now and subscribe from its first message."""
        info = await self._bus.js.stream_info(self._stream.name)
        self._target_seq = int(info.state.last_seq) if info.state.messages else 0
        if self._target_seq == 0:
            self._caught_up.set()
        (subject,) = self._stream.subjects
        self._sub = await self._bus.js.subscribe(
            subject,
            stream=self._stream.name,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.ALL,
            cb=self._on_message,
        )

    async def wait_caught_up(self, timeout_s: float) -> bool:
        """Wait until the replay reached the end noted at start; ``False`` on timeout."""
        try:
            await asyncio.wait_for(self._caught_up.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        """Unsubscribe (idempotent)."""
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    async def _on_message(self, msg: Msg) -> None:
        seq = int(msg.metadata.sequence.stream)
        try:
            event = decode_event(msg.data)
        except msgspec.DecodeError as exc:
            self.undecodable += 1
            log.error("skipping undecodable message %s #%d: %s", self.name, seq, exc)
        else:
            # In the message's trace context: what the handler records (a fan-out exemplar)
            # names the signal's trace.
            token = otel_context.attach(extract_context(msg.headers))
            try:
                self._handler(event)
            except Exception:
                log.exception("handler failed on %s #%d; event skipped", self.name, seq)
            finally:
                otel_context.detach(token)
        self.last_seq = seq
        if seq >= self._target_seq:
            self._caught_up.set()
