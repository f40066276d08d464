"""The executor's object graph, built in one place (ADR-0166).

:func:`build_trading` wires the KV mirrors, one limiter and one budget book, the socket pool,
the venue view, the batch worker and the planner, and hands them back as :class:`Trading`. The
pool and the view need each other: the pool is built first, the view takes the pool's
``get``, and then subscribes to the pool's props events and sync snapshots.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from phalanx_common import subjects
from phalanx_common.bus import Bus
from phalanx_common.clock import Clock
from phalanx_common.contracts import ContractBook
from phalanx_common.crypto import key_ring_from_settings, token_decoder
from phalanx_common.kvmirror import KvMirror
from phalanx_common.records import (
    AccountGuardRecord,
    AccountRecord,
    SubscriptionRecord,
    TokenRecord,
    TradingStateRecord,
)
from phalanx_executor.account_order import AccountOrder
from phalanx_executor.budgets import BudgetBook
from phalanx_executor.claim_leases import ClaimLeases
from phalanx_executor.gates import Gates
from phalanx_executor.intents import IntentStore
from phalanx_executor.metrics import ExecutorMetrics
from phalanx_executor.permits import Permits, Priority
from phalanx_executor.planner import Planner
from phalanx_executor.pool import ConnectionPool
from phalanx_executor.ratelimit import RateLimiter
from phalanx_executor.settings import ExecutorSettings
from phalanx_executor.venue_calls import VenueCalls
from phalanx_executor.venue_view import VenueView
from phalanx_executor.worker import BatchWorker, WorkerSettings

__all__ = ["Mirrors", "Trading", "build_trading", "open_mirrors"]


@dataclass(frozen=True)
class Mirrors:
    """The buckets a replica follows in memory (started)."""

    accounts: KvMirror[AccountRecord]
    subscriptions: KvMirror[SubscriptionRecord]
    tokens: KvMirror[TokenRecord]
    states: KvMirror[TradingStateRecord]
    guards: KvMirror[AccountGuardRecord]

    def all(self) -> list[KvMirror[Any]]:
        """Every mirror, in the order they were started."""
        return [self.accounts, self.subscriptions, self.tokens, self.states, self.guards]


@dataclass(frozen=True)
class Trading:
    """Everything that trades: built by :func:`build_trading`, started by the service."""

    mirrors: Mirrors
    limiter: RateLimiter
    book: BudgetBook
    calls: VenueCalls
    pool: ConnectionPool
    view: VenueView
    worker: BatchWorker
    planner: Planner


async def open_mirrors(bus: Bus, settings: ExecutorSettings) -> Mirrors:
    """Open and load the mirrors of accounts, subscriptions, tokens, states and guards."""
    # ADR-0020: the bucket holds sealed tokens; they are opened only in this process's memory.
    ring = key_ring_from_settings(settings.token_keys, settings.admin_token)
    mirrors = Mirrors(
        accounts=KvMirror(await bus.key_value(subjects.Buckets.ACCOUNTS), AccountRecord),
        subscriptions=KvMirror(
            await bus.key_value(subjects.Buckets.SUBSCRIPTIONS), SubscriptionRecord
        ),
        tokens=KvMirror(
            await bus.key_value(subjects.Buckets.TOKENS), TokenRecord, decoder=token_decoder(ring)
        ),
        states=KvMirror(await bus.key_value(subjects.Buckets.TRADING_STATE), TradingStateRecord),
        guards=KvMirror(await bus.key_value(subjects.Buckets.GUARDS), AccountGuardRecord),
    )
    for mirror in mirrors.all():
        await mirror.start()
    return mirrors


async def build_trading(
    *,
    bus: Bus,
    redis: aioredis.Redis,
    clock: Clock,
    settings: ExecutorSettings,
    metrics: ExecutorMetrics,
    owner: str,
    owns: Callable[[str], bool],
) -> Trading:
    """Open the mirrors and wire one replica's trading objects (see the module's doc).

    ``owns(login_id)``: whether the login's shard is worked here (a socket is kept only then).
    """
    s = settings
    mirrors = await open_mirrors(bus, s)
    limiter = RateLimiter(redis)
    permits = Permits(limiter, metrics)
    book = BudgetBook(s.login_windows, s.ip_windows, s.egress_ip, s.sync_ip_windows)
    calls = VenueCalls(permits, book, lockout_s=s.lockout_s)

    async def permit(login_id: str) -> None:
        await calls.permit(login_id, Priority.RECONCILE)

    pool = ConnectionPool(
        s.tradovate_ws_url,
        token_for=mirrors.tokens.get,
        max_sockets=s.max_sockets,
        connect_concurrency=s.connect_concurrency,
        request_timeout_s=s.request_timeout_s,
        calls=calls,
        # a socket only for logins of the shards worked here, checked when it is stored
        # (a token update followed while the shard moved away must not leave one behind)
        owns=owns,
        metrics=metrics,
        clock=clock,
        expiry_margin_s=s.token_expiry_margin_s,
        lockout_s=s.lockout_s,
    )
    view = VenueView(bus, clock, pool.get, permit=permit, honour=calls.honour)
    pool.subscribe(on_props=view.submit, on_snapshot=view.ingest_snapshot)
    worker = BatchWorker(
        bus=bus,
        store=IntentStore(await bus.key_value(subjects.Buckets.INTENTS), owner),
        pool=pool,
        limiter=limiter,
        permits=permits,
        view=view,
        gates=Gates(mirrors.states, mirrors.guards, view),
        clock=clock,
        leases=ClaimLeases(
            await bus.key_value(subjects.Buckets.INTENT_LEASES),
            owner,
            clock,
            s.claim_lease_s,
            grace_s=s.reconcile_grace_s,
        ),
        order=AccountOrder(
            await bus.key_value(subjects.Buckets.ACCOUNT_ORDER),
            claims=await bus.key_value(subjects.Buckets.INTENTS),
            clock=clock,
        ),
        settings=_worker_settings(s),
        calls=calls,
    )
    planner = Planner(
        bus=bus,
        clock=clock,
        book=ContractBook.load(),
        subscriptions=mirrors.subscriptions,
        accounts=mirrors.accounts,
        shards=s.shards,
        batch_size=s.batch_size,
    )
    return Trading(mirrors, limiter, book, calls, pool, view, worker, planner)


def _worker_settings(s: ExecutorSettings) -> WorkerSettings:
    return WorkerSettings(
        login_windows=s.login_windows,
        ip_windows=s.ip_windows,
        egress_ip=s.egress_ip,
        reversal_wait_s=s.reversal_wait_s,
        reconcile_grace_s=s.reconcile_grace_s,
        reconcile_deadline_s=s.reconcile_deadline_s,
        batch_pause_s=s.batch_pause_s,
        permit_handback_s=s.permit_handback_s,
        permit_max_age_s=s.permit_max_age_s,
        max_deliveries=s.exec_max_deliveries,
        lockout_s=s.lockout_s,
    )
