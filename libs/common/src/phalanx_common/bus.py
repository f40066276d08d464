"""The JetStream bus: topology set-up, idempotent publishing and pull-consumer loops.

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
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import msgspec
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import NoRespondersError, NoServersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    PubAck,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError, NotFoundError, ServiceUnavailableError
from nats.js.kv import KeyValue
from opentelemetry import context as otel_context
from opentelemetry.trace import Span, SpanKind

from phalanx_common import ids, subjects
from phalanx_common.codec import decode_event, encode
from phalanx_common.errors import DependencyUnavailable, Poison, Retry
from phalanx_common.events import AnyEvent, MessageTerminated
from phalanx_common.kv_reads import FastReadKeyValue
from phalanx_common.nats_auth import NatsAuth
from phalanx_common.tasks import cancel_and_wait
from phalanx_common.telemetry import extract_context, inject_headers, span

__all__ = [
    "MSG_ID",
    "Bus",
    "ConsumerLoop",
    "ConsumerSpec",
    "Handler",
    "consuming",
    "publishing",
    "server_urls",
]

log = logging.getLogger(__name__)

_FETCH_TIMEOUT_S = 1.0  # how long one pull waits for messages before the loop looks again

MSG_ID = "Nats-Msg-Id"

# A JetStream API request that got no answer (yet): asked again while a service starts.
_UNANSWERED = (NatsTimeoutError, TimeoutError, NoRespondersError, ServiceUnavailableError)

Handler = Callable[[AnyEvent, Msg], Awaitable[None]]


def server_urls(url: str) -> list[str]:
    """The server URLs of ``PHALANX_NATS_URL``: one URL, or several separated by commas (the
    nodes of a cluster; the client picks one at random and fails over to the others).

    Raises:
        DependencyUnavailable: if the value names no URL at all.
    """
    servers = [part.strip() for part in url.split(",") if part.strip()]
    if not servers:
        raise DependencyUnavailable("NATS", url or "(empty)", ValueError("no server URL"))
    return servers


def _family(subject: str) -> str:
    """A subject's first token: span names stay few (``orders.<account>`` -> ``orders``)."""
    return subject.split(".", 1)[0]


@contextlib.contextmanager
def publishing(
    subject: str, msg_id: str, parent: otel_context.Context | None = None
) -> Iterator[dict[str, str]]:
    """A PRODUCER span for one publish (a child of ``parent``, default: the current context);
    yields the headers to send: its trace context and ``Nats-Msg-Id``."""
    attributes = {
        "messaging.system": "nats",
        "messaging.operation.type": "send",
        "messaging.operation.name": "publish",
        "messaging.destination.name": subject,
        "messaging.message.id": msg_id,
    }
    with span(f"publish {_family(subject)}", attributes, kind=SpanKind.PRODUCER, parent=parent):
        headers = inject_headers({})
        headers[MSG_ID] = msg_id
        yield headers


@contextlib.contextmanager
def consuming(msg: Msg, stream: str, consumer: str) -> Iterator[Span]:
    """A CONSUMER span for handling one message, a child of the span that published it (the
    trace context in its headers); current while it runs."""
    attributes: dict[str, str | int] = {
        "messaging.system": "nats",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": msg.subject,
        "messaging.consumer.group.name": consumer,
        "messaging.message.id": (msg.headers or {}).get(MSG_ID, ""),
    }
    if msg.metadata is not None and msg.metadata.sequence is not None:
        attributes["messaging.nats.stream_sequence"] = int(msg.metadata.sequence.stream)
        attributes["messaging.nats.delivery_count"] = int(msg.metadata.num_delivered or 1)
    parent = extract_context(msg.headers)
    with span(f"process {stream}", attributes, kind=SpanKind.CONSUMER, parent=parent) as current:
        yield current


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


