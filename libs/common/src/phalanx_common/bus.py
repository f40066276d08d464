"""The JetStream bus: connection, topology set-up and idempotent publishing.

Consumer loops (and their ack policy) are :mod:`phalanx_common.consumer_loop`; the trace spans
around publishing and consuming :mod:`phalanx_common.bus_tracing`. Both are re-exported here,
where services have always imported them from.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
from nats.aio.client import Client as NatsClient
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

from phalanx_common import subjects
from phalanx_common.backoff import Backoff
from phalanx_common.bus_tracing import MSG_ID, consuming, publishing
from phalanx_common.codec import encode
from phalanx_common.consumer_loop import ConsumerLoop, ConsumerSpec, Handler
from phalanx_common.errors import DependencyUnavailable
from phalanx_common.kv_reads import FastReadKeyValue
from phalanx_common.nats_auth import NatsAuth

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

_T = TypeVar("_T")

# A JetStream API request that got no answer (yet): asked again while a service starts.
_UNANSWERED = (NatsTimeoutError, TimeoutError, NoRespondersError, ServiceUnavailableError)
# JetStream's API asked again while it does not answer: 0.2 s, doubled, at most 2 s (ADR-0175)
_ASK_AGAIN = Backoff(first_s=0.2, max_s=2.0)


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
        try:
            await asyncio.wait_for(self.nc.close(), timeout_s)
        except asyncio.CancelledError:
            # nats-py cancels its own close when the server goes away at the same moment (a
            # whole system stopped at once): the connection is gone, which is what was asked.
            # A cancellation of the caller is passed on.
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            log.info("nats connection lost while closing; closed")
        except Exception:  # noqa: S110 - closing is best effort, bounded by timeout_s
            pass

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

    async def answered(
        self, request: Callable[[], Awaitable[_T]], what: str, timeout_s: float = 60.0
    ) -> _T:
        """``request()``'s result, asked again while JetStream does not answer in time.

        For a service's start-up reads: a cluster still electing the leaders of streams that
        every service created a moment ago (or too busy to answer within the request timeout)
        makes a read time out, and the service should wait for it rather than exit. Only
        for requests that change nothing when they fail (reads, idempotent writes).

        Raises:
            DependencyUnavailable: if JetStream still does not answer after ``timeout_s``.
        """
        return await self._answered(request, what, time.monotonic() + timeout_s)

    async def _answered(
        self, request: Callable[[], Awaitable[_T]], what: str, deadline: float
    ) -> _T:
        """Run a JetStream API ``request`` again while JetStream does not answer in time."""
        pauses = _ASK_AGAIN.delays()
        while True:
            try:
                return await request()
            except _UNANSWERED as exc:
                delay = next(pauses)
                if time.monotonic() + delay >= deadline:
                    raise DependencyUnavailable("NATS JetStream", self.url, exc) from exc
                log.warning("JetStream did not answer for %s (%r); asking again", what, exc)
                await asyncio.sleep(delay)

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
