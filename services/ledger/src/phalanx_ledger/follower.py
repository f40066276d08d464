"""Replay a stream from its first message, then follow it: the ledger's only input.

Choice (see the package docstring): an **ordered push consumer with DeliverPolicy.ALL**, created
afresh by every process. It is ephemeral (no durable state on the server to clean up or to
share by mistake between replicas), needs no acks, delivers strictly in stream order, and
nats-py re-creates it from the last seen sequence after a gap or missed heartbeats, so a NATS
blip neither skips nor repeats events. The price is a full replay at every start, which is what
"events are the record" asks for; snapshots can shorten it later.

A message that arrives after the replay (live) is handled in a CONSUMER span, a child of its
publish; the replay makes no spans: its traces ended long ago (ADR-0070).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import msgspec
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from phalanx_common.bus import Bus, consuming
from phalanx_common.codec import decode_event
from phalanx_common.events import AnyEvent
from phalanx_common.subjects import StreamSpec

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
        self.lost = 0
        self.delivered = 0  # messages read since start (a restart from a snapshot: the tail)

    @property
    def name(self) -> str:
        """The stream's name."""
        return self._stream.name

    @property
    def caught_up(self) -> bool:
        """Whether every message that was in the stream at start has been applied."""
        return self._caught_up.is_set()

    async def start(self, after_seq: int = 0) -> None:
        """Note where the stream ends now and subscribe from its first message, or from the
        one after ``after_seq`` (the last a snapshot covers; ADR-0122).

        Messages after ``after_seq`` the stream no longer holds (aged out before a snapshot
        covered them) are counted in :attr:`lost` and logged as an error.
        """
        info = await self._bus.js.stream_info(self._stream.name)
        last = int(info.state.last_seq)
        first = int(info.state.first_seq)
        self.lost = max(0, min(first - 1, last) - after_seq)
        if self.lost:
            log.error(
                "%s no longer holds %d messages after #%d (aged out before a snapshot covered "
                "them): the book misses them (ADR-0122)",
                self.name,
                self.lost,
                after_seq,
            )
        self.last_seq = after_seq
        self._target_seq = last if info.state.messages and last > after_seq else 0
        if self._target_seq == 0:
            self._caught_up.set()
        (subject,) = self._stream.subjects
        config = None
        if after_seq:
            config = ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=after_seq + 1
            )
        self._sub = await self._bus.js.subscribe(
            subject,
            stream=self._stream.name,
            ordered_consumer=True,
            config=config,
            deliver_policy=None if after_seq else DeliverPolicy.ALL,
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
        self.delivered += 1
        try:
            event = decode_event(msg.data)
        except msgspec.DecodeError as exc:
            self.undecodable += 1
            log.error("skipping undecodable message %s #%d: %s", self.name, seq, exc)
        else:
            traced = (
                consuming(msg, self.name, "ledger")
                if seq > self._target_seq
                else contextlib.nullcontext()
            )
            with traced:
                try:
                    self._handler(event)
                except Exception:
                    log.exception("handler failed on %s #%d; event skipped", self.name, seq)
        self.last_seq = seq
        if seq >= self._target_seq:
            self._caught_up.set()