class Bus:
    """A connection to NATS with JetStream, and the operations Phalanx services need."""

    def __init__(self, nc: NatsClient, url: str, api_timeout_s: float = 5.0) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream(timeout=api_timeout_s)
        self.url = url
        self._kv: dict[str, KeyValue] = {}

    @classmethod
    async def connect(
        cls,
        url: str,
        name: str,
        connect_timeout_s: float = 3.0,
        auth: NatsAuth | None = None,
        api_timeout_s: float = 5.0,
    ) -> Bus:
        """Connect to NATS; keep reconnecting forever once connected.

        Args:
            url: the server URL(s), comma-separated.
            name: the connection name the server shows.
            connect_timeout_s: timeout of each connection attempt at start-up.
            auth: user/password and TLS settings (ADR-0086); none by default.
            api_timeout_s: how long a JetStream API request (streams, consumers, KV) waits.

        Raises:
            DependencyUnavailable: if NATS cannot be reached, or refuses the credentials, at
                start-up.
        """

        async def _on_error(exc: Exception) -> None:
            log.warning("nats: %s", exc)

        async def _on_disconnect() -> None:
            log.warning("nats: disconnected from %s", url)

        async def _on_reconnect() -> None:
            server = nc.connected_url
            where = f"{server.hostname}:{server.port}" if server is not None else url
            log.info("nats: reconnected to %s", where)  # host and port only: no credentials

        options: dict[str, Any] = {
            "name": name,
            "connect_timeout": connect_timeout_s,
            "allow_reconnect": True,
            # A bounded number of attempts at start-up, so a missing server is reported...
            "max_reconnect_attempts": 2,
            "reconnect_time_wait": 0.2,
            "error_cb": _on_error,
            "disconnected_cb": _on_disconnect,
            "reconnected_cb": _on_reconnect,
            **(auth or NatsAuth()).connect_kwargs(),
        }
        servers = server_urls(url)
        nc = NatsClient()
        attempt = nc.connect(servers, **options)
        try:
            # nats-py retries a failed TLS handshake (an untrusted certificate) without end:
            # bound the whole start-up by three attempts' timeouts and waits per server.
            await asyncio.wait_for(attempt, len(servers) * (3 * connect_timeout_s + 0.5) + 0.5)
        except (NoServersError, OSError, TimeoutError, NatsTimeoutError, NatsError) as exc:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.close(), 1.0)
            raise DependencyUnavailable("NATS", url, exc) from exc
        # ...and unbounded reconnection once running: a blip must not end the service.
        nc.options["max_reconnect_attempts"] = -1
        nc.options["reconnect_time_wait"] = 0.5
        return cls(nc, url, api_timeout_s)

    async def close(self, timeout_s: float = 5.0) -> None:
        """Drain and close the connection (idempotent, bounded even when NATS is gone)."""
        if self.nc.is_closed:
            return
        if self.nc.is_connected:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.nc.drain(), timeout_s)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.nc.close(), timeout_s)

    # -- topology ---------------------------------------------------------------------------

    async def ensure_topology(
        self,
        replicas: int = 1,
        byte_limits: bool = False,
        timeout_s: float = 120.0,
        ledger_history_s: float | None = None,
    ) -> None:
        """Create or update every stream and KV bucket Phalanx declares (idempotent).

        Age limits always apply; the streams' byte limits only with ``byte_limits``
        (``PHALANX_STREAM_BYTE_LIMITS``, on in the prod overlay): JetStream reserves every
        stream's ``max_bytes`` against the server's file store up front (about 9.5 GiB in all),
        and a server on a small disk would then refuse to create them (ADR-0087).

        A request JetStream does not answer in time (a cluster without quorum yet, or busy
        creating replicated streams for every service starting at once) is sent again until
        ``timeout_s`` has passed (ADR-0100).

        The age limit of the streams the ledger snapshots (``StreamSpec.ledger_history``: FILLS,
        ORDERS) is the ledger's to set (ADR-0122): only a caller passing ``ledger_history_s``
        (0 = keep forever) changes it; any other caller keeps the existing stream's.

        Raises:
            DependencyUnavailable: if JetStream still does not answer after ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        for spec in subjects.ALL_STREAMS:
            if not byte_limits:
                spec = dataclasses.replace(spec, max_bytes=-1)
            if spec.ledger_history and ledger_history_s is not None:
                spec = dataclasses.replace(spec, max_age_s=ledger_history_s)
            elif spec.ledger_history:
                await self._answered(
                    functools.partial(self._ensure_keeping_age, spec, replicas), spec.name, deadline
                )
                continue
            await self._answered(
                functools.partial(self.ensure_stream, spec, replicas), spec.name, deadline
            )
        for bucket in subjects.ALL_BUCKETS:
            await self._answered(
                functools.partial(self.key_value, bucket, replicas), bucket.name, deadline
            )

    async def _ensure_keeping_age(self, spec: subjects.StreamSpec, replicas: int) -> None:
        """:meth:`ensure_stream`, keeping the max age an existing stream has (ADR-0122)."""
        try:
            info = await self.js.stream_info(spec.name)
        except NotFoundError:
            pass
        else:
            spec = dataclasses.replace(spec, max_age_s=float(info.config.max_age or 0.0))
        await self.ensure_stream(spec, replicas)

    async def _answered(
        self, request: Callable[[], Awaitable[object]], what: str, deadline: float
    ) -> None:
        """Run a JetStream API ``request`` again while JetStream does not answer in time."""
        delay = 0.2
        while True:
            try:
                await request()
                return
            except _UNANSWERED as exc:
                if time.monotonic() + delay >= deadline:
                    raise DependencyUnavailable("NATS JetStream", self.url, exc) from exc
                log.warning("JetStream did not answer for %s (%r); asking again", what, exc)
                await asyncio.sleep(delay)
                delay = min(2 * delay, 2.0)

    async def ensure_stream(self, spec: subjects.StreamSpec, replicas: int = 1) -> None:
        """Create a stream, or bring an existing one to the declared configuration."""
        config = StreamConfig(
            name=spec.name,
            subjects=list(spec.subjects),
            description=spec.description or None,
            retention=(
                RetentionPolicy.WORK_QUEUE
                if spec.retention is subjects.Retention.WORK_QUEUE
                else RetentionPolicy.LIMITS
            ),
            storage=StorageType.FILE,
            num_replicas=replicas,
            duplicate_window=spec.duplicate_window_s,
            max_age=spec.max_age_s,
            max_bytes=spec.max_bytes,
            discard=DiscardPolicy.NEW if spec.discard_new else DiscardPolicy.OLD,
        )
        try:
            await self.js.add_stream(config)
        except BadRequestError:
            await self.js.update_stream(config)

    async def key_value(self, bucket: subjects.Bucket, replicas: int = 1) -> KeyValue:
        """Bind (creating if needed) a KV bucket; handles are cached."""
        kv = self._kv.get(bucket.name)
        if kv is not None:
            return kv
        try:
            kv = await self.js.key_value(bucket.name)
        except NotFoundError:
            try:
                kv = await self.js.create_key_value(
                    bucket=bucket.name,
                    description=bucket.description or None,
                    history=bucket.history,
                    ttl=bucket.ttl_s or None,
                    replicas=replicas,
                    storage=StorageType.FILE,
                )
            except BadRequestError:  # created concurrently by another service
                kv = await self.js.key_value(bucket.name)
        kv = FastReadKeyValue.wrap(kv)  # ADR-0145: reads decoded with msgspec
        self._kv[bucket.name] = kv
        return kv

    # -- publishing -------------------------------------------------------------------------

    async def publish(
        self,
        subject: str,
        event: msgspec.Struct,
        msg_id: str | None = None,
        timeout_s: float = 2.0,
        headers: dict[str, str] | None = None,
        parent: otel_context.Context | None = None,
    ) -> PubAck:
        """Publish an event to JetStream and wait for the stream's ack.

        ``msg_id`` (default: the event's ``event_id``) becomes ``Nats-Msg-Id``, so a repeat within
        the stream's duplicate window is dropped by the server (``ack.duplicate is True``). The
        publish is a PRODUCER span, a child of ``parent`` (default: the current context).
        """
        return await self.publish_bytes(
            subject,
            encode(event),
            msg_id or str(getattr(event, "event_id", "")),
            timeout_s,
            headers,
            parent,
        )

    async def publish_bytes(
        self,
        subject: str,
        data: bytes,
        msg_id: str,
        timeout_s: float = 2.0,
        headers: dict[str, str] | None = None,
        parent: otel_context.Context | None = None,
    ) -> PubAck:
        """Publish encoded bytes as :meth:`publish` does (a PRODUCER span, ``Nats-Msg-Id``)."""
        with publishing(subject, msg_id, parent) as traced:
            hdrs = {**(headers or {}), **traced}
            return await self.js.publish(subject, data, timeout=timeout_s, headers=hdrs)

    # -- consuming --------------------------------------------------------------------------

    async def ensure_consumer(self, spec: ConsumerSpec) -> None:
        """Create or update a durable pull consumer."""
        config = ConsumerConfig(
            durable_name=spec.durable,
            filter_subject=spec.filter_subject,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=spec.ack_wait_s,
            max_deliver=spec.max_deliver,
            max_ack_pending=spec.max_ack_pending,
            deliver_policy=DeliverPolicy.ALL if spec.deliver_all else DeliverPolicy.NEW,
        )
        await self.js.add_consumer(spec.stream, config)

    async def consume(
        self,
        spec: ConsumerSpec,
        handler: Handler,
        batch: int = 10,
        concurrency: int = 1,
        double_ack: bool = False,
    ) -> ConsumerLoop:
        """Start a pull loop on a durable consumer and return its handle."""
        await self.ensure_consumer(spec)
        sub = await self.js.pull_subscribe_bind(durable=spec.durable, stream=spec.stream)
        loop = ConsumerLoop(spec, sub, handler, batch, concurrency, double_ack, bus=self)
        loop.start()
        return loop


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
        bus: Bus | None = None,
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
                msgs = await self._sub.fetch(slots, timeout=_FETCH_TIMEOUT_S)
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
                await _settle(msg, "nak", msg.nak(delay=exc.delay_s))
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
                await _settle(msg, "nak", msg.nak(delay=delay))
                return
            finally:
                keepalive.cancel()
            if self._double_ack:
                await _settle(msg, "ack", msg.ack_sync(timeout=5.0))
            else:
                await _settle(msg, "ack", msg.ack())

    async def _terminate(self, msg: Msg, reason: str) -> None:
        """Stop redelivery of a poison message and record it as an event, with the reason."""
        log.error("terminating message on %s: %s", msg.subject, reason)
        await _settle(msg, "term", msg.term())
        if self._bus is None:
            return
        seq = msg.metadata.sequence.stream if msg.metadata else 0
        now = time.time_ns()
        event = MessageTerminated(
            event_id=ids.new_event_id(),
            ts_event=now,
            ts_init=now,
            stream=self.spec.stream,
            consumer=self.spec.durable,
            subject=msg.subject,
            stream_seq=seq,
            reason=reason[:500],
        )
        try:
            await self._bus.publish(
                subjects.DEAD_LETTERS,
                event,
                msg_id=f"terminated-{self.spec.stream}-{self.spec.durable}-{seq}",
            )
        except Exception:
            log.exception("could not record the terminated message %s/%d", msg.subject, seq)

    async def _keep_alive(self, msg: Msg) -> None:
        interval = max(1.0, self.spec.ack_wait_s / 3)
        with contextlib.suppress(Exception):
            while True:
                await asyncio.sleep(interval)
                await msg.in_progress()


async def _settle(msg: Msg, what: str, settling: Awaitable[object]) -> None:
    """Ack, nak or term a message; a failure (no consumer leader to confirm a double ack
    during a failover, a connection being re-established) is logged with the subject: the
    message then comes back after its ack wait, and handlers are idempotent (ADR-0100)."""
    try:
        await settling
    except Exception as exc:
        log.warning("%s of %s failed (redelivered after the ack wait): %r", what, msg.subject, exc)
