"""The executor replica: composition root, start and stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from typing import Any

import redis.asyncio as aioredis
from nats.aio.msg import Msg
from redis.exceptions import RedisError

from phalanx_common import subjects
from phalanx_common.bucket_ttls import apply_bucket_ttls
from phalanx_common.bus import Bus, ConsumerLoop, ConsumerSpec
from phalanx_common.clock import Clock, LiveClock
from phalanx_common.errors import DependencyUnavailable
from phalanx_common.events import AnyEvent, ExecBatch
from phalanx_common.health import Readiness, redis_check
from phalanx_common.http import HttpServer
from phalanx_common.http_limits import HttpLimits
from phalanx_common.kvmirror import KvMirror
from phalanx_common.metrics import ConsumerLag, NatsCollector, new_registry
from phalanx_common.nats_auth import NatsAuth
from phalanx_common.records import (
    AccountRecord,
    ReplicaHeartbeat,
    TokenRecord,
    TradingStateRecord,
)
from phalanx_executor.admin import create_app
from phalanx_executor.budgets import BudgetBook
from phalanx_executor.delayed_signals import DelayedSignals, delayed_consumer_spec
from phalanx_executor.intent_window import IntentWindow
from phalanx_executor.killswitch import Flattener
from phalanx_executor.membership import Membership
from phalanx_executor.metrics import ExecutorMetrics, FillsCollector
from phalanx_executor.pool import ConnectionPool
from phalanx_executor.ratelimit import RateLimiter
from phalanx_executor.settings import ExecutorSettings
from phalanx_executor.sharding import shard_of
from phalanx_executor.signal_consumer import PlanningPolicy, SignalConsumer
from phalanx_executor.venue_view import VenueView
from phalanx_executor.wiring import Trading, build_trading
from phalanx_executor.worker import BatchWorker

__all__ = ["ExecutorService", "build_executor", "connect_redis"]

log = logging.getLogger(__name__)


async def connect_redis(url: str, max_connections: int = 64) -> aioredis.Redis:
    """Connect to Redis with a bounded, blocking pool and check it answers.

    Raises:
        DependencyUnavailable: naming Redis and the address.
    """
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=10, socket_connect_timeout=3
    )
    client: aioredis.Redis = aioredis.Redis(connection_pool=pool)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.aclose()
        raise DependencyUnavailable("Redis", url, exc) from exc
    return client


class ExecutorService:
    """One executor replica: the planner plus workers for the shards it owns."""

    def __init__(
        self, settings: ExecutorSettings, bus: Bus, redis: aioredis.Redis, clock: Clock
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.redis = redis
        self.clock = clock
        self.shards: list[int] = []  # dealt by Membership over the live replicas
        self.owner = f"{socket.gethostname()}-{os.getpid()}-r{settings.replica_ordinal}"
        self._loops: list[ConsumerLoop] = []
        self.signals: SignalConsumer | None = None
        self.delayed: DelayedSignals | None = None
        self._shard_loops: dict[int, ConsumerLoop] = {}
        self.membership: Membership | None = None
        self._mirrors: list[KvMirror[Any]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopped = False
        self.trading: Trading | None = None  # built by start (ADR-0166)
        self.http: HttpServer | None = None
        # ADR-0165: the first batches of a fan-out run their steps in short queues.
        self.window = IntentWindow(settings.intents_in_flight, settings.intent_window_hold_s)
        # ADR-0075: this replica's own registry, so replicas in one process never clash.
        self.registry = new_registry()
        self.metrics = ExecutorMetrics(self.registry)
        self.registry.register(NatsCollector(bus.nc))
        self.registry.register(FillsCollector(self._fill_metrics))
        streams = (subjects.SIGNALS.name, subjects.EXEC.name, subjects.DELAYED.name)
        self.lag = ConsumerLag(bus.js, (*streams, subjects.CONTROL.name), self.registry)
        self.readiness = (
            Readiness()
            .add("nats", lambda: bool(bus.nc.is_connected))
            .add("redis", redis_check(redis))
            .add("started", lambda: self.trading is not None and not self._stopped)
        )

    # -- the trading objects, once started -------------------------------------------------

    @property
    def pool(self) -> ConnectionPool | None:
        """The socket pool (``None`` before :meth:`start`)."""
        return self.trading.pool if self.trading is not None else None

    @property
    def worker(self) -> BatchWorker | None:
        """The batch worker (``None`` before :meth:`start`)."""
        return self.trading.worker if self.trading is not None else None

    @property
    def view(self) -> VenueView:
        """The venue view (once started)."""
        return self._started().view

    @property
    def accounts(self) -> KvMirror[AccountRecord]:
        """The accounts mirror (once started)."""
        return self._started().mirrors.accounts

    @property
    def states(self) -> KvMirror[TradingStateRecord]:
        """The trading states mirror (once started)."""
        return self._started().mirrors.states

    def _started(self) -> Trading:
        if self.trading is None:
            raise RuntimeError("the executor replica is not started")
        return self.trading

    async def start(self) -> None:
        """Load mirrors, warm sockets for owned logins, start planner and shard consumers."""
        s = self.settings
        await self.bus.ensure_topology(s.stream_replicas, s.stream_byte_limits)
        await apply_bucket_ttls(self.bus)  # e.g. the intent claims' TTL on an old bucket (ADR-0185)
        trading = await build_trading(
            bus=self.bus,
            redis=self.redis,
            clock=self.clock,
            settings=s,
            metrics=self.metrics,
            owner=self.owner,
            owns=lambda login_id: shard_of(login_id, s.shards) in self.shards,
        )
        self.trading = trading
        self._mirrors = trading.mirrors.all()
        trading.view.start()
        trading.mirrors.tokens.on_change(self._on_token)
        # ADR-0040: many signals in flight, in order within a strategy, none can stop another.
        self.signals = SignalConsumer(
            self.bus, trading.planner, PlanningPolicy(ack_wait_s=s.planner_ack_wait_s)
        )
        await self.signals.start()
        self.delayed = DelayedSignals(self.bus, self.clock, recheck_s=s.delay_recheck_s)
        self._loops.append(
            await self.bus.consume(
                delayed_consumer_spec(),
                self.delayed.handle,
                batch=64,
                concurrency=64,
                double_ack=True,
            )
        )
        beats = KvMirror(await self.bus.key_value(subjects.Buckets.SHARD_LEASES), ReplicaHeartbeat)
        await beats.start()
        self._mirrors.append(beats)
        self.membership = Membership(
            kv=await self.bus.key_value(subjects.Buckets.SHARD_LEASES),
            mirror=beats,
            clock=self.clock,
            ordinal=s.replica_ordinal,
            owner=self.owner,
            shards=s.shards,
            lease_ttl_s=s.lease_ttl_s,
            lease_renew_s=s.lease_renew_s,
            on_assignment=self._work_shards,
            connected=lambda: self.bus.nc.is_connected,
        )
        await self.membership.start()
        flattener = Flattener(
            bus=self.bus,
            clock=self.clock,
            pool=trading.pool,
            view=trading.view,
            calls=trading.calls,
            owned_accounts=self.owned_accounts,
            owner=self.owner,
        )
        self._loops.append(
            await self.bus.consume(
                ConsumerSpec(
                    subjects.CONTROL.name,
                    subjects.Consumers.control(s.replica_ordinal),
                    filter_subject=subjects.CONTROL_KILL,
                    ack_wait_s=60,
                    deliver_all=False,
                ),
                flattener.handle,
                batch=1,
                double_ack=True,
            )
        )
        self.http = HttpServer(
            create_app(
                bus=self.bus,
                clock=self.clock,
                admin_token=s.admin_token,
                states=trading.mirrors.states,
                guards=trading.mirrors.guards,
                health=self.health,
                registry=self.registry,
                readiness=self.readiness,
                budgets=lambda: self._budget_use(trading.limiter, trading.book),
            ),
            s.http_host,
            s.executor_port + s.replica_ordinal if s.executor_port else 0,
            name=f"executor-{s.replica_ordinal}",
            limits=HttpLimits.from_settings(s),
        )
        await self.http.start()
        self.lag.start()

    async def _work_shards(self, assignment: list[int]) -> None:
        """Start consumers for newly assigned shards, stop those no longer ours, warm logins."""
        assert self.worker is not None
        assert self.pool is not None
        s = self.settings
        gone = [shard for shard in self._shard_loops if shard not in assignment]
        await asyncio.gather(*(self._shard_loops.pop(shard).stop() for shard in gone))
        self.shards = list(assignment)
        for shard in assignment:
            if shard in self._shard_loops:
                continue
            self._shard_loops[shard] = await self.bus.consume(
                ConsumerSpec(
                    subjects.EXEC.name,
                    subjects.exec_consumer(shard),
                    filter_subject=subjects.exec_subject(shard),
                    ack_wait_s=s.exec_ack_wait_s,
                    # one more than the worker's bound, which dead-letters with outcomes first
                    max_deliver=s.exec_max_deliveries + 1 if s.exec_max_deliveries else -1,
                ),
                self._handle_batch,
                batch=s.shard_concurrency,
                concurrency=s.shard_concurrency,
                double_ack=True,
            )
        logins = self.owned_logins()
        await self.pool.retain(set(logins))  # idle cleanup: logins now worked elsewhere
        warmed = await self.pool.warm(logins)
        log.info(
            "executor r%d works shards %s; %d/%d logins connected",
            s.replica_ordinal,
            self.shards,
            warmed,
            len(logins),
        )

    async def _handle_batch(self, event: AnyEvent, msg: Msg) -> None:
        """A shard consumer's handler: the batch runs once the intent window admits it."""
        assert self.worker is not None
        size = len(event.intents) if isinstance(event, ExecBatch) else 1
        async with self.window.admit(size):
            await self.worker.handle(event, msg)

    async def _budget_use(self, limiter: RateLimiter, book: BudgetBook) -> list[dict[str, Any]]:
        """``GET /admin/budgets``: every known login's request budget in use (ADR-0133)."""
        rows: list[dict[str, Any]] = []
        for login_id in sorted({a.login_id for a in self.accounts.values()}):
            budget = book.for_login(login_id)[0]
            rows.append(
                {
                    "login_id": login_id,
                    "windows": [
                        {"limit": w.limit, "seconds": w.seconds, "used": used}
                        for w, used in await limiter.usage(budget)
                    ],
                    "blocked_for_s": await limiter.blocked_for(budget),
                }
            )
        return rows

    def owned_logins(self) -> list[str]:
        """Logins on a shard this replica owns: of its accounts, and those with a token.

        By token too: a token that arrived while the shard was another replica's is not
        followed (:meth:`_on_token`), and the login's accounts may reach this replica's mirror
        only after it took the shard over; warming by accounts alone left such a login cold.
        """
        s = self.settings
        with_token = (
            login
            for login in self._started().mirrors.tokens.items()
            if shard_of(login, s.shards) in self.shards
        )
        return sorted({a.login_id for a in self.owned_accounts()}.union(with_token))

    def owned_accounts(self) -> list[AccountRecord]:
        """Accounts whose login falls on a shard this replica owns."""
        return [
            a
            for a in self.accounts.values()
            if shard_of(a.login_id, self.settings.shards) in self.shards
        ]

    def health(self) -> dict[str, Any]:
        """What ``/healthz`` reports."""
        return {
            "status": "ok",
            "owner": self.owner,
            "replica": self.settings.replica_ordinal,
            "shards": self.shards,
            "logins_connected": len(self.pool) if self.pool is not None else 0,
            "orders_placed": self.worker.placed if self.worker is not None else 0,
            "fills": self._fill_metrics(),
        }

    def _fill_metrics(self) -> dict[str, int]:
        """Fill outbox counters (ADR-0061): published, waiting, failed, refused, unattributed."""
        if self.trading is None:
            return {}
        view = self.trading.view
        outbox = view.outbox
        return {
            "published": outbox.published,
            "pending": outbox.pending,
            "publish_failures": outbox.failures,
            "refused": outbox.refused,
            "unattributed": view.unattributed_fills,
        }

    @property
    def url(self) -> str:
        """Base URL of this replica's HTTP API."""
        assert self.http is not None
        return self.http.url

    def _on_token(self, login_id: str, token: TokenRecord | None) -> None:
        if shard_of(login_id, self.settings.shards) not in self.shards:
            return
        task = asyncio.create_task(self._follow_token(login_id, token))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _follow_token(self, login_id: str, token: TokenRecord | None) -> None:
        assert self.pool is not None
        if token is None:  # the login was disconnected: drop its socket
            await self.pool.drop(login_id)
            return
        if self.pool.has(login_id):
            await self.pool.token_changed(login_id, token)
        else:
            await self.pool.warm([login_id])

    async def stop(self) -> None:
        """Hand back or finish in-flight intents, then leave; then sockets, mirrors, connections.

        ADR-0050: the heartbeat stays alive until the shard consumers have stopped fetching and
        every in-flight batch has ended (intents not yet sent are released and their batches
        naked), so no other replica takes the shards while this one still works them.
        """
        if self._stopped:
            return
        self._stopped = True
        await self.lag.stop()
        if self.http is not None:
            await self.http.stop()
        if self.membership is not None:
            await self.membership.stop_rebalancing()
        if self.worker is not None:
            self.worker.begin_stop()
        await asyncio.gather(*(loop.stop() for loop in self._shard_loops.values()))
        self._shard_loops.clear()
        if self.membership is not None:
            await self.membership.stop(leave=True)
        if self.signals is not None:
            await self.signals.stop()
        await asyncio.gather(*(loop.stop() for loop in self._loops), return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        if self.trading is not None:
            await self.trading.view.stop()
            await self.trading.pool.close()
        for mirror in self._mirrors:
            await mirror.stop()
        await self.bus.close()
        with contextlib.suppress(Exception):
            await self.redis.aclose()


async def build_executor(settings: ExecutorSettings, clock: Clock | None = None) -> ExecutorService:
    """Connect NATS and Redis (closing what opened if a later step fails) and build a replica."""
    bus = await Bus.connect(
        settings.nats_url,
        f"executor-{settings.replica_ordinal}",
        auth=NatsAuth.from_settings(settings),
    )
    try:
        redis = await connect_redis(settings.redis_url, settings.redis_max_connections)
    except DependencyUnavailable:
        await bus.close()
        raise
    return ExecutorService(settings, bus, redis, clock or LiveClock())
