"""Deliberate re-runs: an operator's request on ``signals-replay.<strategy>`` becomes a new signal.

The request (ADR-0090; headers in :mod:`phalanx_common.replay`) names a stored signal by id. The
:class:`Replayer` (one durable consumer on REPLAYS shared by every ingest replica, one request
in flight at a time, so a window's re-runs keep their order) finds that signal in SIGNALS and
publishes a **new** ``SignalReceived`` through the same publisher as the webhook (JetStream, or
the outbox): a new id derived from the request's ``Nats-Msg-Id``, received now, with a fresh
deadline, ``replay_of`` = the original id and the requester's name and reason. The re-run drops
the original's ``delay`` and ``expiresAt`` (the operator chose the moment) and keeps its pinned
contract; the strategy's current maximum quantity and maximum ages apply.

A request that can never be carried out (no original id or request id, unknown strategy or
signal, quantity above today's maximum, or older than ``replay_request_max_age_s``) is
terminated and recorded as a ``MessageTerminated`` on ``control.terminated`` with the reason;
nothing is traded. One that fails for a passing reason (NATS, KV) is redelivered; because the
re-run's id depends only on the request, a redelivery makes the same re-run, which JetStream's
duplicate window (24 h, far longer than the request's maximum age) stores once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import msgspec
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from nats.js.errors import NotFoundError

from phalanx_common import subjects
from phalanx_common.bus import MSG_ID, Bus, ConsumerSpec
from phalanx_common.clock import Clock
from phalanx_common.codec import decode_event
from phalanx_common.events import SignalReceived
from phalanx_common.pull_fetch import fetch_ready
from phalanx_common.replay import REPLAY_BY, REPLAY_OF, REPLAY_REASON, header, rerun_signal_id
from phalanx_common.settling import keep_alive, keep_alive_interval, terminate
from phalanx_ingest.deadlines import not_after_ns
from phalanx_ingest.publisher import SignalPublisher, SignalsUnavailableError
from phalanx_ingest.settings import IngestSettings
from phalanx_ingest.strategies import StrategyDirectory, StrategyLookupError

__all__ = ["ReplayRefusedError", "Replayer", "find_signal"]

log = logging.getLogger(__name__)

_NOTE_LIMIT = 200


class ReplayRefusedError(Exception):
    """A request that can never be carried out; ``reason`` starts with a machine-readable code."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def find_signal(
    js: JetStreamContext, strategy_id: str, signal_id: str, timeout_s: float = 5.0
) -> SignalReceived | None:
    """The first ``SignalReceived`` with ``signal_id`` on the strategy's SIGNALS subject.

    Reads the subject from its first message to its last (an ordered consumer, as
    ``nats sub --stream SIGNALS --all`` does); ``None`` if no message there has that id.
    """
    subject = subjects.signals_subject(strategy_id)
    try:
        last = await js.get_last_msg(subjects.SIGNALS.name, subject)
    except NotFoundError:
        return None
    sub = await js.subscribe(
        subject,
        stream=subjects.SIGNALS.name,
        ordered_consumer=True,
        deliver_policy=DeliverPolicy.ALL,
    )
    try:
        while True:
            msg = await sub.next_msg(timeout=timeout_s)
            try:
                event = decode_event(msg.data)
            except msgspec.DecodeError:
                event = None
            if isinstance(event, SignalReceived) and event.signal_id == signal_id:
                return event
            seq = msg.metadata.sequence.stream if msg.metadata else 0
            if last.seq is None or seq >= last.seq:
                return None
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()


