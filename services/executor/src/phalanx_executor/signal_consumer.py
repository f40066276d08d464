"""The planner's consumer of SIGNALS: no signal can stop another (ADR-0040).

Many signals are in flight at once (one durable consumer shared by every replica), so signals
of different strategies never wait behind each other; within one strategy a signal waits, in
this process, until every earlier signal of its subject is settled (:mod:`strategy_order`).

Each signal ends with a recorded outcome:
- planned, parked (delay) or rejected (bad data, or :func:`plan` raised) by
  :meth:`Planner.settle`: the cursor advances and the message is acknowledged;
- a failure to publish (bus timeout, NATS or KV error) is retried in this process a few times,
  then the message is naked with a growing delay; after ``max_deliveries`` deliveries it is
  dead-lettered: a ``MessageTerminated`` on ``control.terminated`` and a
  ``SignalPlanned(rejected="planning-failed: ...")``, the cursor advances and it is terminated.
A strategy's later signals wait while its head is retried; other strategies do not.

Each signal held is a CONSUMER span (a child of ingest's publish), covering its wait for its
turn and its planning (ADR-0070).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import msgspec
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext

from phalanx_common import subjects
from phalanx_common.bus import MSG_ID, Bus, ConsumerSpec, consuming
from phalanx_common.codec import decode_event
from phalanx_common.events import SignalReceived
from phalanx_common.pull_fetch import fetch_ready
from phalanx_common.settling import keep_alive, keep_alive_interval, record_terminated, settle
from phalanx_executor.delayed_signals import is_put_back
from phalanx_executor.planner import Planner
from phalanx_executor.strategy_order import SignalCursors, Turn

__all__ = ["PlanningPolicy", "SignalConsumer"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlanningPolicy:
    """Bounds of the signal consumer.

    Attributes:
        attempts: tries of a failing publish within one delivery.
        backoff_s: pause after the first failed try, doubled after each.
        max_deliveries: deliveries of a signal whose publishing keeps failing before it is
            dead-lettered.
        nak_delay_s: redelivery delay after the first failed delivery, doubled after each
            (at most 30 s).
        turn_poll_s: how often a signal waiting for its strategy's turn looks again (it is
            also woken at once when this process settles the signal before it).
        in_flight: messages this process holds at once (waiting or being planned).
        concurrency: signals this process plans at once.
        max_ack_pending: the consumer's bound across all replicas.
        ack_wait_s: the consumer's ack wait (held messages are kept alive meanwhile).
    """

    attempts: int = 3
    backoff_s: float = 0.2
    max_deliveries: int = 5
    nak_delay_s: float = 2.0
    turn_poll_s: float = 0.25
    in_flight: int = 256
    concurrency: int = 16
    max_ack_pending: int = 1024
    ack_wait_s: float = 30.0


class SignalConsumer:
    """Pulls SIGNALS for the planner; :meth:`stop` finishes signals being planned, then stops."""

    def __init__(
        self,
        bus: Bus,
        planner: Planner,
        policy: PlanningPolicy | None = None,
        durable: str = subjects.Consumers.PLANNER,
    ) -> None:
        self._bus = bus
        self._planner = planner
        self._policy = policy or PlanningPolicy()
        self._durable = durable
        self._stream = subjects.SIGNALS.name
        self._slots = asyncio.Semaphore(max(1, self._policy.concurrency))
        self._stopping = asyncio.Event()
        self._progress: dict[str, asyncio.Event] = {}
        self._held: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._sub: JetStreamContext.PullSubscription | None = None
        self._cursors: SignalCursors | None = None

    @property
    def spec(self) -> ConsumerSpec:
        """The durable consumer every replica's planner shares."""
        return ConsumerSpec(
            self._stream,
            self._durable,
            filter_subject=subjects.SIGNALS_ALL,
            ack_wait_s=self._policy.ack_wait_s,
            max_ack_pending=self._policy.max_ack_pending,
        )

    async def start(self) -> None:
        """Create or update the consumer and start pulling."""
        await self._bus.ensure_consumer(self.spec)
        self._cursors = SignalCursors(
            self._bus.js,
            await self._bus.key_value(subjects.Buckets.PLANNER_CURSORS),
            self._stream,
            self._durable,
        )
        self._sub = await self._bus.js.pull_subscribe_bind(
            durable=self._durable, stream=self._stream
        )
        self._task = asyncio.create_task(self._run(), name=f"consume:{self._durable}")

    async def stop(self) -> None:
        """Stop pulling; signals waiting for their turn are handed back, planning ones finish."""
        self._stopping.set()
        for event in self._progress.values():
            event.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self._held:
            await asyncio.gather(*self._held, return_exceptions=True)
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()

    async def _run(self) -> None:
        assert self._sub is not None
        while not self._stopping.is_set():
            room = self._policy.in_flight - len(self._held)
            if room <= 0:
                await asyncio.wait(set(self._held), return_when=asyncio.FIRST_COMPLETED)
                continue
            try:
                msgs = await fetch_ready(self._sub, min(room, 64), 1.0)
            except (TimeoutError, NatsTimeoutError):
                continue
            except Exception as exc:
                if self._stopping.is_set():
                    break
                log.warning("fetch on %s failed: %s", self._durable, exc)
                await asyncio.sleep(0.5)
                continue
            for msg in msgs:
                task = asyncio.create_task(self._hold(msg))
                self._held.add(task)
                task.add_done_callback(self._held.discard)

    async def _hold(self, msg: Msg) -> None:
        with consuming(msg, self._stream, self._durable) as span:
            keepalive = asyncio.create_task(self._keep_alive(msg))
            try:
                await self._in_turn(msg)
            except Exception as exc:
                log.exception("signal consumer failed on %s; redelivered later", msg.subject)
                span.record_exception(exc)
                with contextlib.suppress(Exception):
                    await msg.nak(delay=self._policy.nak_delay_s)
            finally:
                keepalive.cancel()

    async def _in_turn(self, msg: Msg) -> None:
        """Wait for the strategy's turn, settle the signal, advance the cursor, acknowledge."""
        assert self._cursors is not None
        subject, seq = msg.subject, _stream_seq(msg)
        while True:
            progress = self._progress.setdefault(subject, asyncio.Event())
            if self._stopping.is_set():
                await msg.nak()  # another holder takes it at once
                return
            try:
                turn = await self._cursors.turn(subject, seq)
            except Exception as exc:  # NATS or KV away: keep holding, look again
                log.warning("order check of %s/%d failed: %s", subject, seq, exc)
                turn = Turn.WAIT
            if turn is Turn.DONE:
                await _ack(msg)
                return
            if turn is Turn.MINE:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(progress.wait(), self._policy.turn_poll_s)

        async with self._slots:
            failure = await self._settle_with_retries(msg)
        dead = False
        if failure is not None:
            delivered = _delivered(msg)
            if delivered < self._policy.max_deliveries:
                delay = min(30.0, self._policy.nak_delay_s * 2 ** (delivered - 1))
                log.warning(
                    "planning %s/%d failed (delivery %d), again in %.1fs: %s",
                    subject,
                    seq,
                    delivered,
                    delay,
                    failure,
                )
                await msg.nak(delay=delay)
                return
            await self._dead_letter(msg, failure)
            dead = True
        await self._advance(msg, subject, seq)
        if dead:
            await settle(msg, "term", msg.term())
        else:
            await _ack(msg)
        self._woken(subject)

    async def _settle_with_retries(self, msg: Msg) -> Exception | None:
        """Settle the signal; a failure is retried a few times; return the last one, if any."""
        failure: Exception | None = None
        for attempt in range(max(1, self._policy.attempts)):
            try:
                await self._settle(msg)
                return None
            except Exception as exc:
                failure = exc
                log.warning("planning %s failed (try %d): %r", msg.subject, attempt + 1, exc)
                if attempt + 1 < self._policy.attempts:
                    await asyncio.sleep(self._policy.backoff_s * 2**attempt)
        return failure

    async def _settle(self, msg: Msg) -> None:
        try:
            event = decode_event(msg.data)
        except msgspec.DecodeError as exc:
            await self._reject_unreadable(msg, f"undecodable: {exc}")
            return
        if not isinstance(event, SignalReceived):
            await self._reject_unreadable(msg, f"unexpected {type(event).__name__}")
            return
        traceparent = (msg.headers or {}).get("traceparent", "")
        seq = msg.metadata.sequence.stream if msg.metadata and msg.metadata.sequence else 0
        await self._planner.settle(
            event, traceparent=traceparent, put_back=is_put_back(msg), signal_seq=seq or 0
        )

    async def _reject_unreadable(self, msg: Msg, reason: str) -> None:
        """A message that is no signal: its verdict goes where its strategy's would."""
        strategy = msg.subject.removeprefix("signals.")
        signal_id = (msg.headers or {}).get(MSG_ID, "") or f"seq-{_stream_seq(msg)}"
        try:
            subjects.planned_subject(strategy)
        except ValueError:
            await self._terminated(msg, reason)
            return
        log.warning("signal %s on %s rejected: %s", signal_id, msg.subject, reason)
        await self._planner.reject(strategy, signal_id, reason)

    async def _dead_letter(self, msg: Msg, failure: Exception) -> None:
        reason = f"planning-failed: {type(failure).__name__}: {failure}"
        log.error("dead-lettering %s/%d: %s", msg.subject, _stream_seq(msg), reason)
        await self._terminated(msg, reason)
        try:
            event = decode_event(msg.data)
        except msgspec.DecodeError:
            return
        if isinstance(event, SignalReceived):
            with contextlib.suppress(ValueError):
                await self._planner.reject(event.strategy_id, event.signal_id, reason)

    async def _terminated(self, msg: Msg, reason: str) -> None:
        await record_terminated(
            msg, reason, stream=self._stream, consumer=self._durable, bus=self._bus
        )

    async def _advance(self, msg: Msg, subject: str, seq: int) -> None:
        assert self._cursors is not None
        for attempt in range(max(1, self._policy.attempts)):
            try:
                await self._cursors.advance(subject, seq)
                return
            except Exception as exc:
                log.warning("advancing the cursor of %s to %d failed: %r", subject, seq, exc)
                await asyncio.sleep(self._policy.backoff_s * 2**attempt)
        # Settled but not recorded: the redelivery settles it again (same ids) and records it.
        raise RuntimeError(f"cursor of {subject} not advanced to {seq}")

    def _woken(self, subject: str) -> None:
        event = self._progress.pop(subject, None)
        if event is not None:
            event.set()

    async def _keep_alive(self, msg: Msg) -> None:
        await keep_alive(msg, keep_alive_interval(self._policy.ack_wait_s, floor_s=0.5))


def _stream_seq(msg: Msg) -> int:
    return msg.metadata.sequence.stream if msg.metadata and msg.metadata.sequence else 0


def _delivered(msg: Msg) -> int:
    return msg.metadata.num_delivered if msg.metadata and msg.metadata.num_delivered else 1


async def _ack(msg: Msg) -> None:
    """Double ack; a lost ack only causes a redelivery, which finds the signal settled."""
    await settle(msg, "ack", msg.ack_sync(timeout=5.0))
