"""Pull-consumer loops on the JetStream bus.

Ack policy of a consumer loop (ADR-0002):
- the handler returns: ``ack`` (``ack_sync``, a double ack, when ``double_ack`` is set);
- the handler raises :class:`Retry`: ``nak`` with its delay;
- the handler runs in a CONSUMER span whose parent is the PRODUCER span of the publish (W3C
  trace context in the message's headers), so the trace travels on (ADR-0070);
- the handler raises :class:`Poison`, or the message cannot be decoded: ``term``, and a
  ``MessageTerminated`` event with the reason goes to ``control.terminated``;
- any other exception: ``nak`` with an exponential delay, logged with its traceback.
While a handler runs, the loop sends ``in_progress`` so slow work is not redelivered; only as many
messages are fetched as can start at once, so none waits unattended. An ack, nak or term that
fails (no consumer leader during a failover) is logged with the subject; the message then comes
back after its ack wait (ADR-0100).

Settling, dead-lettering and keeping a message alive are :mod:`phalanx_common.settling`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import msgspec
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext

from phalanx_common.bus_tracing import consuming
from phalanx_common.codec import decode_event
from phalanx_common.errors import Poison, Retry
from phalanx_common.events import AnyEvent
from phalanx_common.pull_fetch import fetch_ready
from phalanx_common.settling import (
    EventPublisher,
    keep_alive,
    keep_alive_interval,
    settle,
    terminate,
)
from phalanx_common.tasks import cancel_and_wait

__all__ = ["ConsumerLoop", "ConsumerSpec", "Handler"]

log = logging.getLogger(__name__)

_FETCH_TIMEOUT_S = 1.0  # how long one pull waits for messages before the loop looks again

Handler = Callable[[AnyEvent, Msg], Awaitable[None]]


@dataclass(frozen=True)
class ConsumerSpec:
    """A durable pull consumer on one stream."""

    stream: str
    durable: str
    filter_subject: str | None = None
    ack_wait_s: float = 30.0
    max_deliver: int = -1
    max_ack_pending: int = 1000
    deliver_all: bool = True


class ConsumerLoop:
    """A running pull loop; :meth:`stop` finishes in-flight messages, then stops."""

    def __init__(
        self,
        spec: ConsumerSpec,
        sub: JetStreamContext.PullSubscription,
        handler: Handler,
        batch: int,
        concurrency: int,
        double_ack: bool,
        bus: EventPublisher | None = None,
    ) -> None:
        self.spec = spec
        self._bus = bus
        self._sub = sub
        self._handler = handler
        self._batch = batch
        self._sem = asyncio.Semaphore(max(1, concurrency))
        self._double_ack = double_ack
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        """Start fetching in a named background task."""
        self._task = asyncio.create_task(self._run(), name=f"consume:{self.spec.durable}")

    async def stop(self) -> None:
        """Stop fetching, let in-flight handlers finish, unsubscribe (idempotent)."""
        self._stopping.set()
        if self._task is not None:
            # A fetch ends within its own timeout while the server is there; one that outlives
            # it hangs on a connection that is gone (the server stopped first): give it up.
            try:
                await asyncio.wait_for(asyncio.shield(self._task), _FETCH_TIMEOUT_S + 2.0)
            except TimeoutError:
                await cancel_and_wait(self._task)
            self._task = None
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._sub.unsubscribe()

    async def _slots(self) -> int:
        """Wait for at least one free handler slot (0 when stopping) and take all free ones.

        Only as many messages are fetched as can start at once: a message fetched but not
        started would get no ``in_progress`` and silently time out (ADR-0050).
        """
        acquire = asyncio.ensure_future(self._sem.acquire())
        stop = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait({acquire, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not acquire.done():
            acquire.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await acquire
        if not acquire.done() or acquire.cancelled():
            return 0
        if self._stopping.is_set():
            self._sem.release()
            return 0
        taken = 1
        while taken < self._batch and not self._sem.locked():
            await self._sem.acquire()
            taken += 1
        return taken

    async def _run(self) -> None:
        while not self._stopping.is_set():
            slots = await self._slots()
            if slots == 0:
                break
            try:
                msgs = await fetch_ready(self._sub, slots, _FETCH_TIMEOUT_S)
            except (TimeoutError, NatsTimeoutError):
                msgs = []
            except Exception as exc:
                msgs = []
                if not self._stopping.is_set():
                    log.warning("fetch on %s failed: %s", self.spec.durable, exc)
                    await asyncio.sleep(0.5)
            for _ in range(slots - len(msgs)):
                self._sem.release()
            for msg in msgs:
                task = asyncio.create_task(self._handle(msg))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)

    async def _handle(self, msg: Msg) -> None:
        try:
            await self._dispatch(msg)
        finally:
            self._sem.release()

    async def _dispatch(self, msg: Msg) -> None:
        try:
            event = decode_event(msg.data)
        except msgspec.DecodeError as exc:
            await self._terminate(msg, f"undecodable: {exc}")
            return
        # The handler runs in a CONSUMER span, a child of the publish that the message's headers
        # name, so whatever it publishes carries the trace on: one trace follows a signal from
        # the webhook to the last fill.
        with consuming(msg, self.spec.stream, self.spec.durable) as current:
            keepalive = asyncio.create_task(self._keep_alive(msg))
            try:
                await self._handler(event, msg)
            except Retry as exc:
                log.info("retrying %s in %.1fs: %s", msg.subject, exc.delay_s, exc.reason)
                current.set_attribute("phalanx.outcome", "retry")
                await settle(msg, "nak", msg.nak(delay=exc.delay_s))
                return
            except Poison as exc:
                current.set_attribute("phalanx.outcome", "terminated")
                await self._terminate(msg, exc.reason)
                return
            except Exception as exc:
                delivered = msg.metadata.num_delivered if msg.metadata else 1
                delay = min(30.0, 0.5 * 2 ** min(delivered, 6))
                log.exception("handler failed on %s (delivery %d)", msg.subject, delivered)
                current.record_exception(exc)
                current.set_attribute("phalanx.outcome", "failed")
                await settle(msg, "nak", msg.nak(delay=delay))
                return
            finally:
                keepalive.cancel()
            if self._double_ack:
                await settle(msg, "ack", msg.ack_sync(timeout=5.0))
            else:
                await settle(msg, "ack", msg.ack())

    async def _terminate(self, msg: Msg, reason: str) -> None:
        """Stop redelivery of a poison message and record it as an event, with the reason."""
        log.error("terminating message on %s: %s", msg.subject, reason)
        await terminate(
            msg, reason, stream=self.spec.stream, consumer=self.spec.durable, bus=self._bus
        )

    async def _keep_alive(self, msg: Msg) -> None:
        await keep_alive(msg, keep_alive_interval(self.spec.ack_wait_s, floor_s=1.0))