class Replayer:
    """Carries out re-run requests from the REPLAYS stream.

    Args:
        bus: The connected bus.
        publisher: The webhook's publisher (so a re-run waits behind the outbox like a webhook).
        strategies: The strategy directory (maximum quantity and ages of today).
        settings: Ingest settings.
        clock: Source of the re-run's receipt time and of the request's age.
    """

    def __init__(
        self,
        bus: Bus,
        publisher: SignalPublisher,
        strategies: StrategyDirectory,
        settings: IngestSettings,
        clock: Clock,
        ack_wait_s: float = 30.0,
    ) -> None:
        self._bus = bus
        self._publisher = publisher
        self._strategies = strategies
        self._settings = settings
        self._clock = clock
        self._ack_wait_s = ack_wait_s
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sub: JetStreamContext.PullSubscription | None = None
        self.rerun = 0  # re-runs published (new or, after a redelivery, found stored already)
        self.refused = 0

    @property
    def spec(self) -> ConsumerSpec:
        """The durable consumer every ingest replica shares (one request in flight at a time)."""
        return ConsumerSpec(
            subjects.REPLAYS.name,
            subjects.Consumers.REPLAYER,
            filter_subject=subjects.SIGNALS_REPLAY,
            ack_wait_s=self._ack_wait_s,
            max_ack_pending=1,
        )

    async def start(self) -> None:
        """Create or update the consumer and start pulling."""
        self._stopping.clear()
        await self._bus.ensure_consumer(self.spec)
        self._sub = await self._bus.js.pull_subscribe_bind(
            durable=self.spec.durable, stream=self.spec.stream
        )
        self._task = asyncio.create_task(self._run(), name="consume:replayer")

    async def stop(self) -> None:
        """Stop pulling; a request being carried out finishes first (idempotent)."""
        self._stopping.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    async def _run(self) -> None:
        assert self._sub is not None
        while not self._stopping.is_set():
            try:
                msgs = await fetch_ready(self._sub, 1, 1.0)
            except (TimeoutError, NatsTimeoutError):
                continue
            except Exception as exc:
                if self._stopping.is_set():
                    break
                log.warning("fetch on %s failed: %s", self.spec.durable, exc)
                await asyncio.sleep(0.5)
                continue
            for msg in msgs:
                await self._handle(msg)

    async def _handle(self, msg: Msg) -> None:
        keepalive = asyncio.create_task(self._keep_alive(msg))
        try:
            signal_id = await self.carry_out(msg)
        except ReplayRefusedError as refusal:
            self.refused += 1
            await self._terminate(msg, refusal.reason)
            return
        except (SignalsUnavailableError, StrategyLookupError, NatsError, TimeoutError) as exc:
            log.warning("re-run request on %s not carried out yet: %r", msg.subject, exc)
            await msg.nak(delay=2.0)
            return
        except Exception:
            log.exception("re-run request on %s failed; redelivered later", msg.subject)
            await msg.nak(delay=5.0)
            return
        finally:
            keepalive.cancel()
        self.rerun += 1
        try:
            await msg.ack_sync(timeout=5.0)
        except Exception as exc:  # redelivered: the same re-run id, stored once
            log.warning("ack of the re-run request for %s failed: %s", signal_id, exc)

    async def carry_out(self, msg: Msg) -> str:
        """Publish the re-run a request asks for; return its signal id.

        Raises:
            ReplayRefusedError: if the request can never be carried out.
            SignalsUnavailableError, StrategyLookupError, NatsError, TimeoutError: try later.
        """
        headers = msg.headers or {}
        original_id = header(headers, REPLAY_OF)
        request_id = header(headers, MSG_ID)
        strategy_id = msg.subject.removeprefix("signals-replay.")
        if not original_id:
            raise ReplayRefusedError(
                f"replay-without-original: set the header {REPLAY_OF} to the signal id to re-run"
            )
        if not request_id:
            raise ReplayRefusedError(
                f"replay-without-request-id: set the header {MSG_ID} (a new value per deliberate "
                "re-run), so a retried request cannot run twice; nothing was traded"
            )
        self._check_age(msg)
        strategy = await self._strategies.lookup(strategy_id)
        if strategy is None:
            raise ReplayRefusedError(f"replay-unknown-strategy: no strategy {strategy_id!r}")
        original = await find_signal(self._bus.js, strategy_id, original_id)
        if original is None:
            raise ReplayRefusedError(
                f"replay-unknown-signal: no signal {original_id} of strategy {strategy_id} in "
                f"{subjects.SIGNALS.name}; nothing was traded"
            )
        signal = msgspec.structs.replace(original.signal, delay_s=None, expires_at=None)
        maximum = strategy.max_quantity or self._settings.max_signal_quantity
        if (
            signal.quantity is not None
            and signal.quantity_type != "percent_of_position"
            and signal.quantity > maximum
        ):
            raise ReplayRefusedError(
                f"replay-quantity-above-maximum: {original_id} asks for {signal.quantity}, more "
                f"than the strategy's maximum of {maximum} today; nothing was traded"
            )
        rerun_id = rerun_signal_id(strategy_id, original_id, request_id)
        now = self._clock.time_ns()
        result = await self._publisher.publish(
            strategy_id,
            rerun_id,
            signal,
            now,
            not_after_ns=not_after_ns(strategy, self._settings, signal, now),
            max_quantity=maximum,
            contract=original.contract,
            replay_of=original_id,
            replay_by=header(headers, REPLAY_BY)[:_NOTE_LIMIT],
            replay_reason=header(headers, REPLAY_REASON)[:_NOTE_LIMIT],
        )
        log.info(
            "re-run %s of %s (request %s)%s",
            rerun_id,
            original_id,
            request_id,
            " was already stored" if result.duplicate else "",
        )
        return rerun_id

    def _check_age(self, msg: Msg) -> None:
        """Refuse a request stored longer ago than allowed (e.g. redelivered from a restore)."""
        stored_ns = int(msg.metadata.timestamp.timestamp() * 1e9)
        age_s = (self._clock.time_ns() - stored_ns) / 1e9
        limit_s = self._settings.replay_request_max_age_s
        if age_s > limit_s:
            raise ReplayRefusedError(
                f"replay-request-expired: the request is {age_s:.0f} s old, more than "
                f"{limit_s:g} s; nothing was traded. Publish a new request to re-run it."
            )

    async def _terminate(self, msg: Msg, reason: str) -> None:
        log.error("re-run request on %s refused: %s", msg.subject, reason)
        await terminate(
            msg, reason, stream=subjects.REPLAYS.name, consumer=self.spec.durable, bus=self._bus
        )

    async def _keep_alive(self, msg: Msg) -> None:
        await keep_alive(msg, keep_alive_interval(self._ack_wait_s, floor_s=0.5))
